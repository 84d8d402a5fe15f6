/* The listener's event loop (see listener.h). One thread runs the loop
 * and owns every session; worker threads only run jobs (a delivery, a
 * password check) on data the session does not touch while it waits, and
 * hand the result back through a done list and event_active(). */
#include "listener.h"
#include "session.h"
#include "signature.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Input waiting while a session is busy is capped here: libevent stops
 * reading the socket, so pipelined bytes cannot grow memory. */
#define READ_HIGH_WATER (256 * 1024)

struct server;

struct conn {
	struct server *srv;
	struct bufferevent *bev;
	struct serve_session *s;
	struct event *greet_timer;
	const struct serve_listen *lst;
	evutil_socket_t fd; /* ours to close: bufferevents never own it, so
	                       STARTTLS can swap the plain one for a TLS one */
	int tls_wait;       /* STARTTLS: switch once the 220 is flushed */
	char addr[64];
	int port;
	int busy;    /* a job runs for this session */
	int dead;    /* socket gone while busy: free when the job returns */
	int closing; /* close once the output is flushed */
	struct conn *prev, *next;
};

enum job_kind { JOB_DELIVER, JOB_AUTH };

struct job {
	struct job *next;
	struct conn *c;
	enum job_kind kind;
	struct sc_inbound msg;
	enum sc_sink_verdict verdict;
	char *reply;
	struct sc_error err;
	int auth_ok;
	int unsigned_mail; /* require_signature refused it; err says why */
};

struct lctx { /* what a listen socket's accept callback needs */
	struct server *srv;
	const struct serve_listen *l;
	struct evconnlistener *lst;
	struct event *resume; /* after accept() failed (EMFILE): try again later */
};

struct server {
	const struct serve_config *cfg;
	struct lctx *lctx;
	const struct sc_sink_ops *sink;
	void *priv;
	struct event_base *base;
	SSL_CTX *ssl;
	struct evconnlistener **lst;
	size_t nlst;
	struct conn *conns;
	size_t nconn, jobs_out;
	int draining;
	struct event *done_ev, *sigterm, *sigint, *grace;
	/* worker pool */
	pthread_t *threads;
	int nthreads, stop;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *queue, *queue_tail, *done;
};

static void pump(struct conn *c);
static void job_done(struct server *srv, struct job *j);
static void conn_free(struct conn *c);
static void conn_callbacks(struct conn *c);

/* Write a reply. On a plain socket with nothing queued, send() it at
 * once: the socket is nearly always writable, and queueing it in the
 * bufferevent cost two epoll_ctl() (write interest on, then off) and a
 * wake-up per reply, seven times per message. Whatever send() leaves
 * (a client that does not read) is queued behind, under the write
 * timeout as before; an error is left for the bufferevent to meet and
 * report. TLS replies always go through the bufferevent. A plain
 * bufferevent has writing enabled only from the first time something is
 * queued (conn_callbacks), so that a session whose replies all go out
 * at once never has write interest at all. */
static void conn_send(struct conn *c, const char *p, size_t len)
{
	if (len && !c->tls_wait && !bufferevent_openssl_get_ssl(c->bev) &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		ssize_t w = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			p += w;
			len -= (size_t)w;
		}
	}
	if (len) {
		bufferevent_write(c->bev, p, len);
		bufferevent_enable(c->bev, EV_WRITE);
	}
}

/* ------------------------------------------------------------------ */
/* workers                                                              */

/* require_signature: the spooled message is checked on the worker (it
 * may be large) with the one verifier of the core (signature.c), before
 * any sink sees it. */
static int signature_ok(const struct serve_config *cfg, struct job *j)
{
	struct sig_verdict v;
	int fd = open(j->msg.path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		sc_error_set(&j->err, SC_EIO, "cannot read the spooled message");
		return 0;
	}
	sig_verify_fd(fd, cfg->secret_key, &v);
	close(fd);
	if (v.status == SIG_VALID)
		return 1;
	sc_error_set(&j->err, SC_EINPUT, "%s", v.reason);
	return 0;
}

