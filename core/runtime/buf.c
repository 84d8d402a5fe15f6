/* struct sc_buf: the one growable byte buffer (plugin.h). Every copy of
 * untrusted data of unknown length goes through it, so no fixed-size
 * buffer ever meets user input. */
#include "core.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <errno.h>

static int grow(struct sc_buf *b, size_t n)
{
	if (n >= SIZE_MAX - b->len - 1)
		return SC_ENOMEM;
	size_t need = b->len + n + 1;
	if (need <= b->cap)
		return SC_OK;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	char *p;
	if (b->wipe) {
		p = malloc(cap);
		if (p && b->p) {
			memcpy(p, b->p, b->len + 1);
			sc_secret_wipe(b->p, b->cap);
			free(b->p);
		}
	} else {
		p = realloc(b->p, cap);
	}
	if (!p)
		return SC_ENOMEM;
	b->p = p;
	b->cap = cap;
	return SC_OK;
}

int sc_buf_add(struct sc_buf *b, const void *data, size_t n)
{
	if (grow(b, n) != SC_OK)
		return SC_ENOMEM;
	if (n)
		memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return SC_OK;
}

int sc_buf_str(struct sc_buf *b, const char *s)
{
	return sc_buf_add(b, s, strlen(s));
}

int sc_buf_printf(struct sc_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = core_vasprintf(fmt, ap);
	va_end(ap);
	if (!s)
		return SC_ENOMEM;
	int rc = sc_buf_str(b, s);
	free(s);
	return rc;
}

char *sc_buf_take(struct sc_buf *b)
{
	char *p = b->p;
	if (!p)
		p = strdup("");
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

void sc_buf_free(struct sc_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

int sc_buf_read_fd(struct sc_buf *b, int fd, size_t max)
{
	/* Straight into b, no bounce buffer: a file of a known size (a
	 * received message read with max = its size) takes one read() for
	 * its bytes and one to see its end. Each read asks for one byte more
	 * than may remain, so a file over max is seen. */
	size_t start = b->len;
	int rc = SC_OK;
	for (;;) {
		size_t left = max - (b->len - start);
		size_t want = left < 65536 ? left + 1 : 65536;
		if (grow(b, want)) {
			rc = SC_ENOMEM;
			break;
		}
		ssize_t n = read(fd, b->p + b->len, want);
		if (n == 0)
			break;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = SC_EIO;
			break;
		}
		if ((size_t)n > left) {
			b->len = start + max; /* what fits is kept, as documented */
			rc = SC_EINPUT;
			break;
		}
		b->len += (size_t)n;
	}
	int e = errno;
	if (b->p)
		b->p[b->len] = '\0';
	else if (!rc && sc_buf_add(b, "", 0))
		rc = SC_ENOMEM;
	errno = e;
	return rc;
}

void sc_buf_wipe(struct sc_buf *b)
{
	if (b->p)
		sc_secret_wipe(b->p, b->cap);
	sc_buf_free(b);
}

int sc_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return SC_EIO;
		}
		c += w;
		n -= (size_t)w;
	}
	return SC_OK;
}

int sc_dir_make(const char *path)
{
	struct stat st;
	if (mkdir(path, 0700) == 0)
		return SC_OK;
	if (errno != EEXIST)
		return SC_EIO;
	if (stat(path, &st))
		return SC_EIO;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return SC_EIO;
	}
	return SC_OK;
}
