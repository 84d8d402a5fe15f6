/* What every sink's replay does with a record's body (sink.h:
 * sc_journal_body_matches, sc_journal_restore): check whether a file
 * already holds it, and put it back when not. Shared so that the maildir
 * and http sinks compare and copy the same way, in bounded chunks. */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h> /* rename */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK 65536

int sc_journal_body_matches(const char *path, int fd, unsigned long long off,
                            unsigned long long len)
{
	int in = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return 0;
	struct stat st;
	int eq =
	    fstat(in, &st) == 0 && S_ISREG(st.st_mode) && (unsigned long long)st.st_size == len;
	char *a = eq ? malloc(2 * CHUNK) : NULL;
	eq = eq && a;
	for (unsigned long long done = 0; eq && done < len;) {
		size_t k = len - done < CHUNK ? (size_t)(len - done) : CHUNK;
		eq = !journal_pread(in, a, k, done) &&
		     !journal_pread(fd, a + CHUNK, k, off + done) && memcmp(a, a + CHUNK, k) == 0;
		done += k;
	}
	free(a);
	close(in);
	return eq;
}

int sc_journal_restore(const char *tmp, const char *dst, const void *text, size_t text_len, int fd,
                       unsigned long long off, unsigned long long len)
{
	int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		return SC_EIO;
	int bad = text_len && sc_write_all(out, text, text_len);
	char *chunk = fd >= 0 && len && !bad ? malloc(CHUNK) : NULL;
	if (fd >= 0 && len && !bad && !chunk)
		bad = 1, errno = ENOMEM;
	for (unsigned long long done = 0; chunk && !bad && done < len;) {
		size_t k = len - done < CHUNK ? (size_t)(len - done) : CHUNK;
		int r = journal_pread(fd, chunk, k, off + done);
		if (r > 0)
			errno = EIO; /* the journal shorter than its record said */
		bad = r || sc_write_all(out, chunk, k);
		done += k;
	}
	free(chunk);
	int e = errno;
	if (close(out) && !bad)
		bad = 1, e = errno;
	if (!bad && rename(tmp, dst))
		bad = 1, e = errno;
	if (bad)
		unlink(tmp);
	errno = e;
	return !bad ? SC_OK : e == ENOMEM ? SC_ENOMEM : SC_EIO;
}