static void *worker(void *arg)
{
	struct server *srv = arg;
	pthread_mutex_lock(&srv->mu);
	for (;;) {
		while (!srv->queue && !srv->stop)
			pthread_cond_wait(&srv->cv, &srv->mu);
		if (!srv->queue)
			break;
		struct job *j = srv->queue;
		srv->queue = j->next;
		if (!srv->queue)
			srv->queue_tail = NULL;
		pthread_mutex_unlock(&srv->mu);
		if (j->kind == JOB_DELIVER && srv->cfg->require_signature &&
		    !signature_ok(srv->cfg, j)) {
			j->unsigned_mail = 1; /* not handed to the sink */
		} else if (j->kind == JOB_DELIVER) {
			j->verdict = srv->sink->deliver(srv->priv, &j->msg, &j->reply, &j->err);
		} else {
			const struct serve_session *s = j->c->s;
			j->auth_ok =
			    serve_users_verify(srv->cfg->users, srv->cfg->nusers, s->auth_name,
			                       s->auth_pass, s->auth_pass_len);
		}
		job_done(srv, j);
		pthread_mutex_lock(&srv->mu);
	}
	pthread_mutex_unlock(&srv->mu);
	return NULL;
}

/* A job is over: onto the done list, for done_cb on the loop. From a
 * worker, a sink's callback (any thread) or the loop itself. */
static void job_done(struct server *srv, struct job *j)
{
	pthread_mutex_lock(&srv->mu);
	j->next = srv->done;
	srv->done = j;
	pthread_mutex_unlock(&srv->mu);
	/* outside our lock: event_active takes the base's own */
	event_active(srv->done_ev, EV_READ, 0);
}

/* The sink's deliver_async() callback. */
static void async_done(void *arg, enum sc_sink_verdict verdict, char *reply, struct sc_error *err)
{
	struct job *j = arg;
	j->verdict = verdict;
	j->reply = reply;
	if (err) {
		j->err = *err; /* the message is ours now */
		*err = (struct sc_error)SC_ERROR_INIT;
	}
	job_done(j->c->srv, j);
}

static int submit(struct conn *c, enum job_kind kind)
{
	struct server *srv = c->srv;
	struct job *j = calloc(1, sizeof *j);
	if (!j)
		return -1;
	j->c = c;
	j->kind = kind;
	if (kind == JOB_DELIVER)
		serve_session_inbound(c->s, &j->msg);
	c->busy = 1;
	srv->jobs_out++;
	/* started here when the sink can (sink.h: deliver_async); a message
	 * to check for a signature goes to a worker, as the check may be
	 * long */
	if (kind == JOB_DELIVER && srv->sink->deliver_async && !srv->cfg->require_signature &&
	    srv->sink->deliver_async(srv->priv, &j->msg, async_done, j))
		return 0;
	pthread_mutex_lock(&srv->mu);
	if (srv->queue_tail)
		srv->queue_tail->next = j;
	else
		srv->queue = j;
	srv->queue_tail = j;
	pthread_mutex_unlock(&srv->mu);
	/* after the unlock: a worker woken under it went straight back to
	 * sleep on the mutex (perf sched_switch: half a wake-up per message) */
	pthread_cond_signal(&srv->cv);
	return 0;
}

static void check_drained(struct server *srv)
{
	if (srv->draining && srv->nconn == 0 && srv->jobs_out == 0)
		event_base_loopexit(srv->base, NULL);
}

static void job_finish(struct server *srv, struct job *j)
{
	struct conn *c = j->c;
	struct sc_buf out = {0};
	c->busy = 0;
	srv->jobs_out--;
	if (j->kind == JOB_DELIVER && j->unsigned_mail) {
		serve_session_unsigned(c->s, j->err.message, &out);
	} else if (j->kind == JOB_DELIVER) {
		if (j->verdict != SC_SINK_ACCEPT && !j->err.message)
			sc_error_set(&j->err, SC_EINTERNAL, "the sink gave no reason");
		const char *r = j->reply && !strpbrk(j->reply, "\r\n") ? j->reply : NULL;
		serve_session_delivered(c->s, j->verdict, r, j->err.message, &out);
	} else {
		serve_session_auth_done(c->s, j->auth_ok, &out);
	}
	free(j->reply);
	sc_error_clear(&j->err);
	free(j);
	if (c->dead) {
		sc_buf_free(&out);
		conn_free(c);
		return;
	}
	if (out.len)
		conn_send(c, out.p, out.len);
	sc_buf_free(&out);
	pump(c);
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct server *srv = arg;
	pthread_mutex_lock(&srv->mu);
	struct job *j = srv->done;
	srv->done = NULL;
	pthread_mutex_unlock(&srv->mu);
	while (j) {
		struct job *next = j->next;
		job_finish(srv, j);
		j = next;
	}
	check_drained(srv);
}

