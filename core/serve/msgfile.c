/* The listener writes every message into a file of its spool dir before
 * deliver(). Creating a file per message was the listener's largest cost
 * (perf: ext4 without a journal checks each new inode against recently
 * deleted ones), so a file whose message was delivered is kept and
 * rewritten for a later one. Only a file that no sink took is kept: a
 * sink may rename or link it (sink.h), and then its inode holds the
 * sink's copy.
 *
 * A kept file is not emptied: it is overwritten by the next message and
 * cut to that message's length. Emptying it (truncate to 0) freed its
 * block, which this VM's ext4 (mounted with discard) sent to the disk as
 * a synchronous discard, and made the next close() write the file out
 * (ext4's auto_da_alloc for files truncated to 0): a quarter of the
 * event loop's time (perf, 2026-12-02). What it holds meanwhile is a
 * message its sink already stored. A message no sink took (refused,
 * deferred, cut off) is never kept: its file is unlinked at once. Kept
 * files are named *.msg like the others, so a restart after a crash
 * removes them with the rest (cli.c), and exit removes them
 * (serve_msgfile_clear). */
#include "msgfile.h"

#include <smtp-connector/plugin.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Enough for the sessions in DATA at once; beyond it files go. */
#define KEEP_MAX 64

static pthread_mutex_t keep_mu = PTHREAD_MUTEX_INITIALIZER;
static char *kept[KEEP_MAX];
static size_t nkept;

/* A kept file inside `dir`, or NULL. */
static char *take(const char *dir)
{
	size_t n = strlen(dir);
	char *p = NULL;
	pthread_mutex_lock(&keep_mu);
	for (size_t i = nkept; i-- > 0;)
		if (strncmp(kept[i], dir, n) == 0 && kept[i][n] == '/' &&
		    !strchr(kept[i] + n + 1, '/')) {
			p = kept[i];
			kept[i] = kept[--nkept];
			break;
		}
	pthread_mutex_unlock(&keep_mu);
	return p;
}

int serve_msgfile_open(const char *dir, const char *id, char **path)
{
	char *p = take(dir);
	int fd = p ? open(p, O_WRONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
	if (fd < 0 && p) {
		unlink(p);
		free(p);
		p = NULL;
	}
	if (fd < 0) {
		p = sc_asprintf("%s/%s.msg", dir, id);
		fd = p ? open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
		if (!p)
			errno = ENOMEM;
	}
	if (fd < 0) {
		int e = errno;
		free(p);
		p = NULL;
		errno = e;
	}
	*path = p;
	return fd;
}

void serve_msgfile_release(char *path, int delivered)
{
	if (!path)
		return;
	struct stat st;
	int keep = delivered && lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1;
	pthread_mutex_lock(&keep_mu);
	if (keep && nkept < KEEP_MAX)
		kept[nkept++] = path, path = NULL;
	pthread_mutex_unlock(&keep_mu);
	if (path) {
		unlink(path);
		free(path);
	}
}

int serve_msgfile_cut(int fd, unsigned long long size)
{
	struct stat st;
	if (fstat(fd, &st))
		return -1;
	/* a same-sized or longer message has already covered the old one */
	return (unsigned long long)st.st_size > size ? ftruncate(fd, (off_t)size) : 0;
}

void serve_msgfile_clear(void)
{
	pthread_mutex_lock(&keep_mu);
	while (nkept) {
		char *p = kept[--nkept];
		unlink(p);
		free(p);
	}
	pthread_mutex_unlock(&keep_mu);
}
