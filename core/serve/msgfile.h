/* The listener's message files, recycled (see msgfile.c). */
#ifndef SC_SERVE_MSGFILE_H
#define SC_SERVE_MSGFILE_H

/* A file in `dir` for the message `id`, open for writing and empty:
 * a kept one when there is one, else "<dir>/<id>.msg" created. The fd,
 * with *path set (caller owns it, hands it to serve_msgfile_release), or
 * -1 with errno and *path NULL. Thread-safe. */
int serve_msgfile_open(const char *dir, const char *id, char **path);
/* Done with the file at `path` (takes ownership). `delivered`: a sink
 * accepted the message (and holds its own copy): the file is kept as it
 * is for the next message, which overwrites it (the writer cuts it to its
 * own length, serve_msgfile_cut), when only the listener holds it (not
 * renamed or linked by a sink) and fewer than a bound are kept. Else, and
 * always for a message refused, deferred or cut off, it is unlinked: no
 * message that no sink took stays in the spool dir. */
void serve_msgfile_release(char *path, int delivered);
/* The message written into fd is `size` bytes: cut off what a longer
 * earlier message left beyond them. 0, or -1 with errno. */
int serve_msgfile_cut(int fd, unsigned long long size);
/* Unlink every kept file (at exit). */
void serve_msgfile_clear(void);

#endif
