/* The listener's message files, recycled (see msgfile.c). */
#ifndef SC_SERVE_MSGFILE_H
#define SC_SERVE_MSGFILE_H

/* A file in `dir` for the message `id`, open for writing and empty:
 * a kept one when there is one, else "<dir>/<id>.msg" created. The fd,
 * with *path set (caller owns it, hands it to serve_msgfile_release), or
 * -1 with errno and *path NULL. Thread-safe. */
int serve_msgfile_open(const char *dir, const char *id, char **path);
/* Done with the file at `path` (takes ownership): cut to 0 bytes and
 * kept for the next message when only the listener holds it (not renamed
 * or linked by a sink) and fewer than a bound are kept, else unlinked. */
void serve_msgfile_release(char *path);
/* Unlink every kept file (at exit). */
void serve_msgfile_clear(void);

#endif