static int workers_start(struct server *srv)
{
	srv->threads = calloc((size_t)srv->cfg->workers, sizeof *srv->threads);
	if (!srv->threads)
		return -1;
	for (int i = 0; i < srv->cfg->workers; i++) {
		if (pthread_create(&srv->threads[i], NULL, worker, srv))
			return -1;
		srv->nthreads++;
	}
	return 0;
}

static void workers_stop(struct server *srv)
{
	pthread_mutex_lock(&srv->mu);
	srv->stop = 1;
	pthread_cond_broadcast(&srv->cv);
	pthread_mutex_unlock(&srv->mu);
	for (int i = 0; i < srv->nthreads; i++)
		pthread_join(srv->threads[i], NULL);
	free(srv->threads);
}

/* ------------------------------------------------------------------ */
/* connections                                                          */

static void conn_free(struct conn *c)
{
	struct server *srv = c->srv;
	if (c->bev) {
		SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
		bufferevent_free(c->bev);
		if (ssl) {
			SSL_shutdown(
			    ssl); /* close_notify, best effort: the socket is non-blocking */
			SSL_free(ssl);
		}
		evutil_closesocket(c->fd);
		c->bev = NULL;
		srv->nconn--;
		if (c->prev)
			c->prev->next = c->next;
		else
			srv->conns = c->next;
		if (c->next)
			c->next->prev = c->prev;
	}
	if (c->greet_timer) {
		event_free(c->greet_timer);
		c->greet_timer = NULL;
	}
	if (c->busy) { /* the worker still reads the session: later */
		c->dead = 1;
		return;
	}
	serve_session_free(c->s);
	free(c);
	check_drained(srv);
}

static void set_timeouts(struct conn *c, long read_ms)
{
	struct timeval r = {read_ms / 1000, (read_ms % 1000) * 1000};
	long w_ms = c->srv->cfg->t_command;
	struct timeval w = {w_ms / 1000, (w_ms % 1000) * 1000};
	bufferevent_set_timeouts(c->bev, read_ms > 0 ? &r : NULL, &w);
}

static void close_after_flush(struct conn *c)
{
	c->closing = 1;
	bufferevent_disable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_free(c);
	else
		bufferevent_enable(c->bev, EV_WRITE);
}

/* STARTTLS, once the 220 is on the wire: the plain bufferevent is
 * replaced by an OpenSSL one on the same socket. */
static void switch_to_tls(struct conn *c)
{
	/* RFC 3207 §4.2: whatever the client sent after STARTTLS is not part
	 * of the TLS stream; it is dropped, never acted upon. Bytes still in
	 * the kernel meet the TLS handshake and fail it. */
	c->tls_wait = 0;
	bufferevent_free(c->bev);
	SSL *ssl = SSL_new(c->srv->ssl);
	c->bev = ssl ? bufferevent_openssl_socket_new(c->srv->base, c->fd, ssl,
	                                              BUFFEREVENT_SSL_ACCEPTING, 0)
	             : NULL;
	if (!c->bev) {
		if (ssl)
			SSL_free(ssl);
		serve_log(c->s->id, "cannot start TLS; closing connection");
		c->bev = bufferevent_socket_new(c->srv->base, c->fd, 0); /* to free it */
		if (c->bev)
			conn_free(c);
		return;
	}
	conn_callbacks(c);
	set_timeouts(c, c->srv->cfg->t_command);
}

static void start_tls(struct conn *c)
{
	c->tls_wait = 1;
	bufferevent_disable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		switch_to_tls(c);
}

