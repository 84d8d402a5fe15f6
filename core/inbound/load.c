/* sc_inbound_load() (sink.h): a small received message into memory,
 * read once. A sink that holds the bytes writes its file, its journal
 * record and its summary from them, where reading the file for each cost
 * an open, a stat and a few reads apiece (perf, 2026-12-02). */
#include "core.h"

#include <smtp-connector/sink.h>

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

int sc_inbound_load(const struct sc_inbound *m, struct sc_buf *b)
{
	if (m->size > SC_INBOUND_LOAD_MAX) {
		errno = EFBIG;
		return SC_EIO;
	}
	int fd = open(m->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return SC_EIO;
	size_t start = b->len;
	int rc = sc_buf_read_fd(b, fd, m->size);
	int e = errno;
	close(fd);
	if (rc == SC_OK && b->len - start != m->size)
		rc = SC_EINPUT; /* shorter than the listener said */
	if (rc == SC_EINPUT)    /* not the file the listener described */
		rc = SC_EIO, e = EIO;
	if (rc && b->p) { /* nothing of it is kept */
		b->len = start;
		b->p[start] = '\0';
	}
	errno = e;
	return rc;
}
