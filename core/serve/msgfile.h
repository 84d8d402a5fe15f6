/* The listener's message files, recycled (see msgfile.c). */
#ifndef SC_SERVE_MSGFILE_H
#define SC_SERVE_MSGFILE_H

/* The file a message is written into. Runtime-owned: the session holds
 * one from DATA until its message was delivered or dropped. */
struct serve_msgfile {
	char *path;
	int fd;                 /* open for writing, at offset 0 when handed out */
	unsigned long long ino; /* the file's inode, to know it is still ours */
	unsigned long long had; /* bytes an earlier message left in it */
};

/* A file in `dir` for the message `id` in *f: a kept one (its fd still
 * open) when there is one, else "<dir>/<id>.msg" created. 0, or -1 with
 * errno and *f empty (path NULL, fd -1). Thread-safe. */
int serve_msgfile_open(const char *dir, const char *id, struct serve_msgfile *f);
/* The message written into f->fd is `size` bytes: cut off what a longer
 * earlier message left beyond them (no stat: f->had says). 0, or -1 with
 * errno. */
int serve_msgfile_cut(struct serve_msgfile *f, unsigned long long size);
/* Done with f (emptied). `delivered`: a sink accepted the message (and
 * holds its own copy): the file is kept, fd open, for the next message,
 * which overwrites it, when the path still names the file we wrote with
 * one link (the sink did not rename or link it) and fewer than a bound
 * are kept. Else, and always for a message refused, deferred or cut off,
 * it is closed and unlinked: no message that no sink took stays in the
 * spool dir. NULL path: nothing. */
void serve_msgfile_release(struct serve_msgfile *f, int delivered);
/* Unlink every kept file (at exit). */
void serve_msgfile_clear(void);

#endif
