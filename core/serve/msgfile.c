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
 * message its sink already stored. Its descriptor stays open and is
 * rewound for the next message, and its length is remembered: no open(),
 * close() or fstat() per message, only the lstat() that tells whether a
 * sink took the file. A message no sink took (refused,
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
static struct serve_msgfile kept[KEEP_MAX];
static size_t nkept;

/* A kept file inside `dir` into *f: 1, or 0 when there is none. */
static int take(const char *dir, struct serve_msgfile *f)
{
	size_t n = strlen(dir);
	int found = 0;
	pthread_mutex_lock(&keep_mu);
	for (size_t i = nkept; i-- > 0;)
		if (strncmp(kept[i].path, dir, n) == 0 && kept[i].path[n] == '/' &&
		    !strchr(kept[i].path + n + 1, '/')) {
			*f = kept[i];
			kept[i] = kept[--nkept];
			found = 1;
			break;
		}
	pthread_mutex_unlock(&keep_mu);
	return found;
}

static void discard(struct serve_msgfile *f)
{
	if (f->fd >= 0)
		close(f->fd);
	if (f->path)
		unlink(f->path);
	free(f->path);
	*f = (struct serve_msgfile){NULL, -1, 0, 0};
}

/* The kept file's fd is reused as it is, rewound: no open() (a path
 * lookup) and no close() per message. */
int serve_msgfile_open(const char *dir, const char *id, struct serve_msgfile *f)
{
	*f = (struct serve_msgfile){NULL, -1, 0, 0};
	if (take(dir, f)) {
		if (lseek(f->fd, 0, SEEK_SET) == 0)
			return 0;
		discard(f);
	}
	f->path = sc_asprintf("%s/%s.msg", dir, id);
	if (!f->path) {
		errno = ENOMEM;
		return -1;
	}
	f->fd = open(f->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	struct stat st;
	if (f->fd < 0 || fstat(f->fd, &st)) {
		int e = errno;
		if (f->fd < 0) /* not ours to unlink: O_EXCL found one there */
			free(f->path), f->path = NULL;
		discard(f);
		errno = e;
		return -1;
	}
	f->ino = (unsigned long long)st.st_ino;
	return 0;
}

int serve_msgfile_cut(struct serve_msgfile *f, unsigned long long size)
{
	/* a same-sized or longer message has already covered the old one */
	int rc = f->had > size ? ftruncate(f->fd, (off_t)size) : 0;
	if (rc == 0)
		f->had = size;
	return rc;
}

void serve_msgfile_release(struct serve_msgfile *f, int delivered)
{
	if (!f->path) {
		if (f->fd >= 0)
			close(f->fd);
		f->fd = -1;
		return;
	}
	/* still the file we wrote, under its name, with no other link: a
	 * sink that renamed or linked it made it its own */
	struct stat st;
	int keep = delivered && f->fd >= 0 && lstat(f->path, &st) == 0 && S_ISREG(st.st_mode) &&
	           st.st_nlink == 1 && (unsigned long long)st.st_ino == f->ino;
	pthread_mutex_lock(&keep_mu);
	if (keep && nkept < KEEP_MAX) {
		kept[nkept++] = *f;
		*f = (struct serve_msgfile){NULL, -1, 0, 0};
	}
	pthread_mutex_unlock(&keep_mu);
	if (f->path)
		discard(f);
}

void serve_msgfile_clear(void)
{
	pthread_mutex_lock(&keep_mu);
	while (nkept)
		discard(&kept[--nkept]);
	pthread_mutex_unlock(&keep_mu);
}