/* Feed what arrived to the session until it waits for something. */
static void pump(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct sc_buf out = {0};
	while (c->s->want == SW_NONE && evbuffer_get_length(in)) {
		struct evbuffer_iovec v;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		size_t used = serve_session_input(c->s, v.iov_base, v.iov_len, &out);
		evbuffer_drain(in, used);
		if (out.len > 64 * 1024 || c->s->want != SW_NONE) {
			conn_send(c, out.p, out.len);
			out.len = 0;
		}
	}
	if (out.len)
		conn_send(c, out.p, out.len);
	sc_buf_free(&out);
	switch (c->s->want) {
	case SW_CLOSE:
		close_after_flush(c);
		return;
	case SW_STARTTLS:
		start_tls(c);
		return;
	case SW_DELIVER:
	case SW_AUTH:
		if (!c->busy && submit(c, c->s->want == SW_AUTH ? JOB_AUTH : JOB_DELIVER)) {
			serve_log(c->s->id, "out of memory; closing connection");
			conn_free(c);
			return;
		}
		set_timeouts(c, 0);
		return;
	default:
		break;
	}
	if (c->srv->draining && serve_session_shutdown(c->s, &out)) {
		conn_send(c, out.p, out.len);
		sc_buf_free(&out);
		close_after_flush(c);
		return;
	}
	set_timeouts(c, serve_session_timeout(c->s));
}

static int greet(struct conn *c)
{
	const char *ver = NULL;
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	if (ssl)
		ver = SSL_get_version(ssl);
	c->s = serve_session_new(c->srv->cfg, c->addr, c->port, ssl != NULL, ver);
	if (!c->s)
		return -1;
	struct sc_buf out = {0};
	serve_session_greet(c->s, &out);
	conn_send(c, out.p, out.len);
	sc_buf_free(&out);
	set_timeouts(c, serve_session_timeout(c->s));
	return 0;
}

static void drop_early_talker(struct conn *c)
{
	char id[17];
	serve_new_id(id);
	serve_log(id, "%s port %d talked before the greeting; dropped", c->addr, c->port);
	conn_free(c);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	struct conn *c = arg;
	if (!c->s) {
		if (!bufferevent_openssl_get_ssl(c->bev))
			drop_early_talker(c);
		return;
	}
	if (!c->busy && !c->closing && !c->tls_wait)
		pump(c);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	struct conn *c = arg;
	if (evbuffer_get_length(bufferevent_get_output(c->bev)))
		return;
	if (c->tls_wait)
		switch_to_tls(c);
	else if (c->closing)
		conn_free(c);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	struct conn *c = arg;
	const char *id = c->s ? c->s->id : "-";
	if (what & BEV_EVENT_CONNECTED) { /* a TLS handshake finished */
		SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
		if (!c->s) {
			if (greet(c))
				conn_free(c);
		} else {
			serve_session_tls_started(c->s, ssl ? SSL_get_version(ssl) : NULL);
			set_timeouts(c, serve_session_timeout(c->s));
			pump(c);
		}
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (c->closing) {
			conn_free(c);
			return;
		}
		serve_log(id, "%s port %d timed out; closing connection", c->addr, c->port);
		if (c->s) {
			struct sc_buf out = {0};
			sc_buf_printf(&out, "421 4.4.2 %s Timeout; closing connection\r\n",
			              c->srv->cfg->domain);
			conn_send(c, out.p, out.len);
			sc_buf_free(&out);
		}
		long w = 2000;
		struct timeval tv = {w / 1000, 0};
		bufferevent_set_timeouts(c->bev, NULL, &tv);
		close_after_flush(c);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		unsigned long e = bufferevent_get_openssl_error(c->bev);
		if (e) {
			char buf[256];
			ERR_error_string_n(e, buf, sizeof buf);
			serve_log(id, "TLS error: %s", buf);
		}
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		if (c->s && c->s->state == SS_DATA)
			serve_log(id, "connection lost during DATA; message discarded");
		conn_free(c);
	}
}

static void conn_callbacks(struct conn *c)
{
	bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, READ_HIGH_WATER);
	/* writing on from the start for TLS (the handshake writes); for a
	 * plain socket only once conn_send queues something: enabling it
	 * here cost two epoll_ctl() and a wake-up per connection for an
	 * empty buffer */
	bufferevent_enable(c->bev,
	                   bufferevent_openssl_get_ssl(c->bev) ? EV_READ | EV_WRITE : EV_READ);
}

