/* An LD_PRELOAD shim for serve's file-system failure paths (never
 * installed; tests/integration/test_serve.py):
 *   SC_TEST_NO_TMPFILE=PATH  open(..., O_TMPFILE) fails with EOPNOTSUPP,
 *                            as on a file system without it; each refusal
 *                            appends a line to PATH, so a test knows the
 *                            shim was in the way (not bypassed)
 *   SC_TEST_FAIL_FLUSH=PATH  fdatasync() fails with EIO while PATH
 *                            exists, so a test can fail one flush and
 *                            then let the next ones succeed
 * Why a shim: neither failure can be had from a real disk in a test. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

typedef int (*open_fn)(const char *, int, ...);

static open_fn next_open(const char *sym, open_fn *real)
{
	if (!*real)
		*real = (open_fn)dlsym(RTLD_NEXT, sym);
	return *real;
}

/* An O_TMPFILE open to refuse; the refusal counted in SC_TEST_NO_TMPFILE */
static int no_tmpfile(int flags)
{
	static open_fn real;
	const char *log = getenv("SC_TEST_NO_TMPFILE");
	if ((flags & O_TMPFILE) != O_TMPFILE || !log)
		return 0;
	int fd = next_open("open", &real)(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0) {
		(void)!write(fd, "refused\n", 8);
		close(fd);
	}
	return 1;
}

/* open() and open64() alike: the same flags, each its own next symbol */
static int open_via(const char *sym, open_fn *real, const char *path, int flags, va_list ap)
{
	int with_mode = (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
	mode_t mode = with_mode ? (mode_t)va_arg(ap, int) : 0;
	if (no_tmpfile(flags))
		return errno = EOPNOTSUPP, -1;
	return next_open(sym, real)(path, flags, mode);
}

int open(const char *path, int flags, ...)
{
	static open_fn real;
	va_list ap;
	va_start(ap, flags);
	int fd = open_via("open", &real, path, flags, ap);
	va_end(ap);
	return fd;
}

int open64(const char *path, int flags, ...)
{
	static open_fn real;
	va_list ap;
	va_start(ap, flags);
	int fd = open_via("open64", &real, path, flags, ap);
	va_end(ap);
	return fd;
}

int fdatasync(int fd)
{
	static int (*real)(int);
	const char *trigger = getenv("SC_TEST_FAIL_FLUSH");
	if (trigger && access(trigger, F_OK) == 0)
		return errno = EIO, -1;
	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	return real(fd);
}
