/* sc_inbound_load() (sink.h): a small received message into memory, in
 * one read. A sink that holds the bytes writes its file, its journal
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
	size_t start = b->len, n = m->size, got = 0;
	if (core_buf_reserve(b, n)) {
		errno = ENOMEM;
		return SC_ENOMEM;
	}
	int fd = open(m->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return SC_EIO;
	while (got < n) {
		ssize_t r = read(fd, b->p + start + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int e = r ? errno : EIO; /* shorter than the listener said */
			close(fd);
			errno = e;
			return SC_EIO;
		}
		got += (size_t)r;
	}
	close(fd);
	b->len = start + n;
	b->p[b->len] = '\0';
	return SC_OK;
}