static void greet_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct conn *c = arg;
	event_free(c->greet_timer);
	c->greet_timer = NULL;
	if (evbuffer_get_length(bufferevent_get_input(c->bev))) {
		drop_early_talker(c);
		return;
	}
	if (greet(c))
		conn_free(c);
}

/* A one-line refusal straight on the socket, then close: no session. */
static void refuse(evutil_socket_t fd, const char *line, const char *addr, int port,
                   const char *why)
{
	char id[17];
	serve_new_id(id);
	serve_log(id, "%s port %d refused: %s", addr, port, why);
	ssize_t w = send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w;
	evutil_closesocket(fd);
}

static void peer_text(const struct sockaddr *sa, char *addr, size_t n, int *port)
{
	*port = 0;
	snprintf(addr, n, "?");
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)sa;
		inet_ntop(AF_INET, &a->sin_addr, addr, (socklen_t)n);
		*port = ntohs(a->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)sa;
		inet_ntop(AF_INET6, &a->sin6_addr, addr, (socklen_t)n);
		*port = ntohs(a->sin6_port);
		if (strncmp(addr, "::ffff:", 7) == 0 && strchr(addr, '.'))
			memmove(addr, addr + 7, strlen(addr + 7) + 1);
	}
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
	(void)l;
	(void)salen;
	struct lctx *lc = arg;
	struct server *srv = lc->srv;
	const struct serve_config *cfg = srv->cfg;
	char addr[64], line[300];
	int port;
	peer_text(sa, addr, sizeof addr, &port);
	if (srv->draining) {
		evutil_closesocket(fd);
		return;
	}
	if (!serve_net_allowed(cfg->nets, cfg->nnets, sa)) {
		snprintf(line, sizeof line, "554 5.7.1 %.200s Access denied for your network\r\n",
		         cfg->domain);
		refuse(fd, line, addr, port, "not in an allowed network");
		return;
	}
	if (srv->nconn >= cfg->max_conn) {
		snprintf(line, sizeof line,
		         "421 4.7.0 %.200s Too many connections; try again later\r\n", cfg->domain);
		refuse(fd, line, addr, port, "too many connections");
		return;
	}
	struct conn *c = calloc(1, sizeof *c);
	SSL *ssl = NULL;
	if (c && lc->l->implicit_tls) {
		ssl = SSL_new(srv->ssl);
		c->bev = ssl ? bufferevent_openssl_socket_new(srv->base, fd, ssl,
		                                              BUFFEREVENT_SSL_ACCEPTING, 0)
		             : NULL;
	} else if (c) {
		c->bev = bufferevent_socket_new(srv->base, fd, 0);
	}
	if (!c || !c->bev) {
		if (ssl)
			SSL_free(ssl);
		free(c);
		refuse(fd, "421 4.3.0 Out of resources\r\n", addr, port, "out of memory");
		return;
	}
	c->srv = srv;
	c->fd = fd;
	c->lst = lc->l;
	snprintf(c->addr, sizeof c->addr, "%s", addr);
	c->port = port;
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	srv->nconn++;
	conn_callbacks(c);
	if (ssl) { /* greeted once the handshake is done (event_cb) */
		set_timeouts(c, cfg->t_command);
		return;
	}
	if (cfg->greet_delay > 0) {
		struct timeval tv = {cfg->greet_delay / 1000, (cfg->greet_delay % 1000) * 1000};
		c->greet_timer = evtimer_new(srv->base, greet_cb, c);
		if (c->greet_timer && evtimer_add(c->greet_timer, &tv) == 0)
			return;
	}
	if (greet(c))
		conn_free(c);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct lctx *lc = arg;
	if (!lc->srv->draining)
		evconnlistener_enable(lc->lst);
}

