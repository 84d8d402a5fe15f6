/* Files that hold a secret (a named secret, --secret-key-file), read one
 * way: the checks are made on the descriptor that is read. */
#ifndef SC_PRIVATE_FILE_H
#define SC_PRIVATE_FILE_H

#include "core.h"

#include <stddef.h>

/* Read a file that holds a secret (a named secret, --secret-key-file):
 * opened once with O_NOFOLLOW and O_NONBLOCK (a FIFO does not hang the
 * open), and on that descriptor checked to be a regular file owned by the
 * effective user, mode 0600 or stricter, at most 64 KiB; read into a
 * buffer wiped as it grows. Messages start with `what` and name the file
 * and the fix; `missing_hint` is added when it does not exist (may be
 * NULL). SC_OK with *out (NUL-terminated, *len bytes: sc_secret_wipe
 * them, then free), SC_EINPUT, SC_ENOMEM. */
int core_private_file_read(const char *path, const char *what, const char *missing_hint, char **out,
                           size_t *len, struct sc_error *err);

#endif
