/* Spool mode's delivery: a queue ordered by when each message is due,
 * and one thread that runs up to cfg->workers POSTs at once on a libcurl
 * multi handle, whose connection cache keeps each connection alive from
 * one POST to the next.
 *
 * Why one thread and not a thread per POST: with four threads each
 * blocked in curl_easy_perform(), every queued message woke one of them
 * (a futex wake and a context switch on a CPU the event loop and the
 * client needed): serve made 4.6 voluntary context switches per message
 * in spool mode, 3.4 with this thread, and used 352 us of CPU per message
 * against 312 (bench/results.md, 2026-12-03). Yet a slow endpoint must
 * not cap the rate at one POST per round trip: the multi handle gives the
 * parallelism without the threads. A queued message wakes the thread
 * only when it sleeps in curl_multi_poll(), once per sleep, so a batch
 * of messages from one flush costs one wakeup. */
#include "http_sink.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct hs_item {
	char *id;
	unsigned attempts;
	long long due; /* monotonic ms */
	unsigned long long seq;
	struct hs_held *held; /* in memory only (spool_held.c), or NULL: in new/ */
};

/* One POST in flight: its easy handle (a multi handle's transfer), the
 * message and what the transfer points at. */
struct slot {
	CURL *curl;
	int busy;
	struct hs_item it;
	double received;
	struct hs_request req;
	struct hs_transfer t;
};