/* accept() failed, e.g. out of file descriptors: without a pause the
 * loop would spin on the still readable listen socket. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct lctx *lc = arg;
	int e = EVUTIL_SOCKET_ERROR();
	char id[17];
	serve_new_id(id);
	serve_log(id, "accept failed: %s; pausing this listener for 1 s",
	          evutil_socket_error_to_string(e));
	evconnlistener_disable(l);
	struct timeval tv = {1, 0};
	if (!lc->resume)
		lc->resume = evtimer_new(lc->srv->base, resume_cb, lc);
	if (lc->resume)
		evtimer_add(lc->resume, &tv);
}

/* ------------------------------------------------------------------ */
/* start, signals, stop                                                 */

static void grace_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct server *srv = arg;
	char id[17];
	serve_new_id(id);
	serve_log(id, "shutdown grace over: closing %zu session%s", srv->nconn,
	          srv->nconn == 1 ? "" : "s");
	while (srv->conns)
		conn_free(srv->conns);
	check_drained(srv);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	struct server *srv = arg;
	if (srv->draining)
		return;
	srv->draining = 1;
	char id[17];
	serve_new_id(id);
	serve_log(id, "%s: stop accepting; %zu session%s in flight",
	          sig == SIGTERM ? "SIGTERM" : "SIGINT", srv->nconn, srv->nconn == 1 ? "" : "s");
	for (size_t i = 0; i < srv->nlst; i++)
		evconnlistener_disable(srv->lst[i]);
	struct conn *c = srv->conns;
	while (c) {
		struct conn *next = c->next;
		if (!c->s)
			conn_free(c);
		else if (!c->busy && !c->closing)
			pump(c); /* says 421 unless a transaction runs */
		c = next;
	}
	struct timeval tv = {srv->cfg->shutdown_grace / 1000,
	                     (srv->cfg->shutdown_grace % 1000) * 1000};
	srv->grace = evtimer_new(srv->base, grace_cb, srv);
	if (srv->grace)
		evtimer_add(srv->grace, &tv);
	check_drained(srv);
}

