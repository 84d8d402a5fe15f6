/* Parallel SMTP sessions for one asset (max_connections > 1). The
 * asset's own session (the primary) authenticates with the first message
 * exactly as with one session; each further session is a clone of its
 * handle (same options and credentials, so the method Automatic chose and
 * the OAuth token are shared) and connects when it gets its first message.
 *
 * One thread per session, each running the same synchronous code as a
 * single session (session.c's transactions, its reconnect rule, its
 * failure messages) on its own easy handle: libcurl's multi interface
 * cannot carry SMTP in parallel, because libcurl 7.88 (Debian 12's) waits
 * for the end-of-data reply inside smtp_done() with a blocking loop, so
 * every other transfer of the multi would stall for that round trip. The
 * threads touch only their session, its message and a copy of the
 * envelope; results, the queue and the output belong to the main thread,
 * which is woken through a pipe when a message is done.
 *
 * sc_send_async queues the message as a job and hands it to a free
 * session; when all are busy it waits until one frees, so at most N
 * messages are in flight and memory stays bounded. A job's result is
 * completed on the main thread and the runtime prints it once it and every
 * result before it are complete (runtime.c).
 *
 * A session whose new connection the server refuses before it could take
 * anything (no further than MAIL FROM, and a 421 or no answer at all: a
 * server limiting concurrent sessions) while other sessions remain is
 * retired, and its message goes back to the head of the queue for a
 * working one: not an attempt, and never a duplicate. Any other failure
 * fails that message alone (after session.c's own retry: once, on a fresh
 * connection, when a kept connection turned out closed before MAIL FROM);
 * its session reconnects for the next one. */
#include "session.h"
#include "result.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* libcurl, OpenSSL and our code need far less than glibc's default 8 MiB
 * (virtual, but a bound keeps the address space small too). */
#define WORKER_STACK (512 * 1024)

struct core_parallel {
	struct core_runtime *rt;
	pthread_mutex_t mu;
	struct core_job *done, *done_tail; /* finished by workers (mu) */
	int wake[2];                       /* a byte per finished job */
	size_t inflight;                   /* jobs handed to workers, not yet finished here */
};

struct core_pool {
	struct core_parallel *par;
	struct sc_session *primary;
	struct sc_session **conns; /* conns[0] is the primary */
	size_t n;
	size_t limit;                 /* sessions allowed: max_connections, less the refused */
	struct core_job *head, *tail; /* waiting for a free session (main thread) */
	CURL *proto; /* the primary's handle as it was, idle, after it authenticated */
};

struct core_worker {
	pthread_t thread;
	pthread_cond_t cv;
	int quit;
};

struct core_job {
	struct core_job *next;
	struct core_pool *pool;
	struct sc_session *s; /* the session it ran on */
	struct core_report *rep;
	size_t idx;         /* rep->results[idx] */
	const char *action; /* its name, for the default failure text */
	struct sc_message *m;
	struct sc_envelope env; /* a copy: the plugin's is gone when it ends */
	char *from, **rcpt;
	int rc;
	struct sc_error err;
	struct sc_delivery d;
	int refused_session; /* the server refused this new session (see above) */
};

static void job_free(struct core_job *j)
{
	if (!j)
		return;
	sc_message_free(j->m); /* the core's reference */
	free(j->from);
	for (size_t i = 0; j->rcpt && j->rcpt[i]; i++)
		free(j->rcpt[i]);
	free(j->rcpt);
	sc_error_clear(&j->err);
	sc_delivery_free(&j->d);
	free(j);
}

static struct core_job *job_new(const struct sc_envelope *env, struct sc_message *m)
{
	struct core_job *j = calloc(1, sizeof *j);
	if (!j)
		return NULL;
	j->env = *env;
	j->from = strdup(env->mail_from);
	j->rcpt = calloc(env->nrcpt + 1, sizeof *j->rcpt);
	int ok = j->from && j->rcpt;
	for (size_t i = 0; ok && i < env->nrcpt; i++)
		ok = (j->rcpt[i] = strdup(env->rcpt[i])) != NULL;
	if (!ok) {
		job_free(j);
		return NULL;
	}
	j->env.mail_from = j->from;
	j->env.rcpt = (const char *const *)j->rcpt;
	j->m = core_message_ref(m);
	return j;
}

/* ------------------------------------------------------------------ */
/* Workers                                                              */
/* ------------------------------------------------------------------ */

/* Nothing of the transfer can have been accepted: it got no further than
 * MAIL FROM and the server said 421 or nothing (not a timeout: a retry
 * would only double the wait). */
static int nothing_accepted(const struct sc_session *s)
{
	return core_failed_before_mail(s, s->last_rc) && (!s->tr.answer || s->tr.last_code == 421);
}

static void run_job(struct sc_session *s, struct core_job *j)
{
	j->rc = core_send_run(s, &j->env, j->m, &j->d, &j->err);
	/* s->delivered is send_run's: the first session's first message went
	 * out through sc_send, before there was a pool */
	j->refused_session =
	    j->rc && j->d.naccepted == 0 && s->tr.opened && !s->delivered && nothing_accepted(s);
}

