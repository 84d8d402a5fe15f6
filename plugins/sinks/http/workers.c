/* Spool mode's delivery workers: a queue ordered by when each message is
 * due, a condition variable that wakes a worker the moment deliver()
 * adds one, and per worker one libcurl handle whose connection is kept
 * alive from one POST to the next. */
#include "http_sink.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct hs_item {
	char *id;
	unsigned attempts;
	long long due; /* monotonic ms */
	unsigned long long seq;
	struct hs_held *held; /* in memory only (spool_held.c), or NULL: in new/ */
};

struct hs_workers {
	const struct hs_config *cfg;
	struct hs_spool *sp;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct hs_item *heap;
	size_t n, cap;
	unsigned long long seq;
	size_t nheld; /* items with a held message, queued or in attempt() */
	int stopping;
	pthread_t *threads;
	void **curls;
	int nthreads;
};

/* ---- the queue: a binary heap on (due, seq) ---- */

static int before(const struct hs_item *a, const struct hs_item *b)
{
	return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void swap(struct hs_item *a, struct hs_item *b)
{
	struct hs_item t = *a;
	*a = *b;
	*b = t;
}

static int push(struct hs_workers *w, struct hs_item it)
{
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 256;
		struct hs_item *h = realloc(w->heap, cap * sizeof *h);
		if (!h)
			return -1;
		w->heap = h;
		w->cap = cap;
	}
	it.seq = w->seq++;
	size_t i = w->n++;
	w->heap[i] = it;
	while (i && before(&w->heap[i], &w->heap[(i - 1) / 2])) {
		swap(&w->heap[i], &w->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	return 0;
}

static struct hs_item pop(struct hs_workers *w)
{
	struct hs_item top = w->heap[0];
	w->heap[0] = w->heap[--w->n];
	for (size_t i = 0;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < w->n && before(&w->heap[l], &w->heap[m]))
			m = l;
		if (r < w->n && before(&w->heap[r], &w->heap[m]))
			m = r;
		if (m == i)
			break;
		swap(&w->heap[i], &w->heap[m]);
		i = m;
	}
	return top;
}

/* Queue it (its id allocated, or NULL: out of memory) and wake a
 * worker. A held item's slot was reserved (hs_workers_reserve_hold): an
 * item that cannot be queued gives it back. SC_OK, or SC_ENOMEM with
 * it.id freed. */
static int enqueue(struct hs_workers *w, struct hs_item it)
{
	pthread_mutex_lock(&w->mu);
	int rc = it.id ? push(w, it) : -1;
	if (rc && it.held)
		w->nheld--;
	pthread_mutex_unlock(&w->mu);
	/* after the unlock, so the worker woken does not wait for it; w
	 * outlives every enqueue (hs_workers_stop joins first) */
	if (!rc)
		pthread_cond_signal(&w->cv);
	if (rc)
		free(it.id);
	return rc ? SC_ENOMEM : SC_OK;
}

int hs_workers_add(struct hs_workers *w, const char *id, unsigned attempts, double next)
{
	long long now = hs_now_ms(), due = now;
	double wait = next - hs_wall();
	if (next > 0 && wait > 0)
		due = now + (long long)(wait * 1000);
	return enqueue(w, (struct hs_item){strdup(id), attempts, due, 0, NULL});
}

int hs_workers_reserve_hold(struct hs_workers *w)
{
	pthread_mutex_lock(&w->mu);
	int ok = !w->stopping && w->nheld < HS_HOLD_LIMIT;
	if (ok)
		w->nheld++;
	pthread_mutex_unlock(&w->mu);
	return ok;
}

void hs_workers_release_hold(struct hs_workers *w)
{
	pthread_mutex_lock(&w->mu);
	w->nheld--;
	pthread_mutex_unlock(&w->mu);
}

int hs_workers_add_held(struct hs_workers *w, struct hs_held *h)
{
	return enqueue(w, (struct hs_item){strdup(h->id), 0, hs_now_ms(), 0, h});
}

static void unhold(struct hs_workers *w, struct hs_item *it)
{
	hs_workers_release_hold(w);
	it->held = NULL;
}

/* A held message that its first POST did not deliver goes into new/, to
 * be retried, refused or kept from there as any spooled message. 0; or
 * -1 when it cannot be written (a full disk): it stays held, with its
 * record in the journal, and is tried again after a backoff (it->held is
 * then the queue's). */
static int write_out(struct hs_workers *w, struct hs_item *it)
{
	if (hs_spool_write_out(w->sp, it->held) == 0) {
		unhold(w, it);
		return 0;
	}
	sc_log(SC_LOG_ERROR,
	       "%s: cannot write it into the spool: %s; kept in memory and in the journal, "
	       "tried again later",
	       it->id, strerror(errno));
	double delay = hs_backoff(w->cfg, it->attempts + 1);
	struct hs_item again = {strdup(it->id), it->attempts + 1,
	                        hs_now_ms() + (long long)(delay * 1000), 0, it->held};
	if (enqueue(w, again)) {
		sc_log(SC_LOG_ERROR,
		       "%s: out of memory: replayed from the journal at the next start", it->id);
		hs_held_abandon(it->held);
	}
	it->held = NULL;
	return -1;
}

/* ---- one attempt ---- */

/* `logged`: the attempt's own line already said so. */
static void give_up(struct hs_workers *w, const char *id, const char *reason, int logged)
{
	struct sc_error err = SC_ERROR_INIT;
	if (hs_spool_fail(w->sp, id, reason, &err))
		sc_log(SC_LOG_ERROR, "%s: %s", id, err.message);
	else if (!logged)
		sc_log(SC_LOG_WARN, "%s: moved to failed/: %s", id, reason);
	sc_error_clear(&err);
}

static double env_received(const cJSON *env)
{
	const cJSON *r = cJSON_GetObjectItemCaseSensitive(env, "received");
	return cJSON_IsNumber(r) ? r->valuedouble : hs_wall();
}

/* A retryable failure: back off (Retry-After wins when longer), or give
 * up when the next attempt would come after max_age. */
static void retry_later(struct hs_workers *w, struct hs_item *it, double received,
                        const struct hs_outcome *o)
{
	unsigned attempts = it->attempts + 1;
	double delay = hs_backoff(w->cfg, attempts);
	if (o->retry_after >= 0 && (double)o->retry_after > delay)
		delay = (double)o->retry_after;
	double next = hs_wall() + delay;
	const char *why = o->reason ? o->reason : "?";
	if (next > received + w->cfg->max_age) {
		hs_log_outcome(it->id, o, "max_age reached: moved to failed/");
		char *r =
		    sc_asprintf("expired: not delivered within max_age (%g s) after %u attempt(s); "
		                "last: %s",
		                w->cfg->max_age, attempts, why);
		give_up(w, it->id, r ? r : "expired", 1);
		free(r);
		return;
	}
	char *then = sc_asprintf("retry %u in %.1f s", attempts, delay);
	hs_log_outcome(it->id, o, then);
	free(then);
	hs_spool_retry_state(w->sp, it->id, attempts, next, why);
	if (hs_workers_add(w, it->id, attempts, next))
		sc_log(SC_LOG_ERROR, "%s: out of memory: retried at the next start", it->id);
}

/* What a POST's outcome means for the spooled message. */
static void settle(struct hs_workers *w, struct hs_item *it, double received,
                   const struct hs_outcome *o)
{
	if (o->result == HS_DELIVERED && it->held) {
		hs_log_outcome(it->id, o, NULL);
		hs_spool_held_delivered(w->sp, it->held);
		unhold(w, it);
	} else if (o->result == HS_DELIVERED) {
		hs_spool_done(w->sp, it->id, it->attempts > 0);
		hs_log_outcome(it->id, o, NULL);
	} else if (o->result == HS_REFUSED) {
		hs_log_outcome(it->id, o, "moved to failed/");
		give_up(w, it->id, o->reason ? o->reason : "refused", 1);
	} else if (o->result == HS_RETRY) {
		retry_later(w, it, received, o);
	} else {
		sc_log(SC_LOG_INFO, "%s: POST interrupted by stop; it stays spooled", it->id);
	}
}

/* The envelope of a message still worth trying, or NULL when it was
 * dealt with here (unreadable, expired, removed by hand). */
static cJSON *still_due(struct hs_workers *w, const struct hs_item *it, char **path)
{
	struct sc_error err = SC_ERROR_INIT;
	cJSON *env = hs_spool_envelope(w->sp, it->id, &err);
	*path = hs_spool_path(w->sp, "new", it->id, ".eml");
	if (!env) {
		give_up(w, it->id, err.message ? err.message : "no envelope", 0);
	} else if (hs_wall() > env_received(env) + w->cfg->max_age) {
		give_up(w, it->id, "expired: not delivered within max_age", 0);
	} else if (*path && access(*path, F_OK) && errno == ENOENT) {
		/* removed by hand: nothing left to deliver or to keep */
		sc_log(SC_LOG_WARN, "%s: no longer in the spool; dropped", it->id);
		hs_spool_done(w->sp, it->id, 1);
	} else {
		sc_error_clear(&err);
		return env;
	}
	cJSON_Delete(env);
	free(*path);
	*path = NULL;
	sc_error_clear(&err);
	return NULL;
}

/* One attempt: a held message from memory, any other from new/. */
static void attempt(struct hs_workers *w, void *curl, struct hs_item *it)
{
	char *path = NULL;
	cJSON *env = NULL;
	struct hs_held *h = it->held;
	if (!h && !(env = still_due(w, it, &path)))
		return;
	struct sc_error err = SC_ERROR_INIT;
	struct hs_request req;
	double received = env_received(h ? h->env : env);
	int rc = h      ? hs_request_build(w->cfg, h->env, NULL, h->eml.p, h->eml.len, &req, &err)
	         : path ? hs_request_build(w->cfg, env, path, NULL, 0, &req, &err)
	                : SC_ENOMEM;
	free(path);
	cJSON_Delete(env);
	struct hs_outcome o = {HS_RETRY, 0, -1, NULL};
	if (!rc) {
		hs_post(curl, &req, &o);
		hs_request_free(&req);
	}
	if (h && (rc || o.result != HS_DELIVERED) && write_out(w, it)) {
		free(o.reason);
		sc_error_clear(&err);
		return;
	}
	if (rc == SC_EINPUT) {
		/* a template that cannot render this message never will */
		char *r = sc_asprintf("cannot build the request: %s", err.message);
		give_up(w, it->id, r ? r : "cannot build the request", 0);
		free(r);
	} else if (rc) {
		o.reason =
		    sc_asprintf("cannot build the request: %s", err.message ? err.message : "?");
		retry_later(w, it, received, &o);
	} else {
		settle(w, it, received, &o);
	}
	free(o.reason);
	sc_error_clear(&err);
}

/* ---- the threads ---- */

struct worker_arg {
	struct hs_workers *w;
	void *curl;
};

static void wait_until(struct hs_workers *w, long long due)
{
	struct timespec ts = {(time_t)(due / 1000), (long)(due % 1000) * 1000000};
	pthread_cond_timedwait(&w->cv, &w->mu, &ts);
}

static void *worker(void *arg)
{
	struct hs_workers *w = ((struct worker_arg *)arg)->w;
	void *curl = ((struct worker_arg *)arg)->curl;
	free(arg);
	pthread_mutex_lock(&w->mu);
	while (!w->stopping) {
		if (!w->n) {
			pthread_cond_wait(&w->cv, &w->mu);
			continue;
		}
		if (w->heap[0].due > hs_now_ms()) {
			wait_until(w, w->heap[0].due);
			continue;
		}
		struct hs_item it = pop(w);
		pthread_mutex_unlock(&w->mu);
		attempt(w, curl, &it);
		free(it.id);
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void free_workers(struct hs_workers *w)
{
	for (size_t i = 0; i < w->n; i++) {
		/* a held message not yet tried: into new/ for the next start; if
		 * even that fails, its journal record is replayed there */
		struct hs_held *h = w->heap[i].held;
		if (h && hs_spool_write_out(w->sp, h)) {
			sc_log(SC_LOG_ERROR,
			       "%s: cannot write it into the spool: %s; replayed "
			       "from the journal at the next start",
			       w->heap[i].id, strerror(errno));
			hs_held_abandon(h);
		}
		free(w->heap[i].id);
	}
	for (int i = 0; w->curls && i < w->cfg->workers; i++)
		hs_curl_free(w->curls[i]);
	free(w->curls);
	free(w->heap);
	free(w->threads);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

static int init_sync(struct hs_workers *w)
{
	pthread_condattr_t ca;
	if (pthread_condattr_init(&ca))
		return -1;
	/* due times are monotonic: a clock step must not stall retries */
	int rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) || pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (rc)
		return -1;
	if (pthread_mutex_init(&w->mu, NULL)) {
		pthread_cond_destroy(&w->cv);
		return -1;
	}
	return 0;
}

int hs_workers_start(const struct hs_config *cfg, struct hs_spool *sp,
                     const _Atomic long long *stop_at, struct hs_workers **out,
                     struct sc_error *err)
{
	struct hs_workers *w = calloc(1, sizeof *w);
	if (!w)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	if (init_sync(w)) {
		free(w);
		return sc_error_set(err, SC_EINTERNAL, "cannot initialise the delivery queue");
	}
	w->cfg = cfg;
	w->sp = sp;
	w->threads = calloc((size_t)cfg->workers, sizeof *w->threads);
	w->curls = calloc((size_t)cfg->workers, sizeof *w->curls);
	if (!w->threads || !w->curls) {
		free_workers(w);
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	for (int i = 0; i < cfg->workers; i++)
		if (!(w->curls[i] = hs_curl_new(cfg, stop_at, err))) {
			free_workers(w);
			return err->code ? err->code : SC_ENOMEM;
		}
	for (; w->nthreads < cfg->workers; w->nthreads++) {
		struct worker_arg *a = malloc(sizeof *a);
		if (a)
			*a = (struct worker_arg){w, w->curls[w->nthreads]};
		if (!a || pthread_create(&w->threads[w->nthreads], NULL, worker, a)) {
			free(a);
			*out = w;
			hs_workers_stop(w);
			*out = NULL;
			return sc_error_set(err, SC_EINTERNAL,
			                    "cannot start the delivery workers: %s",
			                    strerror(errno));
		}
	}
	*out = w;
	return SC_OK;
}

void hs_workers_stop(struct hs_workers *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stopping = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	for (int i = 0; i < w->nthreads; i++)
		pthread_join(w->threads[i], NULL);
	if (w->n)
		sc_log(SC_LOG_INFO, "http sink: %zu message(s) stay spooled for the next start",
		       w->n);
	free_workers(w);
}
