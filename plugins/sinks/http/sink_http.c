/* sink_http: each received message becomes one HTTP POST, and only a 2xx
 * answer counts. spool mode answers 250 once the message is durably in
 * the spool and lets the workers deliver and retry; sync mode POSTs
 * before the reply, so the sending MTA keeps the message on a 451. */
#include "http_sink.h"
#include "settings_schema.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct sink {
	struct hs_config cfg;
	struct hs_spool sp;
	struct hs_workers *workers;
	/* sync mode: idle easy handles, so deliver() calls in parallel each
	 * get one and its kept-alive connection */
	pthread_mutex_t pool_mu;
	void **pool;
	size_t npool, cap;
	/* after it, every transfer (sync mode's and the workers') is
	 * abandoned: 0 until stop() sets it */
	_Atomic long long stop_at;
};

static int queue_spooled(void *arg, const char *id, unsigned attempts, double next)
{
	return hs_workers_add(arg, id, attempts, next);
}

static int start_spool(struct sink *s, struct sc_error *err)
{
	int rc = hs_spool_open(&s->sp, s->cfg.spool_dir, err);
	if (!rc)
		rc = hs_workers_start(&s->cfg, &s->sp, &s->stop_at, &s->workers, err);
	if (!rc)
		rc = hs_spool_scan(&s->sp, queue_spooled, s->workers, err);
	return rc;
}

static void sink_stop(void *priv, long grace_ms);

