/* The host's group commit for sinks (sink.h: sc_commit_*). One syncfs()
 * covers the writes and renames of every delivery in flight, where each
 * delivery used to fsync its files and its directory itself: on this
 * project's benchmark VM (ext4 without a journal) a file fsync writes the
 * file's data, its inode block and its parent directory and flushes the
 * disk cache, every time; syncfs() writes each dirty block once and
 * flushes once per batch (bench/results.md).
 *
 * The batch: a caller adds itself to the waiting list; if no flush runs,
 * it takes the whole list (itself included) and flushes; else it sleeps
 * until the running flush ends and looks again. A caller is released only
 * by a flush that took it from the list, so that flush began after the
 * call: whatever the caller did before calling is covered. */
#define _GNU_SOURCE /* syncfs */
#include <smtp-connector/sink.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One caller waiting; lives on its thread's stack until done. */
struct waiter {
	struct waiter *next;
	int done, rc, err;
};

struct sc_commit {
	int fd; /* any directory of the file system: syncfs() needs an fd */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct waiter *waiting;
	int flushing;
};

int sc_commit_open(const char *dir, struct sc_commit **out, struct sc_error *err)
{
	*out = NULL;
	struct sc_commit *c = calloc(1, sizeof *c);
	if (!c)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	c->fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->fd < 0) {
		int e = errno;
		free(c);
		return sc_error_set(err, SC_EIO, "cannot open %s: %s", dir, strerror(e));
	}
	if (pthread_mutex_init(&c->mu, NULL)) {
		close(c->fd);
		free(c);
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	if (pthread_cond_init(&c->cv, NULL)) {
		pthread_mutex_destroy(&c->mu);
		close(c->fd);
		free(c);
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	*out = c;
	return SC_OK;
}

/* Runs with mu held; returns with it held. */
static void flush_batch(struct sc_commit *c)
{
	struct waiter *batch = c->waiting;
	c->waiting = NULL;
	c->flushing = 1;
	pthread_mutex_unlock(&c->mu);
	int rc = syncfs(c->fd), e = rc ? errno : 0;
	pthread_mutex_lock(&c->mu);
	for (struct waiter *w = batch; w; w = w->next)
		w->done = 1, w->rc = rc, w->err = e;
	c->flushing = 0;
	pthread_cond_broadcast(&c->cv);
}

int sc_commit_wait(struct sc_commit *c)
{
	struct waiter me = {0};
	pthread_mutex_lock(&c->mu);
	me.next = c->waiting;
	/* on the list only until a flush takes the batch, which happens before
	 * done is set: me is off the list before this function returns */
	// cppcheck-suppress autoVariables
	c->waiting = &me;
	while (!me.done) {
		if (!c->flushing)
			flush_batch(c);
		else
			pthread_cond_wait(&c->cv, &c->mu);
	}
	pthread_mutex_unlock(&c->mu);
	errno = me.err;
	return me.rc ? SC_EIO : SC_OK;
}

void sc_commit_close(struct sc_commit *c)
{
	if (!c)
		return;
	close(c->fd);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}