static int tls_setup(struct server *srv, struct sc_error *err)
{
	const struct serve_config *cfg = srv->cfg;
	if (!cfg->tls_cert)
		return SC_OK;
	srv->ssl = SSL_CTX_new(TLS_server_method());
	if (!srv->ssl)
		return sc_error_set(err, SC_ETLS, "tls: OpenSSL cannot make a context");
	SSL_CTX_set_min_proto_version(srv->ssl, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(srv->ssl, cfg->tls_cert) != 1)
		return sc_error_set(
		    err, SC_ETLS,
		    "tls.cert_file: cannot use %s (%s); give a PEM certificate (chain)",
		    cfg->tls_cert, ERR_reason_error_string(ERR_get_error()));
	if (SSL_CTX_use_PrivateKey_file(srv->ssl, cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(srv->ssl) != 1)
		return sc_error_set(
		    err, SC_ETLS,
		    "tls.key_file: cannot use %s (%s); give the PEM key of tls.cert_file",
		    cfg->tls_key, ERR_reason_error_string(ERR_get_error()));
	return SC_OK;
}

static int listen_one(struct server *srv, size_t i, struct sc_error *err)
{
	const struct serve_listen *l = &srv->cfg->listen[i];
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	int g = getaddrinfo(l->host, l->port, &hints, &res);
	if (g)
		return sc_error_set(err, SC_EIO, "listen: cannot resolve %s port %s: %s", l->host,
		                    l->port, gai_strerror(g));
	if (l->implicit_tls && !srv->ssl) {
		freeaddrinfo(res);
		return sc_error_set(
		    err, SC_EINPUT,
		    "listen[%zu].tls: implicit TLS needs tls.cert_file and tls.key_file", i);
	}
	srv->lctx[i].srv = srv;
	srv->lctx[i].l = l;
	srv->lst[i] = evconnlistener_new_bind(srv->base, accept_cb, &srv->lctx[i],
	                                      LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE |
	                                          LEV_OPT_CLOSE_ON_EXEC,
	                                      -1, res->ai_addr, (int)res->ai_addrlen);
	int e = errno;
	srv->lctx[i].lst = srv->lst[i];
	if (srv->lst[i])
		evconnlistener_set_error_cb(srv->lst[i], accept_error_cb);
	if (!srv->lst[i]) {
		freeaddrinfo(res);
		return sc_error_set(err, SC_EIO, "listen: cannot listen on %s port %s: %s", l->host,
		                    l->port, strerror(e));
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char addr[64] = "?";
	int port = 0;
	if (getsockname(evconnlistener_get_fd(srv->lst[i]), (struct sockaddr *)&ss, &sl) == 0)
		peer_text((struct sockaddr *)&ss, addr, sizeof addr, &port);
	freeaddrinfo(res);
	srv->nlst++;
	fprintf(stderr, "smtp-connector serve listening at %s%s%s:%d%s\n",
	        strchr(addr, ':') ? "[" : "", addr, strchr(addr, ':') ? "]" : "", port,
	        l->implicit_tls ? " (TLS)" : "");
	return SC_OK;
}

static void server_free(struct server *srv)
{
	while (srv->conns)
		conn_free(srv->conns);
	for (size_t i = 0; i < srv->nlst; i++) {
		evconnlistener_free(srv->lst[i]);
		if (srv->lctx[i].resume)
			event_free(srv->lctx[i].resume);
	}
	free(srv->lst);
	free(srv->lctx);
	if (srv->done_ev)
		event_free(srv->done_ev);
	if (srv->sigterm)
		event_free(srv->sigterm);
	if (srv->sigint)
		event_free(srv->sigint);
	if (srv->grace)
		event_free(srv->grace);
	if (srv->base)
		event_base_free(srv->base);
	if (srv->ssl)
		SSL_CTX_free(srv->ssl);
	pthread_mutex_destroy(&srv->mu);
	pthread_cond_destroy(&srv->cv);
}

int serve_run(const struct serve_config *cfg, const struct sc_sink_ops *sink, void *priv,
              struct sc_error *err)
{
	struct server srv;
	memset(&srv, 0, sizeof srv);
	srv.cfg = cfg;
	srv.sink = sink;
	srv.priv = priv;
	pthread_mutex_init(&srv.mu, NULL);
	pthread_cond_init(&srv.cv, NULL);
	signal(SIGPIPE, SIG_IGN);
	int rc = SC_OK;
	if (evthread_use_pthreads() || !(srv.base = event_base_new()))
		rc = sc_error_set(err, SC_EINTERNAL, "libevent cannot start");
	if (!rc)
		rc = tls_setup(&srv, err);
	srv.lst = calloc(cfg->nlisten, sizeof *srv.lst);
	srv.lctx = calloc(cfg->nlisten, sizeof *srv.lctx);
	if (!rc && (!srv.lst || !srv.lctx))
		rc = sc_error_set(err, SC_ENOMEM, "out of memory");
	for (size_t i = 0; !rc && i < cfg->nlisten; i++)
		rc = listen_one(&srv, i, err);
	if (!rc) {
		srv.done_ev = event_new(srv.base, -1, EV_PERSIST | EV_READ, done_cb, &srv);
		/* libevent gives back, when its signal events are freed, the
		 * action it found when they were added: make that "ignore", so
		 * that no moment after this one lacks a handler (a second SIGTERM
		 * used to land between the free and a later signal(SIG_IGN),
		 * killing us with status 143 while the sink stopped) */
		signal(SIGTERM, SIG_IGN);
		signal(SIGINT, SIG_IGN);
		srv.sigterm = evsignal_new(srv.base, SIGTERM, signal_cb, &srv);
		srv.sigint = evsignal_new(srv.base, SIGINT, signal_cb, &srv);
		if (!srv.done_ev || !srv.sigterm || !srv.sigint || event_add(srv.done_ev, NULL) ||
		    evsignal_add(srv.sigterm, NULL) || evsignal_add(srv.sigint, NULL))
			rc = sc_error_set(err, SC_EINTERNAL, "libevent cannot set up its events");
	}
	if (!rc && workers_start(&srv))
		rc = sc_error_set(err, SC_EINTERNAL, "cannot start the delivery threads");
	if (!rc)
		event_base_dispatch(srv.base);
	if (srv.threads)
		workers_stop(&srv);
	/* jobs that returned after the loop ended */
	if (srv.done_ev)
		done_cb(-1, 0, &srv);
	server_free(&srv);
	/* also when the events were never added (an error above) */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	return rc;
}