static void *worker(void *arg)
{
	struct sc_session *s = arg;
	struct core_parallel *par = s->pool->par;
	pthread_mutex_lock(&par->mu);
	for (;;) {
		while (!s->job && !s->worker->quit)
			pthread_cond_wait(&s->worker->cv, &par->mu);
		if (!s->job)
			break;
		struct core_job *j = s->job;
		pthread_mutex_unlock(&par->mu);
		run_job(s, j);
		pthread_mutex_lock(&par->mu);
		s->job = NULL;
		j->next = NULL;
		if (par->done_tail)
			par->done_tail->next = j;
		else
			par->done = j;
		par->done_tail = j;
		ssize_t w;
		do
			w = write(par->wake[1], "x", 1);
		while (w < 0 && errno == EINTR);
	}
	pthread_mutex_unlock(&par->mu);
	return NULL;
}

/* Once per session: a clone's when free_session makes it for a job, the
 * first session's when dispatch first gives it one (a request that sends
 * one message starts no thread). */
static int worker_start(struct sc_session *s, struct sc_error *err)
{
	if (!(s->worker = calloc(1, sizeof *s->worker)))
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, WORKER_STACK);
	int rc = pthread_cond_init(&s->worker->cv, NULL);
	if (!rc) {
		rc = pthread_create(&s->worker->thread, &attr, worker, s);
		if (rc)
			pthread_cond_destroy(&s->worker->cv);
	}
	pthread_attr_destroy(&attr);
	if (rc) {
		free(s->worker);
		s->worker = NULL;
		return sc_error_set(err, SC_EINTERNAL, "cannot start a session thread: %s",
		                    strerror(rc));
	}
	return SC_OK;
}

static void worker_stop(struct core_parallel *par, struct sc_session *s)
{
	if (!s->worker)
		return;
	pthread_mutex_lock(&par->mu);
	s->worker->quit = 1;
	pthread_cond_signal(&s->worker->cv);
	pthread_mutex_unlock(&par->mu);
	pthread_join(s->worker->thread, NULL);
	pthread_cond_destroy(&s->worker->cv);
	free(s->worker);
	s->worker = NULL;
}

/* ------------------------------------------------------------------ */
/* The main thread's side                                               */
/* ------------------------------------------------------------------ */

static void finish(struct core_job *j)
{
	struct core_pool *pool = j->pool;
	struct sc_result *r = &j->rep->results[j->idx];
	/* what sc_send and then run_sets do for a message sent alone */
	core_send_report(pool->primary, j->m, &j->d, j->rc, r, &j->err);
	core_runtime_result_close(j->rep, r, j->action, pool->primary, j->rc, &j->err);
	core_runtime_result_done(pool->par->rt, j->rep, j->rc);
	job_free(j);
}

static size_t active(const struct core_pool *pool)
{
	size_t n = 0;
	for (size_t i = 0; i < pool->n; i++)
		n += !pool->conns[i]->retired;
	return n;
}

/* An idle session, or a new one while fewer than `limit` exist. */
static struct sc_session *free_session(struct core_pool *pool)
{
	for (size_t i = 0; i < pool->n; i++) {
		struct sc_session *s = pool->conns[i];
		if (!s->busy && !s->retired)
			return s;
	}
	if (active(pool) >= pool->limit || !pool->proto)
		return NULL;
	struct sc_error e = SC_ERROR_INIT;
	struct sc_session **v = realloc(pool->conns, (pool->n + 1) * sizeof *v);
	if (v)
		pool->conns = v;
	struct sc_session *c = v ? core_session_clone(pool->primary, pool->proto, &e) : NULL;
	if (c)
		c->pool = pool;
	if (c && worker_start(c, &e)) {
		core_session_free(c);
		c = NULL;
	}
	if (!c) {
		sc_log(SC_LOG_WARN, "%s; going on with %zu sessions",
		       e.message ? e.message : "out of memory", active(pool));
		pool->limit = active(pool);
		sc_error_clear(&e);
		return NULL;
	}
	pool->conns[pool->n++] = c;
	return c;
}

static void dispatch(struct core_pool *pool)
{
	struct core_parallel *par = pool->par;
	while (pool->head) {
		struct sc_session *s = free_session(pool);
		if (!s)
			return;
		struct core_job *j = pool->head;
		pool->head = j->next;
		if (!pool->head)
			pool->tail = NULL;
		j->next = NULL;
		j->s = s;
		if (!s->worker && worker_start(s, &j->err)) {
			j->rc = j->err.code;
			finish(j);
			continue;
		}
		s->busy = 1;
		par->inflight++;
		pthread_mutex_lock(&par->mu);
		s->job = j;
		pthread_cond_signal(&s->worker->cv);
		pthread_mutex_unlock(&par->mu);
	}
}