static int sink_start(const cJSON *settings, const struct sc_sink_host *host, void **priv,
                      struct sc_error *err)
{
	struct sink *s = calloc(1, sizeof *s);
	if (!s)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	s->sp.lock_fd = -1;
	if (pthread_mutex_init(&s->pool_mu, NULL)) {
		free(s);
		return sc_error_set(err, SC_EINTERNAL, "cannot initialise a mutex");
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int rc = hs_config_parse(settings, host, &s->cfg, err);
	if (!rc && !s->cfg.sync)
		rc = start_spool(s, err);
	if (!rc && s->cfg.sync) {
		/* one handle made now checks ca_file before the first message */
		void *c = hs_curl_new(&s->cfg, &s->stop_at, err);
		rc = c ? SC_OK : err->code;
		hs_curl_free(c);
	}
	if (rc) {
		sink_stop(s, 0);
		return rc;
	}
	if (!s->cfg.verify)
		sc_log(SC_LOG_WARN, "http sink: verify is false: the endpoint's certificate is not "
		                    "checked, so anyone on the path can read and answer the POSTs");
	sc_log(SC_LOG_INFO, "http sink: %s mode%s%s", s->cfg.sync ? "sync" : "spool",
	       s->cfg.sync ? "" : ", spool ", s->cfg.sync ? "" : s->cfg.spool_dir);
	*priv = s;
	return SC_OK;
}

static void *pool_get(struct sink *s, struct sc_error *err)
{
	void *c = NULL;
	pthread_mutex_lock(&s->pool_mu);
	if (s->npool)
		c = s->pool[--s->npool];
	pthread_mutex_unlock(&s->pool_mu);
	return c ? c : hs_curl_new(&s->cfg, &s->stop_at, err);
}

static void pool_put(struct sink *s, void *c)
{
	pthread_mutex_lock(&s->pool_mu);
	if (s->npool == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		void **p = realloc(s->pool, cap * sizeof *p);
		if (p) {
			s->pool = p;
			s->cap = cap;
		}
	}
	if (s->npool < s->cap) {
		s->pool[s->npool++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&s->pool_mu);
	hs_curl_free(c);
}

static enum sc_sink_verdict verdict_of(const struct hs_outcome *o, char **reply)
{
	switch (o->result) {
	case HS_DELIVERED:
		return SC_SINK_ACCEPT;
	case HS_REFUSED:
		*reply = o->status
		             ? sc_asprintf("5.6.0 the HTTP endpoint refused the message (%ld)",
		                           o->status)
		             : strdup("5.6.0 the HTTP endpoint cannot be reached as configured");
		return SC_SINK_REJECT;
	default:
		*reply = o->status
		             ? sc_asprintf("4.3.0 the HTTP endpoint answered %ld; try again later",
		                           o->status)
		             : strdup("4.3.0 the HTTP endpoint is not reachable; try again later");
		return SC_SINK_DEFER;
	}
}

static enum sc_sink_verdict deliver_sync(struct sink *s, const struct sc_inbound *msg,
                                         const cJSON *env, char **reply, struct sc_error *err)
{
	struct hs_request req;
	int rc = hs_request_build(&s->cfg, env, msg->path, NULL, 0, &req, err);
	if (rc == SC_EINPUT) {
		*reply = strdup("5.6.0 the message cannot be turned into the configured request");
		return SC_SINK_REJECT;
	}
	void *c = rc ? NULL : pool_get(s, err);
	if (!c) {
		if (!rc)
			hs_request_free(&req);
		return SC_SINK_DEFER;
	}
	struct hs_outcome o;
	hs_post(c, &req, &o);
	hs_request_free(&req);
	pool_put(s, c);
	hs_log_outcome(msg->id, &o, NULL);
	enum sc_sink_verdict v = verdict_of(&o, reply);
	/* err is logged by serve: the status, never the endpoint's body (it
	 * may echo the message or the credentials it refused; the spool keeps
	 * that excerpt only in its 0600 failed/<id>.reason) */
	if (v != SC_SINK_ACCEPT && o.status)
		sc_error_set(err, SC_ESEND, "HTTP %ld", o.status);
	else if (v != SC_SINK_ACCEPT)
		sc_error_set(err, SC_ESEND, "%s", o.reason ? o.reason : "POST failed");
	free(o.reason);
	return v;
}

/* A held message, durable: to the workers (its reserved slot). */
static void queue_held(struct sink *s, struct hs_held *h)
{
	if (!hs_workers_add_held(s->workers, h))
		return;
	/* durable, so 250 all the same: the next start delivers it */
	if (hs_spool_write_out(&s->sp, h) == 0) {
		sc_log(SC_LOG_ERROR,
		       "%s: spooled, but out of memory to queue it; it is delivered at the next "
		       "start",
		       h->id);
	} else {
		sc_log(SC_LOG_ERROR,
		       "%s: journaled, but neither queued nor spooled (%s); it is delivered at "
		       "the next start",
		       h->id, strerror(errno));
		hs_held_abandon(h);
	}
}

static enum sc_sink_verdict sink_deliver(void *priv, const struct sc_inbound *msg, char **reply,
                                         struct sc_error *err)
{
	struct sink *s = priv;
	if (!hs_id_ok(msg->id)) {
		/* it names spool files: never a path */
		sc_error_set(err, SC_EINTERNAL, "message id \"%s\" is not [A-Za-z0-9._-]", msg->id);
		return SC_SINK_DEFER;
	}
	cJSON *env = hs_envelope(msg);
	if (!env) {
		sc_error_set(err, SC_ENOMEM, "out of memory");
		return SC_SINK_DEFER;
	}
	enum sc_sink_verdict v;
	struct hs_held *h = NULL;
	if (s->cfg.sync) {
		v = deliver_sync(s, msg, env, reply, err);
	} else if (msg->size <= HS_HOLD_MAX && hs_workers_reserve_hold(s->workers)) {
		/* journaled, and POSTed from memory (spool_held.c) */
		v = SC_SINK_ACCEPT;
		if (hs_spool_hold(&s->sp, msg, env, &h, err)) {
			hs_workers_release_hold(s->workers);
			v = SC_SINK_DEFER;
		} else {
			env = NULL; /* h's */
			queue_held(s, h);
		}
	} else if (hs_spool_add(&s->sp, msg, env, err)) {
		v = SC_SINK_DEFER;
	} else {
		/* spooled, so 250 even if the queue is out of memory: the next
		 * start's rescan delivers it */
		if (hs_workers_add(s->workers, msg->id, 0, 0))
			sc_log(SC_LOG_ERROR,
			       "%s: spooled, but out of memory to queue it; it is "
			       "delivered at the next start",
			       msg->id);
		v = SC_SINK_ACCEPT;
	}
	cJSON_Delete(env);
	return v;
}

/* deliver_async: a held message's add, from the append on the event
 * loop to the flush's callback on the journal's flusher thread. */
struct pending_hold {
	struct sink *s;
	struct hs_held *h;
	void (*done)(void *, enum sc_sink_verdict, char *, struct sc_error *);
	void *done_arg;
};

static void hold_flushed(void *arg, int rc)
{
	struct pending_hold *p = arg;
	struct sink *s = p->s;
	struct sc_error err = SC_ERROR_INIT;
	cJSON *env = p->h->env;
	enum sc_sink_verdict v = SC_SINK_ACCEPT;
	if (hs_spool_hold_flushed(&s->sp, p->h, rc, &err)) {
		cJSON_Delete(env);
		hs_workers_release_hold(s->workers);
		v = SC_SINK_DEFER;
	} else {
		queue_held(s, p->h);
	}
	/* the last use of s: once told, the listener may stop the sink */
	p->done(p->done_arg, v, NULL, &err);
	sc_error_clear(&err);
	free(p);
}

/* The held path of sink_deliver without its wait: only that path, which
 * blocks on nothing but the flush. Everything else (sync mode, a message
 * over HS_HOLD_MAX, every hold slot taken, out of memory here) is
 * declined, for deliver() on a worker thread. */
static int sink_deliver_async(void *priv, const struct sc_inbound *msg,
                              void (*done)(void *, enum sc_sink_verdict, char *, struct sc_error *),
                              void *done_arg)
{
	struct sink *s = priv;
	if (s->cfg.sync || !hs_id_ok(msg->id) || msg->size > HS_HOLD_MAX)
		return 0;
	struct pending_hold *p = malloc(sizeof *p);
	cJSON *env = p ? hs_envelope(msg) : NULL;
	if (!env || !hs_workers_reserve_hold(s->workers)) {
		cJSON_Delete(env);
		free(p);
		return 0;
	}
	*p = (struct pending_hold){s, NULL, done, done_arg};
	struct sc_error err = SC_ERROR_INIT;
	if (hs_spool_hold_append(&s->sp, msg, env, &p->h, &err)) {
		cJSON_Delete(env);
		hs_workers_release_hold(s->workers);
		done(done_arg, SC_SINK_DEFER, NULL, &err);
		sc_error_clear(&err);
		free(p);
		return 1;
	}
	/* out of memory for the wait's queue entry: wait here, once, rather
	 * than answer 451 for a message already journaled */
	if (sc_journal_wait_async(s->sp.journal, &p->h->add, hold_flushed, p))
		hold_flushed(p, sc_journal_wait(s->sp.journal, &p->h->add));
	return 1;
}

static void sink_stop(void *priv, long grace_ms)
{
	struct sink *s = priv;
	if (!s)
		return;
	atomic_store(&s->stop_at, hs_now_ms() + (grace_ms > 0 ? grace_ms : 0) + 1);
	hs_workers_stop(s->workers);
	hs_spool_close(&s->sp);
	for (size_t i = 0; i < s->npool; i++)
		hs_curl_free(s->pool[i]);
	free(s->pool);
	pthread_mutex_destroy(&s->pool_mu);
	hs_config_free(&s->cfg);
	free(s);
	curl_global_cleanup();
}

static const struct sc_sink_ops http_ops = {
    .start = sink_start,
    .deliver = sink_deliver,
    .stop = sink_stop,
    .deliver_async = sink_deliver_async,
};

const struct sc_plugin sc_plugin = {
    .abi = SC_PLUGIN_ABI,
    .kind = SC_PLUGIN_SINK,
    .name = "http",
    .identifier = "http",
    .version = "1.0",
    .description = "POST each received message to an HTTP endpoint (JSON or a Mustache "
                   "template); spooled and retried until a 2xx, or synchronously",
    .schema = schema_settings,
    .sink = &http_ops,
};