struct hs_workers {
	const struct hs_config *cfg;
	struct hs_spool *sp;
	pthread_mutex_t mu; /* the queue, nheld, stopping, polling */
	struct hs_item *heap;
	size_t n, cap;
	unsigned long long seq;
	size_t nheld; /* items with a held message, queued or in flight */
	int stopping;
	int polling; /* the thread sleeps (or is about to) in curl_multi_poll */
	CURLM *multi;
	struct slot *slots;
	int nslots, nbusy; /* nbusy: slots in flight; the thread's alone */
	pthread_t thread;
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

/* Wake the thread if it sleeps in curl_multi_poll (or is about to:
 * a wakeup before the poll makes it return at once). mu held; the caller
 * calls curl_multi_wakeup() after the unlock when this returns 1. */
static int wake_needed(struct hs_workers *w)
{
	int wake = w->polling;
	w->polling = 0; /* one wakeup per sleep, not one per message */
	return wake;
}

/* Queue it (its id allocated, or NULL: out of memory) and wake the
 * thread. A held item's slot was reserved (hs_workers_reserve_hold): an
 * item that cannot be queued gives it back. SC_OK, or SC_ENOMEM with
 * it.id freed. */
static int enqueue(struct hs_workers *w, struct hs_item it)
{
	pthread_mutex_lock(&w->mu);
	int rc = it.id ? push(w, it) : -1;
	if (rc && it.held)
		w->nheld--;
	int wake = !rc && wake_needed(w);
	pthread_mutex_unlock(&w->mu);
	/* w outlives every enqueue (hs_workers_stop joins first) */
	if (wake)
		curl_multi_wakeup(w->multi);
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

/* An attempt's end: what its outcome o means (rc: how building the
 * request went, SC_OK when o is the POST's). Frees o->reason. */
static void finish(struct hs_workers *w, struct hs_item *it, double received, int rc,
                   const char *build_error, struct hs_outcome *o)
{
	if (it->held && (rc || o->result != HS_DELIVERED) && write_out(w, it)) {
		free(o->reason);
		return;
	}
	if (rc == SC_EINPUT) {
		/* a template that cannot render this message never will */
		char *r = sc_asprintf("cannot build the request: %s", build_error);
		give_up(w, it->id, r ? r : "cannot build the request", 0);
		free(r);
	} else if (rc) {
		o->reason =
		    sc_asprintf("cannot build the request: %s", build_error ? build_error : "?");
		retry_later(w, it, received, o);
	} else {
		settle(w, it, received, o);
	}
	free(o->reason);
}

/* Start an attempt on the free slot sl: a held message from memory, any
 * other from new/. Its POST joins the multi handle; an attempt that ends
 * here (nothing left to deliver, the request not built) is finished at
 * once and leaves sl free. Takes it. */
static void begin(struct hs_workers *w, struct slot *sl, struct hs_item it)
{
	char *path = NULL;
	cJSON *env = NULL;
	struct hs_held *h = it.held;
	if (!h && !(env = still_due(w, &it, &path))) {
		free(it.id);
		return;
	}
	struct sc_error err = SC_ERROR_INIT;
	double received = env_received(h ? h->env : env);
	int rc = h ? hs_request_build(w->cfg, h->env, NULL, h->eml.p, h->eml.len, &sl->req, &err)
	         : path ? hs_request_build(w->cfg, env, path, NULL, 0, &sl->req, &err)
	                : SC_ENOMEM;
	free(path);
	cJSON_Delete(env);
	struct hs_outcome o = {HS_RETRY, 0, -1, NULL};
	if (!rc) {
		hs_post_setup(sl->curl, &sl->req, &sl->t);
		if (curl_multi_add_handle(w->multi, sl->curl) == CURLM_OK) {
			sl->busy = 1;
			sl->it = it;
			sl->received = received;
			w->nbusy++;
			sc_error_clear(&err);
			return;
		}
		/* not started: an outcome like any failed POST's, retried */
		hs_post_judge(sl->curl, CURLE_OUT_OF_MEMORY, &sl->t, &o);
		hs_request_free(&sl->req);
	}
	finish(w, &it, received, rc, err.message, &o);
	free(it.id);
	sc_error_clear(&err);
}

/* A transfer of the multi handle is over (CURLcode result). */
static void ended(struct hs_workers *w, CURL *curl, CURLcode result)
{
	char *p = NULL;
	curl_easy_getinfo(curl, CURLINFO_PRIVATE, &p);
	struct slot *sl = (struct slot *)p;
	curl_multi_remove_handle(w->multi, curl);
	struct hs_outcome o;
	hs_post_judge(curl, result, &sl->t, &o);
	hs_request_free(&sl->req);
	sl->busy = 0;
	w->nbusy--;
	finish(w, &sl->it, sl->received, SC_OK, NULL, &o);
	free(sl->it.id);
	sl->it.id = NULL;
}

/* ---- the thread ---- */

static struct slot *free_slot(struct hs_workers *w)
{
	for (int i = 0; i < w->nslots; i++)
		if (!w->slots[i].busy)
			return &w->slots[i];
	return NULL;
}

/* Start every due message a slot is free for. mu held; dropped around
 * each begin(), which may queue (retry_later). */
static void start_due(struct hs_workers *w)
{
	struct slot *sl;
	while (!w->stopping && w->n && w->nbusy < w->nslots && w->heap[0].due <= hs_now_ms() &&
	       (sl = free_slot(w))) {
		struct hs_item it = pop(w);
		pthread_mutex_unlock(&w->mu);
		begin(w, sl, it);
		pthread_mutex_lock(&w->mu);
	}
}

/* How long curl_multi_poll may sleep: until the next queued message is
 * due (if a slot is free for it; 0 when one is due now: a message queued
 * while the thread was not polling woke nothing), what the multi handle
 * asks for, and while stopping at most 100 ms, so that the transfers'
 * abort check (stop_at) runs. mu held. */
static int poll_ms(struct hs_workers *w)
{
	long ms = -1;
	if (!w->stopping && w->n && w->nbusy < w->nslots) {
		long long wait = w->heap[0].due - hs_now_ms();
		ms = wait <= 0 ? 0 : wait > 60000 ? 60000 : (long)wait;
	}
	long curl_ms = -1;
	curl_multi_timeout(w->multi, &curl_ms);
	if (curl_ms >= 0 && (ms < 0 || curl_ms < ms))
		ms = curl_ms;
	if (w->nbusy && (ms < 0 || ms > 1000))
		ms = 1000;
	if (w->stopping && (ms < 0 || ms > 100))
		ms = 100;
	return ms < 0 ? 60000 : (int)ms;
}

static void *delivery_thread(void *arg)
{
	struct hs_workers *w = arg;
	pthread_mutex_lock(&w->mu);
	while (!w->stopping || w->nbusy) {
		start_due(w);
		pthread_mutex_unlock(&w->mu);
		int running = 0;
		curl_multi_perform(w->multi, &running);
		CURLMsg *m;
		int left, reaped = 0;
		while ((m = curl_multi_info_read(w->multi, &left)))
			if (m->msg == CURLMSG_DONE)
				ended(w, m->easy_handle, m->data.result), reaped = 1;
		pthread_mutex_lock(&w->mu);
		if (w->stopping && !w->nbusy)
			break;
		int ms = poll_ms(w);
		if (reaped || ms == 0)
			continue; /* slots were freed, or a message is due: start it first */
		w->polling = 1;
		pthread_mutex_unlock(&w->mu);
		curl_multi_poll(w->multi, NULL, 0, ms, NULL);
		pthread_mutex_lock(&w->mu);
		w->polling = 0;
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
	for (int i = 0; w->slots && i < w->nslots; i++)
		hs_curl_free(w->slots[i].curl);
	if (w->multi)
		curl_multi_cleanup(w->multi);
	free(w->slots);
	free(w->heap);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

int hs_workers_start(const struct hs_config *cfg, struct hs_spool *sp,
                     const _Atomic long long *stop_at, struct hs_workers **out,
                     struct sc_error *err)
{
	struct hs_workers *w = calloc(1, sizeof *w);
	if (!w)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	if (pthread_mutex_init(&w->mu, NULL)) {
		free(w);
		return sc_error_set(err, SC_EINTERNAL, "cannot initialise the delivery queue");
	}
	w->cfg = cfg;
	w->sp = sp;
	w->multi = curl_multi_init();
	w->slots = calloc((size_t)cfg->workers, sizeof *w->slots);
	if (!w->multi || !w->slots) {
		free_workers(w);
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	/* every connection of the parallel POSTs stays in the cache between
	 * them */
	curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS, (long)cfg->workers);
	for (; w->nslots < cfg->workers; w->nslots++) {
		struct slot *sl = &w->slots[w->nslots];
		if (!(sl->curl = hs_curl_new(cfg, stop_at, err))) {
			free_workers(w);
			return err->code ? err->code : SC_ENOMEM;
		}
		curl_easy_setopt(sl->curl, CURLOPT_PRIVATE, (char *)sl);
	}
	int e = pthread_create(&w->thread, NULL, delivery_thread, w);
	if (e) {
		free_workers(w);
		return sc_error_set(err, SC_EINTERNAL, "cannot start the delivery thread: %s",
		                    strerror(e));
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
	int wake = wake_needed(w);
	pthread_mutex_unlock(&w->mu);
	if (wake)
		curl_multi_wakeup(w->multi);
	pthread_join(w->thread, NULL); /* started: hs_workers_start gave w out */
	if (w->n)
		sc_log(SC_LOG_INFO, "http sink: %zu message(s) stay spooled for the next start",
		       w->n);
	free_workers(w);
}
