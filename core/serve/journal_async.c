/* sc_journal_wait_async(): a record's flush waited for on the journal's
 * flusher thread, so that the caller does not block (sink.h).
 *
 * Why: a delivery thread per message that appends, sleeps until the
 * shared fdatasync() and wakes the event loop cost 3.7 context switches
 * per message on the benchmark VM (/proc/PID/task/ counts, 2026-12-03),
 * most of what kept its two CPUs 15-25 % idle under load. With the wait
 * here, the event loop appends and goes on; one thread takes every
 * waiter queued since its last pass, waits once (sc_journal_wait: the
 * group commit every other caller shares), and calls each back.
 *
 * The waiters come in order of their calls, which is the order of their
 * records when the caller appends and queues from one thread: the first
 * wait of a pass leads a flush that covers the rest, whose own waits
 * then return at once. */
#include "journal.h"

#include <pthread.h>
#include <stdlib.h>

struct waiter {
	struct waiter *next;
	struct sc_journal_ticket t;
	sc_journal_flushed_fn done;
	void *arg;
};

struct journal_flusher {
	struct sc_journal *j;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct waiter *head, **tail;
	int stop;
	int sleeping; /* waits on cv: a new waiter signals it */
	pthread_t thread;
};

static void *flusher_thread(void *arg)
{
	struct journal_flusher *fl = arg;
	pthread_mutex_lock(&fl->mu);
	for (;;) {
		while (!fl->head && !fl->stop) {
			fl->sleeping = 1;
			pthread_cond_wait(&fl->cv, &fl->mu);
			fl->sleeping = 0;
		}
		struct waiter *w = fl->head;
		if (!w)
			break; /* stopped, and nothing is left: close() drains */
		fl->head = NULL;
		fl->tail = &fl->head;
		pthread_mutex_unlock(&fl->mu);
		while (w) {
			struct waiter *next = w->next;
			w->done(w->arg, sc_journal_wait(fl->j, &w->t)); /* errno set */
			free(w);
			w = next;
		}
		pthread_mutex_lock(&fl->mu);
	}
	pthread_mutex_unlock(&fl->mu);
	return NULL;
}

int journal_flusher_start(struct sc_journal *j, struct journal_flusher **out)
{
	struct journal_flusher *fl = calloc(1, sizeof *fl);
	if (!fl)
		return -1;
	fl->j = j;
	fl->tail = &fl->head;
	pthread_mutex_init(&fl->mu, NULL);
	pthread_cond_init(&fl->cv, NULL);
	if (pthread_create(&fl->thread, NULL, flusher_thread, fl)) {
		pthread_cond_destroy(&fl->cv);
		pthread_mutex_destroy(&fl->mu);
		free(fl);
		return -1;
	}
	*out = fl;
	return 0;
}

int journal_flusher_add(struct journal_flusher *fl, const struct sc_journal_ticket *t,
                        sc_journal_flushed_fn done, void *arg)
{
	struct waiter *w = malloc(sizeof *w);
	if (!w)
		return -1;
	*w = (struct waiter){NULL, *t, done, arg};
	pthread_mutex_lock(&fl->mu);
	*fl->tail = w;
	fl->tail = &w->next;
	int wake = fl->sleeping;
	fl->sleeping = 0; /* one signal per sleep, not one per waiter */
	pthread_mutex_unlock(&fl->mu);
	if (wake)
		pthread_cond_signal(&fl->cv);
	return 0;
}

void journal_flusher_stop(struct journal_flusher *fl)
{
	if (!fl)
		return;
	pthread_mutex_lock(&fl->mu);
	fl->stop = 1;
	pthread_mutex_unlock(&fl->mu);
	pthread_cond_signal(&fl->cv);
	pthread_join(fl->thread, NULL);
	pthread_cond_destroy(&fl->cv);
	pthread_mutex_destroy(&fl->mu);
	free(fl);
}
