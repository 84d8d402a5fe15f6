/* See private_file.h. */
#include "private_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A secret holds a few keys or one key; anything larger is not one. */
#define SECRET_MAX (64 * 1024)

int core_private_file_read(const char *path, const char *what, const char *missing_hint, char **out,
                           size_t *len, struct sc_error *err)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return sc_error_set(err, SC_EINPUT, "%s: cannot open %s: %s%s", what, path,
		                    strerror(errno),
		                    errno == ELOOP ? " (a symbolic link; put the file itself there)"
		                    : errno == ENOENT && missing_hint ? missing_hint
		                                                      : "");
	struct stat st;
	int rc = SC_OK;
	if (fstat(fd, &st))
		rc = sc_error_set(err, SC_EINPUT, "%s: %s: %s", what, path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		rc = sc_error_set(err, SC_EINPUT, "%s: %s is not a regular file", what, path);
	else if (st.st_uid != geteuid())
		rc = sc_error_set(err, SC_EINPUT,
		                  "%s: %s is owned by uid %u, not by this user "
		                  "(uid %u); chown it or use a file of your own",
		                  what, path, (unsigned)st.st_uid, (unsigned)geteuid());
	else if (st.st_mode & 077)
		rc = sc_error_set(err, SC_EINPUT,
		                  "%s: %s has mode %03o: others may read it; run "
		                  "chmod 600 %s",
		                  what, path, (unsigned)(st.st_mode & 0777), path);
	else if (st.st_size > SECRET_MAX)
		rc = sc_error_set(err, SC_EINPUT, "%s: %s is larger than %d bytes", what, path,
		                  SECRET_MAX);
	/* wiped as it grows: realloc must not leave copies of the secret in
	 * freed memory */
	struct sc_buf b = {.wipe = 1};
	int r = rc ? rc : sc_buf_read_fd(&b, fd, SECRET_MAX);
	if (!rc && r == SC_EIO)
		rc = sc_error_set(err, SC_EINPUT, "%s: cannot read %s: %s", what, path,
		                  strerror(errno));
	else if (!rc && r == SC_EINPUT)
		rc = sc_error_set(err, SC_EINPUT, "%s: %s grew past %d bytes", what, path,
		                  SECRET_MAX);
	else if (!rc && r)
		rc = sc_error_set(err, SC_ENOMEM, "out of memory");
	close(fd);
	if (rc) {
		sc_buf_wipe(&b);
		return rc;
	}
	*len = b.len;
	*out = b.p; /* the buffer's own allocation */
	return SC_OK;
}
