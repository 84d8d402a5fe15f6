/* Group commit of new/: one fsync of the directory covers every rename
 * into it that finished before the fsync began. Deliveries run on several
 * worker threads; instead of one directory fsync each, a delivery that
 * finds an fsync under way waits for the next one, and whoever finds none
 * running takes every waiting delivery along in the fsync it starts. A
 * delivery returns only after an fsync that began after its rename has
 * succeeded, so its 250 still means "durably in new/". */
#include "http_sink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One delivery waiting; lives on its thread's stack until done. */
struct hs_commit_wait {
	struct hs_commit_wait *next;
	int done, rc, err;
};

int hs_commit_open(struct hs_spool *sp, struct sc_error *err)
{
	char *dir = sc_asprintf("%s/new", sp->dir);
	sp->new_fd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	int e = errno;
	free(dir);
	if (sp->new_fd < 0)
		return sc_error_set(err, SC_EIO, "spool_dir: cannot open %s/new: %s", sp->dir,
		                    strerror(e));
	if (pthread_mutex_init(&sp->commit_mu, NULL))
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	if (pthread_cond_init(&sp->commit_cv, NULL)) {
		pthread_mutex_destroy(&sp->commit_mu);
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	sp->commit_ready = 1;
	return SC_OK;
}

/* Runs with commit_mu held; returns with it held. */
static void commit_batch(struct hs_spool *sp)
{
	struct hs_commit_wait *batch = sp->commit_waiting;
	sp->commit_waiting = NULL;
	sp->committing = 1;
	pthread_mutex_unlock(&sp->commit_mu);
	int rc = fsync(sp->new_fd), e = errno;
	pthread_mutex_lock(&sp->commit_mu);
	for (struct hs_commit_wait *w = batch; w; w = w->next)
		w->done = 1, w->rc = rc, w->err = e;
	sp->committing = 0;
	pthread_cond_broadcast(&sp->commit_cv);
}

int hs_commit_new(struct hs_spool *sp)
{
	struct hs_commit_wait me = {0};
	pthread_mutex_lock(&sp->commit_mu);
	me.next = sp->commit_waiting;
	sp->commit_waiting = &me;
	while (!me.done) {
		if (!sp->committing)
			commit_batch(sp);
		else
			pthread_cond_wait(&sp->commit_cv, &sp->commit_mu);
	}
	pthread_mutex_unlock(&sp->commit_mu);
	errno = me.err;
	return me.rc;
}

void hs_commit_close(struct hs_spool *sp)
{
	if (sp->new_fd >= 0)
		close(sp->new_fd);
	sp->new_fd = -1;
	if (!sp->commit_ready)
		return;
	pthread_cond_destroy(&sp->commit_cv);
	pthread_mutex_destroy(&sp->commit_mu);
	sp->commit_ready = 0;
}