static void job_done(struct core_job *j)
{
	struct core_pool *pool = j->pool;
	struct sc_session *s = j->s;
	s->busy = 0;
	if (j->refused_session && active(pool) > 1) {
		s->retired = 1;
		pool->limit = active(pool);
		sc_log(SC_LOG_WARN,
		       "the server at %s:%ld refused one more session (%s); going on with %zu",
		       s->host, s->port, s->tr.answer ? s->tr.answer : "closed", pool->limit);
		sc_error_clear(&j->err);
		sc_delivery_free(&j->d);
		j->rc = SC_OK;
		j->next = pool->head;
		pool->head = j;
		if (!pool->tail)
			pool->tail = j;
	} else {
		finish(j);
	}
	dispatch(pool);
}

/* Wait for a finished job (or for `fd` to be readable when fd >= 0) and
 * complete what finished. */
static void loop_once(struct core_parallel *par, int fd, int *readable)
{
	struct pollfd p[2] = {{.fd = par->wake[0], .events = POLLIN}, {.fd = fd, .events = POLLIN}};
	if (poll(p, fd >= 0 ? 2 : 1, -1) < 0)
		return; /* EINTR: the caller loops */
	if (fd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)) && readable)
		*readable = 1;
	if (!(p[0].revents & POLLIN))
		return;
	char buf[64];
	while (read(par->wake[0], buf, sizeof buf) > 0)
		;
	pthread_mutex_lock(&par->mu);
	struct core_job *list = par->done;
	par->done = par->done_tail = NULL;
	pthread_mutex_unlock(&par->mu);
	while (list) {
		struct core_job *j = list;
		list = j->next;
		par->inflight--;
		job_done(j);
	}
}

static int set_flags(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) || fcntl(fd, F_SETFD, FD_CLOEXEC) ? -1
	                                                                                       : 0;
}

int core_pool_new(struct core_runtime *rt, struct sc_session *s, long max, struct sc_error *err)
{
	if (!rt->par) {
		struct core_parallel *par = calloc(1, sizeof *par);
		if (!par || pipe(par->wake) || set_flags(par->wake[0]) || set_flags(par->wake[1])) {
			free(par);
			return sc_error_set(err, SC_EINTERNAL, "cannot create a pipe: %s",
			                    strerror(errno));
		}
		pthread_mutex_init(&par->mu, NULL);
		par->rt = rt;
		rt->par = par;
	}
	struct core_pool *pool = calloc(1, sizeof *pool);
	if (!pool || !(pool->conns = malloc(sizeof *pool->conns))) {
		free(pool);
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	pool->par = rt->par;
	pool->primary = s;
	pool->conns[0] = s;
	pool->n = 1;
	pool->limit = (size_t)max;
	s->pool = pool;
	return SC_OK;
}

int core_pool_submit(struct core_pool *pool, const struct sc_envelope *env, struct sc_message *m,
                     struct core_report *rep, size_t idx, const char *action, struct sc_error *err)
{
	/* Cloned from while idle: curl_easy_duphandle copies a MIME tree with
	 * our callbacks' data, which would then be freed twice. NULL (out of
	 * memory): the primary alone. */
	if (!pool->proto && !pool->primary->busy)
		pool->proto = curl_easy_duphandle(pool->primary->curl);
	struct core_job *j = job_new(env, m);
	if (!j)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	j->pool = pool;
	j->rep = rep;
	j->idx = idx;
	j->action = action;
	core_runtime_result_pending(pool->par->rt, rep);
	j->next = NULL;
	if (pool->tail)
		pool->tail->next = j;
	else
		pool->head = j;
	pool->tail = j;
	dispatch(pool);
	/* Back-pressure: return only once the message has a session. */
	while (pool->head)
		loop_once(pool->par, -1, NULL);
	return SC_PENDING;
}

void core_pool_quiesce(struct core_pool *pool)
{
	for (;;) {
		int busy = pool->head != NULL;
		for (size_t i = 0; i < pool->n && !busy; i++)
			busy = pool->conns[i]->busy;
		if (!busy)
			return;
		loop_once(pool->par, -1, NULL);
	}
}

void core_pool_free(struct core_pool *pool)
{
	if (!pool)
		return;
	for (size_t i = 0; i < pool->n; i++)
		worker_stop(pool->par, pool->conns[i]);
	for (size_t i = 1; i < pool->n; i++)
		core_session_free(pool->conns[i]); /* shut, no QUIT (session.c) */
	if (pool->proto)
		curl_easy_cleanup(pool->proto);
	pool->primary->pool = NULL;
	free(pool->conns);
	free(pool);
}

/* ------------------------------------------------------------------ */
/* For the runtime                                                      */
/* ------------------------------------------------------------------ */

void core_parallel_drain(struct core_runtime *rt)
{
	while (rt->par && rt->par->inflight > 0)
		loop_once(rt->par, -1, NULL);
}

void core_parallel_wait_input(struct core_runtime *rt, int fd)
{
	int readable = 0;
	while (rt->par && rt->par->inflight > 0 && !readable)
		loop_once(rt->par, fd, &readable);
}

void core_parallel_free(struct core_runtime *rt)
{
	if (!rt->par)
		return;
	/* after core_sessions_close, which stopped every pool's threads */
	close(rt->par->wake[0]);
	close(rt->par->wake[1]);
	pthread_mutex_destroy(&rt->par->mu);
	free(rt->par);
	rt->par = NULL;
}
