/* The SMTP session: one libcurl easy handle per asset, kept open across
 * parameter sets and JSON Lines requests so a batch costs one connection
 * and one AUTH. libcurl keeps the connection after a successful transfer
 * and starts the next one at MAIL FROM; the server's transaction state is
 * already clear after the end of DATA, so no RSET is needed, and after a
 * failed transfer libcurl closes the connection and the next message
 * reconnects. */
#include "session.h"
#include "result.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* How long the QUIT after a failure may wait for "221" (when the server
 * answered the command that failed; otherwise it is not awaited). */
#define QUIT_WAIT_MS 2000L

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

/* libcurl's CURLOPT_OPENSOCKETFUNCTION / CLOSESOCKETFUNCTION: the
 * transcript needs the socket to bound the QUIT wait after a failure. */
static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct core_transcript *tr = arg;
	(void)purpose;
	curl_socket_t fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	if (fd != CURL_SOCKET_BAD) {
		tr->nsock++;
		tr->opened = 1;
		tr->sock = fd;
	}
	return fd;
}

static int close_socket(void *arg, curl_socket_t fd)
{
	struct core_transcript *tr = arg;
	tr->nsock--;
	if (fd == tr->sock)
		tr->sock = CURL_SOCKET_BAD;
	return close(fd);
}

static int check_capabilities(struct sc_session *s, const struct sc_envelope *env, int known,
                              struct sc_error *err);

/* CURLOPT_PREREQFUNCTION: libcurl calls it once the connect phase is over
 * (greeting, EHLO, STARTTLS, AUTH on a new connection) and before MAIL
 * FROM, so what needs the server's EHLO is checked here, in the message's
 * own transfer, instead of in a NOOP round trip before it: credentials
 * libcurl could not use (it skips AUTH silently when none is offered), and
 * the extensions the message needs. Stopping here closes the connection
 * before any command of the transaction: nothing is half-sent. */
static int prereq(void *arg, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
	struct sc_session *s = arg;
	(void)primary_ip;
	(void)local_ip;
	(void)primary_port;
	(void)local_port;
	if (s->tr.opened && s->want_auth && !s->tr.auth_sent) {
		sc_error_set(&s->prereq_err, SC_EAUTH,
		             "AUTH failed: the server at %s:%ld does not offer "
		             "AUTH, so the credentials cannot be used; if it relays without login "
		             "use auth_type \"Passwordless\"",
		             s->host, s->port);
		return CURL_PREREQFUNC_ABORT;
	}
	s->past_auth = 1;
	if (s->check_env && check_capabilities(s, s->check_env, 1, &s->prereq_err))
		return CURL_PREREQFUNC_ABORT;
	return CURL_PREREQFUNC_OK;
}

int core_session_transfer_fail(struct sc_session *s, CURLcode rc, struct sc_error *err)
{
	if (rc == CURLE_ABORTED_BY_CALLBACK && s->prereq_err.code) {
		sc_error_set(err, s->prereq_err.code, "%s",
		             s->prereq_err.message ? s->prereq_err.message : "failed");
		sc_error_clear(&s->prereq_err);
		return err->code;
	}
	return core_session_fail(s, rc, err);
}

static int host_char(int c)
{
	return isalnum(c) || c == '.' || c == '-' || c == '_' || c == ':';
}

/* server may be "host", "host:port" (LimaCharlie's dest_host, as smtplib
 * accepts), "[v6addr]:port", or an IPv4 or IPv6 literal with or without
 * brackets. A port in server that differs from asset.port is an error:
 * which one was meant cannot be guessed. */
static int server_port(const char *server, const char *digits, long *port, struct sc_error *err)
{
	char *end = NULL;
	long p = strtol(digits, &end, 10);
	if (end == digits || *end || p < 1 || p > 65535)
		return sc_error_set(err, SC_EINPUT,
		                    "asset.server: \"%s\" has a bad port after ':' "
		                    "(1-65535)",
		                    server);
	if (*port && *port != p)
		return sc_error_set(err, SC_EINPUT,
		                    "asset.server: \"%s\" names port %ld but "
		                    "asset.port is %ld; give the port in one place",
		                    server, p, *port);
	*port = p;
	return SC_OK;
}

static int parse_server(const char *server, long *port, char **host, struct sc_error *err)
{
	const char *s = server;
	size_t n = strlen(s);
	const char *close = n && s[0] == '[' ? memchr(s, ']', n) : NULL;
	if (close && close + 1 < s + n) {
		/* [v6addr]:port */
		if (close[1] != ':')
			return sc_error_set(err, SC_EINPUT,
			                    "asset.server: \"%s\": expected ':' and a "
			                    "port after ']'",
			                    server);
		int rc = server_port(server, close + 2, port, err);
		if (rc)
			return rc;
		n = (size_t)(close + 1 - s);
	}
	if (n && s[0] == '[' && s[n - 1] == ']') {
		s++;
		n -= 2;
	}
	for (size_t i = 0; i < n; i++)
		if (!host_char((unsigned char)s[i]) || (unsigned char)s[i] >= 0x80)
			return sc_error_set(
			    err, SC_EINPUT,
			    "asset.server: \"%s\" is not a host name or IP address; "
			    "give a name, e.g. smtp.corp.example, optionally with :port",
			    server);
	const char *colon = memchr(s, ':', n);
	const char *last = colon ? strrchr(s, ':') : NULL;
	if (colon && colon == last && !close) {
		/* host:port */
		char *digits = strndup(colon + 1, (size_t)(s + n - colon - 1));
		int rc = digits ? server_port(server, digits, port, err)
		                : sc_error_set(err, SC_ENOMEM, "out of memory");
		free(digits);
		if (rc)
			return rc;
		*host = strndup(s, (size_t)(colon - s));
	} else if (colon) {
		*host = sc_asprintf("[%.*s]", (int)n, s); /* IPv6 */
	} else {
		*host = strndup(s, n);
	}
	return *host ? SC_OK : sc_error_set(err, SC_ENOMEM, "out of memory");
}

static char *ehlo_name(const struct sc_ctx *ctx)
{
	const char *n = ctx->cfg.ehlo_name;
	if (n)
		return strdup(n);
	char buf[256];
	if (gethostname(buf, sizeof buf - 1) == 0) {
		buf[sizeof buf - 1] = '\0';
		int ok = buf[0] != '\0';
		for (char *p = buf; *p && ok; p++)
			ok = isalnum((unsigned char)*p) || *p == '.' || *p == '-';
		if (ok)
			return strdup(buf);
	}
	return strdup("localhost");
}

static int configure_tls(struct sc_session *s, struct sc_ctx *ctx, struct sc_error *err)
{
	if (!ctx->cfg.verify_server_cert && strcmp(s->ssl_config, "None"))
		sc_log(SC_LOG_WARN,
		       "TLS certificate verification is OFF for %s "
		       "(verify_server_cert: false): anyone on the path can intercept the "
		       "session, credentials included",
		       s->host);
	return core_tls_policy(ctx, s->curl, err);
}

/* The callbacks' data: this session's own buffers (a clone's handle
 * comes from curl_easy_duphandle with its original's pointers). */
static void wire(struct sc_session *s)
{
	CURL *c = s->curl;
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, s->errbuf);
	curl_easy_setopt(c, CURLOPT_DEBUGDATA, &s->tr);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &s->tr);
	curl_easy_setopt(c, CURLOPT_CLOSESOCKETDATA, &s->tr);
	curl_easy_setopt(c, CURLOPT_PREREQDATA, s);
	curl_easy_setopt(c, CURLOPT_PRIVATE, s);
}

static int configure(struct sc_session *s, struct sc_ctx *ctx, struct sc_error *err)
{
	const char *ssl = ctx->cfg.ssl_config;
	s->ssl_config = strdup(ssl ? ssl : "StartTLS");
	s->port = ctx->cfg.port;
	int rc = parse_server(ctx->cfg.server, &s->port, &s->host, err);
	if (rc)
		return rc;
	if (!s->port)
		s->port = !strcmp(s->ssl_config, "SSL")    ? 465
		          : !strcmp(s->ssl_config, "None") ? 25
		                                           : 587;
	s->allow_smtputf8 = ctx->cfg.allow_smtputf8;
	double t = ctx->cfg.timeout;
	s->timeout = (long)(t + 0.999);
	char *ehlo = ehlo_name(ctx);
	char *url = sc_asprintf("%s://%s:%ld/%s", strcmp(s->ssl_config, "SSL") ? "smtp" : "smtps",
	                        s->host, s->port, ehlo ? ehlo : "localhost");
	free(ehlo);
	if (!url)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	CURL *c = s->curl;
	curl_easy_setopt(c, CURLOPT_URL, url);
	free(url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(c, CURLOPT_USE_SSL,
	                 !strcmp(s->ssl_config, "StartTLS") ? (long)CURLUSESSL_ALL
	                                                    : (long)CURLUSESSL_NONE);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(t * 1000));
	curl_easy_setopt(c, CURLOPT_SERVER_RESPONSE_TIMEOUT, s->timeout);
	/* A server that stops reading the message: under 1 byte/s for the
	 * whole timeout is a failure too. */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, s->timeout);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_MAXCONNECTS, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
	curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, core_transcript_cb);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT_ALLLOWFAILS, 1L);
	/* The SASL initial response on the AUTH line (RFC 4954 §4): PLAIN and
	 * XOAUTH2 in one round trip instead of two. The transcript redacts
	 * the AUTH line's argument. */
	curl_easy_setopt(c, CURLOPT_SASL_IR, 1L);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(c, CURLOPT_CLOSESOCKETFUNCTION, close_socket);
	curl_easy_setopt(c, CURLOPT_PREREQFUNCTION, prereq);
	wire(s);
	s->tr.sock = CURL_SOCKET_BAD;
	s->tr.quit_wait_ms = s->timeout * 1000 < QUIT_WAIT_MS ? s->timeout * 1000 : QUIT_WAIT_MS;
	s->tr.verbose = sc_verbose();
	s->throttle = ctx->cfg.throttle_period;
	s->throttle_max_wait = ctx->cfg.throttle_max_wait;
	if (s->throttle > 0 && !(s->throttle_path = core_throttle_path(ctx, err)))
		return err->code;
	const char *key = ctx->cfg.secret_key;
	if (key && !(s->secret_key = strdup(key)))
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	return configure_tls(s, ctx, err);
}

void core_session_free(struct sc_session *s)
{
	if (!s)
		return;
	if (s->curl) {
		/* At the end of the process every mail is accepted or
		 * reported: libcurl's cleanup would send QUIT and wait for
		 * "221" (up to the whole timeout) on a connection nobody needs
		 * any more, one round trip per action (issue 11). Close it
		 * without QUIT (RFC 5321 §4.1.1.10 servers handle a client that
		 * just goes), the same way every time: shut both directions,
		 * so libcurl finds it dead. */
		curl_socket_t sock = CURL_SOCKET_BAD;
		if (curl_easy_getinfo(s->curl, CURLINFO_ACTIVESOCKET, &sock) == CURLE_OK &&
		    sock != CURL_SOCKET_BAD)
			shutdown(sock, SHUT_RDWR);
		curl_easy_cleanup(s->curl);
	}
	if (s->auth && s->auth->desc->auth->release)
		s->auth->desc->auth->release(s->auth_priv);
	core_transcript_free(&s->tr);
	sc_error_clear(&s->prereq_err);
	cJSON_Delete(s->attempts);
	free(s->key);
	free(s->host);
	free(s->ssl_config);
	free(s->throttle_path);
	sc_secret_free(s->secret_key);
	free(s);
}

struct sc_session *core_session_get(struct sc_ctx *ctx, struct sc_error *err)
{
	/* One session per identical asset (and asset_id). The key is a hash:
	 * the asset text holds the password and client secret, and the
	 * session lives as long as the process. */
	char *text = cJSON_PrintUnformatted(ctx->asset);
	const char *id = sc_request_string(ctx, "asset_id");
	char *src = text ? sc_asprintf("%s\n%s", id ? id : "", text) : NULL;
	char *key = malloc(65);
	int hashed = src && key && core_sha256_hex(src, strlen(src), key) == 0;
	sc_secret_free(text);
	sc_secret_free(src);
	if (!hashed) {
		free(key);
		sc_error_set(err, SC_ENOMEM, "out of memory");
		return NULL;
	}
	for (struct sc_session *s = ctx->rt->sessions; s; s = s->next)
		if (strcmp(s->key, key) == 0) {
			free(key);
			return s;
		}
	struct sc_session *s = calloc(1, sizeof *s);
	if (!s || !(s->curl = curl_easy_init()) || !(s->attempts = cJSON_CreateArray())) {
		free(key);
		core_session_free(s);
		sc_error_set(err, SC_ENOMEM, "cannot create a libcurl handle");
		return NULL;
	}
	s->key = key;
	if (configure(s, ctx, err) || (ctx->cfg.max_connections > 1 &&
	                               core_pool_new(ctx->rt, s, ctx->cfg.max_connections, err))) {
		core_session_free(s);
		return NULL;
	}
	s->next = ctx->rt->sessions;
	ctx->rt->sessions = s;
	return s;
}

void core_sessions_close(struct core_runtime *rt)
{
	while (rt->sessions) {
		struct sc_session *s = rt->sessions;
		rt->sessions = s->next;
		if (s->open)
			sc_log(SC_LOG_DEBUG, "closing the session with %s:%ld", s->host, s->port);
		core_pool_free(s->pool); /* the parallel sessions, then this one */
		core_session_free(s);
	}
}

struct sc_session *core_session_clone(struct sc_session *p, CURL *proto, struct sc_error *err)
{
	struct sc_session *c = calloc(1, sizeof *c);
	if (!c || !(c->curl = curl_easy_duphandle(proto)) || !(c->attempts = cJSON_CreateArray()) ||
	    !(c->key = strdup(p->key)) || !(c->host = strdup(p->host)) ||
	    !(c->ssl_config = strdup(p->ssl_config))) {
		core_session_free(c);
		sc_error_set(err, SC_ENOMEM, "cannot create a libcurl handle");
		return NULL;
	}
	wire(c);
	c->port = p->port;
	c->allow_smtputf8 = p->allow_smtputf8;
	c->timeout = p->timeout;
	c->tr.sock = CURL_SOCKET_BAD;
	c->tr.quit_wait_ms = p->tr.quit_wait_ms;
	c->tr.verbose = p->tr.verbose;
	/* not tr.ehlo nor tr.auth_sent: the clone's first transfer opens its
	 * own connection, whose EHLO and AUTH set them before anything reads
	 * them (prereq, failure.c) */
	c->open = 1; /* the credentials the first session chose are on the handle */
	c->want_auth = p->want_auth;
	c->pool = p->pool;
	return c;
}

int sc_session_open(struct sc_ctx *ctx, struct sc_session **out, struct sc_error *err)
{
	struct sc_session *s = core_ctx_session(ctx, err);
	if (!s)
		return err->code ? err->code : SC_ENOMEM;
	if (s->pool)
		core_pool_quiesce(s->pool);
	if (!s->open) {
		int rc = core_session_authenticate(ctx, s, &core_auth_probe, err);
		if (rc)
			return rc;
	}
	*out = s;
	return SC_OK;
}

const char *sc_session_auth(const struct sc_session *s)
{
	return s && s->auth ? s->auth->desc->name : NULL;
}

int sc_session_offers(const struct sc_session *s, const char *ext)
{
	return core_transcript_offers(&s->tr, ext);
}

void core_session_report(const struct sc_session *s, struct sc_result *r)
{
	if (!s || cJSON_GetArraySize(s->attempts) == 0)
		return;
	cJSON *d = sc_result_data(r);
	if (!cJSON_GetObjectItemCaseSensitive(d, "auth"))
		cJSON_AddStringToObject(d, "auth", s->auth ? s->auth->desc->name : "");
	if (!cJSON_GetObjectItemCaseSensitive(d, "auth_attempts"))
		cJSON_AddItemToObject(d, "auth_attempts", cJSON_Duplicate(s->attempts, 1));
}

/* ------------------------------------------------------------------ */
/* Sending                                                              */
/* ------------------------------------------------------------------ */

static int bad_envelope_addr(const char *a)
{
	for (const unsigned char *p = (const unsigned char *)a; *p; p++)
		if (*p < 0x20 || *p == 0x7f || *p == '<' || *p == '>')
			return 1;
	return 0;
}

static int is_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 0;
	return 1;
}

static const char *first_utf8(const struct sc_envelope *env)
{
	if (!is_ascii(env->mail_from))
		return env->mail_from;
	for (size_t i = 0; i < env->nrcpt; i++)
		if (!is_ascii(env->rcpt[i]))
			return env->rcpt[i];
	return NULL;
}

/* What the server must offer for this message; checked after EHLO and
 * before MAIL FROM, so a message it cannot carry is never half-sent. With
 * `known` 0 (no EHLO seen yet) only what the asset alone decides. */
static int check_capabilities(struct sc_session *s, const struct sc_envelope *env, int known,
                              struct sc_error *err)
{
	const char *u = first_utf8(env);
	if (u && !s->allow_smtputf8)
		return sc_error_set(
		    err, SC_EINPUT,
		    "The address \"%s\" is not ASCII and needs SMTPUTF8, "
		    "but the asset sets allow_smtputf8: false. Enable it or use an ASCII address",
		    u);
	if (env->needs_smtputf8 && !u && !s->allow_smtputf8)
		return sc_error_set(
		    err, SC_EINPUT,
		    "The message has UTF-8 in its header fields, which "
		    "needs SMTPUTF8, but the asset sets allow_smtputf8: false. Enable it or "
		    "encode those fields as RFC 2047 encoded words (=?utf-8?b?...?=)");
	if (!known)
		return SC_OK;
	if (u && !sc_session_offers(s, "SMTPUTF8"))
		return sc_error_set(err, SC_ESEND,
		                    "The address \"%s\" is not ASCII and needs SMTPUTF8, "
		                    "which the server at %s:%ld does not offer; nothing was sent. "
		                    "Use an ASCII address",
		                    u, s->host, s->port);
	/* UTF-8 in header fields (send rawemail sends them as given) is only
	 * defined under SMTPUTF8 (RFC 6532); 8BITMIME covers bodies only. */
	if (env->needs_smtputf8 && !u && !sc_session_offers(s, "SMTPUTF8"))
		return sc_error_set(
		    err, SC_ESEND,
		    "The message has UTF-8 in its header fields, which "
		    "needs SMTPUTF8; the server at %s:%ld does not offer it, so nothing was "
		    "sent. Encode those fields as RFC 2047 encoded words (=?utf-8?b?...?=)",
		    s->host, s->port);
	if ((env->needs_8bit || env->needs_smtputf8) && !sc_session_offers(s, "8BITMIME") &&
	    !sc_session_offers(s, "SMTPUTF8"))
		return sc_error_set(
		    err, SC_ESEND,
		    "The message carries 8-bit (UTF-8) content, but the "
		    "server at %s:%ld offers neither 8BITMIME nor SMTPUTF8; nothing was sent. "
		    "Encode the message in 7-bit (quoted-printable or base64)",
		    s->host, s->port);
	return SC_OK;
}

struct curl_slist *core_rcpt_list(const struct sc_envelope *env, const size_t *idx, size_t n)
{
	struct curl_slist *l = NULL;
	for (size_t i = 0; i < n; i++) {
		char *r = sc_asprintf("<%s>", env->rcpt[idx[i]]);
		struct curl_slist *next = r ? curl_slist_append(l, r) : NULL;
		free(r);
		if (!next) {
			curl_slist_free_all(l);
			return NULL;
		}
		l = next;
	}
	return l;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Whether the kept connection has something to read before we send a
 * command: an idle SMTP connection is silent, so readable means the
 * server closed it or said goodbye (421) while it sat idle. */
static int closed_while_idle(struct sc_session *s)
{
	curl_socket_t fd = CURL_SOCKET_BAD;
	if (!s->idle_since || curl_easy_getinfo(s->curl, CURLINFO_ACTIVESOCKET, &fd) != CURLE_OK ||
	    fd == CURL_SOCKET_BAD)
		return 0;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, 0) > 0;
}

CURLcode core_session_transfer(struct sc_session *s)
{
	core_transcript_reset(&s->tr);
	s->tr.opened = 0;
	sc_error_clear(&s->prereq_err);
	s->errbuf[0] = '\0';
	s->tr.in_transfer = 1;
	CURLcode rc = curl_easy_perform(s->curl);
	s->last_rc = rc;
	s->tr.in_transfer = 0;
	/* A fresh connection is for one transfer (an auth attempt's first,
	 * a reconnect); the transfers after it reuse what it opened. */
	curl_easy_setopt(s->curl, CURLOPT_FRESH_CONNECT, 0L);
	s->idle_since = 0;
	curl_socket_t fd = CURL_SOCKET_BAD;
	s->kept_after_message = rc == CURLE_OK && s->tr.stage == STAGE_BODY;
	if (rc == CURLE_OK)
		s->idle_since = now_s();
	else if (curl_easy_getinfo(s->curl, CURLINFO_ACTIVESOCKET, &fd) == CURLE_OK &&
	         fd != CURL_SOCKET_BAD)
		/* libcurl 7.88 keeps the connection after a timeout at the end
		 * of data; the server is out of step with us, so it must not be
		 * reused, and its QUIT at exit would wait a whole timeout. Shut
		 * down, libcurl finds it dead and drops it without QUIT. */
		shutdown(fd, SHUT_RDWR);
	return rc;
}

int core_failed_before_mail(const struct sc_session *s, CURLcode rc)
{
	return rc != CURLE_OK && rc != CURLE_OPERATION_TIMEDOUT &&
	       rc != CURLE_ABORTED_BY_CALLBACK && s->tr.stage <= STAGE_MAIL;
}

/* One transfer. A kept connection that the server closed while it sat
 * idle is re-opened once, as long as the server accepted nothing on it:
 * when that was seen before MAIL FROM went out (something to read on an
 * idle connection: its FIN or a 421), or, after a message, when the
 * server hung up without a word at MAIL FROM: a server that closes after
 * each message (or N of them) sends its FIN right after the end-of-data
 * reply, and our next MAIL FROM can cross it. A timeout, or a close in
 * answer to the first MAIL FROM after authentication, is reported as it
 * is: retrying it would only double the wait. */
static CURLcode perform(struct sc_session *s, struct sc_message *m)
{
	double idle = s->idle_since ? now_s() - s->idle_since : 0;
	int after_message = s->idle_since != 0 && s->kept_after_message;
	int was_idle_closed = closed_while_idle(s);
	CURLcode rc = core_session_transfer(s);
	long fresh = 0;
	curl_easy_getinfo(s->curl, CURLINFO_NUM_CONNECTS, &fresh);
	int retry = fresh == 0 && core_failed_before_mail(s, rc) &&
	            ((was_idle_closed && (!s->tr.answer || s->tr.last_code == 421)) ||
	             (after_message && !s->tr.answer));
	if (!retry)
		return rc;
	sc_log(SC_LOG_INFO, "the server closed the kept connection (idle %.1f s)%s%s; reconnecting",
	       idle, s->tr.answer ? ": " : "", s->tr.answer ? s->tr.answer : "");
	struct sc_error e = SC_ERROR_INIT;
	if (core_message_apply(m, s->curl, &e) == SC_OK) {
		curl_easy_setopt(s->curl, CURLOPT_FRESH_CONNECT, 1L);
		rc = core_session_transfer(s);
		curl_easy_setopt(s->curl, CURLOPT_FRESH_CONNECT, 0L);
	}
	sc_error_clear(&e);
	return rc;
}

static int add_accepted(struct sc_delivery *out, const char *addr)
{
	char **a = realloc(out->accepted, (out->naccepted + 1) * sizeof *a);
	if (!a)
		return SC_ENOMEM;
	out->accepted = a;
	if (!(a[out->naccepted] = strdup(addr)))
		return SC_ENOMEM;
	out->naccepted++;
	return SC_OK;
}

static int add_refused(struct sc_delivery *out, const char *addr, const char *reply)
{
	struct sc_refusal *r = realloc(out->refused, (out->nrefused + 1) * sizeof *r);
	if (!r)
		return SC_ENOMEM;
	out->refused = r;
	r += out->nrefused;
	r->addr = strdup(addr);
	r->reply = strdup(reply);
	if (!r->addr || !r->reply) {
		free(r->addr);
		free(r->reply);
		return SC_ENOMEM;
	}
	out->nrefused++;
	return SC_OK;
}

/* RFC 5321 4.5.3.1.10: a server out of RCPT slots for this transaction
 * answers 452 (Postfix: "452 4.5.3 Error: too many recipients"); the
 * client sends those recipients again in a later transaction. */
static int too_many_recipients(const struct core_rcpt_reply *r)
{
	return r->code == 452 && r->reply &&
	       (strstr(r->reply, "4.5.3") || strstr(r->reply, "oo many"));
}

/* The RCPT outcomes of this transaction (recipients env->rcpt[idx[i]]).
 * When it did not complete (`why` set), no recipient got the message:
 * those the server refused keep its reply, the others get `why`. When it
 * delivered, those refused for "too many recipients" go to again[]
 * (*nagain of them) instead of the refused list. */
static int collect(struct sc_session *s, const struct sc_envelope *env, const size_t *idx, size_t n,
                   const char *why, struct sc_delivery *out, size_t *again, size_t *nagain)
{
	int rc = SC_OK;
	for (size_t i = 0; i < n && !rc; i++) {
		const struct core_rcpt_reply *r = i < s->tr.nrcpts ? &s->tr.rcpts[i] : NULL;
		const char *addr = env->rcpt[idx[i]];
		if (r && !why && again && too_many_recipients(r))
			again[(*nagain)++] = idx[i];
		else if (r && r->code / 100 != 2)
			rc = add_refused(out, addr, r->reply ? r->reply : "");
		else if (why)
			rc = add_refused(out, addr, why);
		else
			rc = add_accepted(out, addr);
	}
	if (!rc && !why && s->tr.data_reply) {
		/* one reply per transaction (queue ids), in order */
		char *t = out->reply ? sc_asprintf("%s\n%s", out->reply, s->tr.data_reply)
		                     : strdup(s->tr.data_reply);
		if (!t)
			return SC_ENOMEM;
		free(out->reply);
		out->reply = t;
	}
	return rc;
}

char *sc_delivery_refused_text(const struct sc_delivery *d)
{
	char *t = NULL;
	for (size_t i = 0; i < d->nrefused; i++) {
		char *n = sc_asprintf("%s%s%s (%s)", t ? t : "", t ? "; " : "", d->refused[i].addr,
		                      d->refused[i].reply);
		free(t);
		t = n;
	}
	return t;
}

int core_transaction_outcome(struct sc_session *s, CURLcode cr, const struct sc_envelope *env,
                             const size_t *idx, size_t n, int *all_refused, struct sc_delivery *out,
                             size_t *again, size_t *nagain, struct sc_error *err)
{
	int refused = 0;
	*all_refused = 0;
	for (size_t i = 0; i < s->tr.nrcpts; i++)
		refused += s->tr.rcpts[i].code / 100 != 2;
	if (cr == CURLE_OK)
		return collect(s, env, idx, n, NULL, out, again, nagain);
	if (s->tr.stage == STAGE_RCPT && s->tr.nrcpts == n && (size_t)refused == n) {
		*all_refused = 1;
		int rc = collect(s, env, idx, n, "", out, NULL, NULL);
		return rc ? rc : SC_ESEND;
	}
	return core_session_transfer_fail(s, cr, err);
}

/* One transaction: MAIL FROM, RCPT TO for env->rcpt[idx[0..n)], DATA.
 * SC_OK when it delivered (recipients to try again in again[]); SC_ESEND
 * with *all_refused set when every RCPT was refused (out has the replies);
 * another code when it broke off (err says how; out untouched). */
static int send_transaction(struct sc_session *s, const struct sc_envelope *env, const size_t *idx,
                            size_t n, struct sc_message *m, int *all_refused,
                            struct sc_delivery *out, size_t *again, size_t *nagain,
                            struct sc_error *err)
{
	struct curl_slist *rcpts = core_rcpt_list(env, idx, n);
	if (!rcpts)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	curl_easy_setopt(s->curl, CURLOPT_MAIL_RCPT, rcpts);
	int rc = core_message_apply(m, s->curl, err);
	*all_refused = 0;
	if (rc == SC_OK) {
		rc = core_transaction_outcome(s, perform(s, m), env, idx, n, all_refused, out,
		                              again, nagain, err);
		if (!rc)
			rc = core_message_check_sent(m, s->curl, err);
	}
	curl_easy_setopt(s->curl, CURLOPT_MAIL_RCPT, NULL);
	curl_slist_free_all(rcpts);
	return rc;
}

/* After a transaction delivered and then a later one broke off: the
 * recipients not served are listed as not sent, with the reason. */
int core_not_sent(const struct sc_envelope *env, const size_t *idx, size_t n,
                  struct sc_delivery *out, struct sc_error *err)
{
	sc_log(SC_LOG_WARN, "the message reached %zu recipients, then: %s", out->naccepted,
	       err->message ? err->message : "failed");
	char *why = sc_asprintf("not sent: %s", err->message ? err->message : "failed");
	int rc = why ? SC_OK : SC_ENOMEM;
	for (size_t i = 0; i < n && !rc; i++)
		rc = add_refused(out, env->rcpt[idx[i]], why);
	free(why);
	sc_error_clear(err);
	return rc ? sc_error_set(err, SC_ENOMEM, "out of memory") : SC_OK;
}

/* Every transaction the envelope needs: queue[head..tail) is still to
 * send, in order; recipients deferred with 452 "too many recipients" by a
 * transaction that delivered go to its end (each such round delivers to
 * at least one, so it ends). Once one transaction delivered, a later one
 * that breaks off is reported per recipient, not as a failure of the
 * whole: a retry would deliver to the first ones twice. */
static int send_transactions(struct sc_session *s, const struct sc_envelope *env,
                             struct sc_message *m, struct sc_delivery *out, struct sc_error *err)
{
	size_t *queue = malloc(env->nrcpt * sizeof *queue);
	size_t *again = malloc(RCPT_PER_TRANSACTION * sizeof *again);
	if (!queue || !again) {
		free(queue);
		free(again);
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < env->nrcpt; i++)
		queue[i] = i;
	size_t head = 0, tail = env->nrcpt;
	int delivered = 0, rc = SC_OK;
	while (head < tail) {
		size_t n = tail - head < RCPT_PER_TRANSACTION ? tail - head : RCPT_PER_TRANSACTION;
		size_t nagain = 0;
		int all_refused = 0;
		rc = send_transaction(s, env, queue + head, n, m, &all_refused, out, again, &nagain,
		                      err);
		if (rc && !all_refused) {
			if (delivered && rc != SC_ENOMEM)
				rc = core_not_sent(env, queue + head, tail - head, out, err);
			break;
		}
		delivered |= rc == SC_OK;
		head += n;
		if (nagain) {
			sc_log(SC_LOG_INFO,
			       "the server took too many recipients for one transaction; "
			       "%zu more go in the next",
			       nagain);
			memmove(queue, queue + head, (tail - head) * sizeof *queue);
			tail -= head;
			head = 0;
			memcpy(queue + tail, again, nagain * sizeof *queue);
			tail += nagain;
		}
		rc = SC_OK;
	}
	free(queue);
	free(again);
	return rc || delivered ? rc : core_all_refused(out, err);
}

int core_all_refused(const struct sc_delivery *out, struct sc_error *err)
{
	char *t = sc_delivery_refused_text(out);
	int rc =
	    sc_error_set(err, SC_ESEND, "RCPT TO: every recipient was refused: %s", t ? t : "");
	free(t);
	return rc;
}

/* Everything about a message that needs no server: the envelope's
 * addresses, what the asset allows, the signature, the throttle slot. */
int core_send_prepare(struct sc_session *s, const struct sc_envelope *env, struct sc_message *m,
                      struct sc_error *err)
{
	if (env->nrcpt == 0)
		return sc_error_set(err, SC_EINPUT,
		                    "no recipients: give at least one address in to, cc or bcc");
	if (bad_envelope_addr(env->mail_from))
		return sc_error_set(err, SC_EINPUT,
		                    "the sender address contains control characters or <>");
	for (size_t i = 0; i < env->nrcpt; i++)
		if (bad_envelope_addr(env->rcpt[i]))
			return sc_error_set(
			    err, SC_EINPUT,
			    "a recipient address contains control characters or <>");
	/* Once the server's EHLO is known the extensions are checked before
	 * the throttle slot is taken; before that, prereq() checks them. So
	 * it does for parallel sessions: a session's thread may be reading a
	 * new EHLO into its transcript right now. */
	int rc = check_capabilities(s, env, s->open && s->tr.ehlo && !s->pool, err);
	/* throttle first: a dropped message is not signed for nothing (a MIME
	 * body's hash pass reads every attachment), and t= is the time it
	 * really goes */
	if (!rc && s->throttle > 0)
		rc = core_throttle_wait(s->throttle_path, s->throttle, s->throttle_max_wait, err);
	if (!rc && s->secret_key)
		rc = core_message_sign(m, s->secret_key, err);
	return rc;
}

struct send_args {
	const struct sc_envelope *env;
	struct sc_message *m;
	struct sc_delivery *out;
};

/* The transactions of one message (sc_session_send after send_prepare);
 * also the first attempt of an authentication (core_auth_attempt). */
static int send_run(struct sc_session *s, void *arg, struct sc_error *err)
{
	struct send_args *a = arg;
	sc_delivery_free(a->out);
	char *from = sc_asprintf("<%s>", a->env->mail_from);
	if (!from)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	curl_easy_setopt(s->curl, CURLOPT_CUSTOMREQUEST, NULL);
	curl_easy_setopt(s->curl, CURLOPT_MAIL_FROM, from);
	s->check_env = a->env;
	int rc = send_transactions(s, a->env, a->m, a->out, err);
	/* serial or parallel: parallel.c retires no session that delivered */
	if (rc == SC_OK)
		s->delivered = 1;
	s->check_env = NULL;
	core_message_detach(a->m, s->curl);
	curl_easy_setopt(s->curl, CURLOPT_MAIL_FROM, NULL);
	free(from);
	return rc;
}

int core_send_run(struct sc_session *s, const struct sc_envelope *env, struct sc_message *m,
                  struct sc_delivery *out, struct sc_error *err)
{
	struct send_args a = {env, m, out};
	return send_run(s, &a, err);
}

int sc_session_send(struct sc_session *s, const struct sc_envelope *env, struct sc_message *m,
                    struct sc_delivery *out, struct sc_error *err)
{
	memset(out, 0, sizeof *out);
	int rc = core_send_prepare(s, env, m, err);
	if (rc)
		return rc;
	struct send_args a = {env, m, out};
	return send_run(s, &a, err);
}

void core_send_report(const struct sc_session *s, struct sc_message *m, const struct sc_delivery *d,
                      int rc, struct sc_result *r, struct sc_error *err)
{
	if (s && (s->open || d->naccepted || d->nrefused))
		sc_delivery_report(s, d, r);
	if (!rc) {
		const char *id = core_message_id(m);
		cJSON_AddStringToObject(sc_result_data(r), "message_id", id ? id : "");
	} else {
		/* data[0] even when nothing was sent (throttled, refused before
		 * connecting): it carries data.error, the kind of failure */
		(void)sc_result_data(r);
		sc_error_prefix(err, "Email send failed");
	}
}

int sc_send(struct sc_ctx *ctx, const struct sc_envelope *env, struct sc_message *m,
            struct sc_result *r, struct sc_error *err)
{
	struct sc_delivery d;
	memset(&d, 0, sizeof d);
	struct sc_session *s = core_ctx_session(ctx, err);
	int rc = s ? SC_OK : err->code ? err->code : SC_ENOMEM;
	if (s && s->pool)
		core_pool_quiesce(s->pool); /* the primary is ours again */
	if (!rc)
		rc = core_send_prepare(s, env, m, err);
	struct send_args a = {env, m, &d};
	if (!rc && s->open) {
		rc = send_run(s, &a, err);
	} else if (!rc) {
		/* No NOOP probe: the message's own transfer authenticates,
		 * and a method the server refuses at AUTH hands the same
		 * message, not yet sent, to the next one (auth.c). */
		struct core_auth_attempt first = {send_run, &a};
		rc = core_session_authenticate(ctx, s, &first, err);
	}
	core_send_report(s, m, &d, rc, r, err);
	sc_delivery_free(&d);
	return rc;
}

int sc_send_async(struct sc_ctx *ctx, const struct sc_envelope *env, struct sc_message *m,
                  struct sc_result *r, struct sc_error *err)
{
	struct sc_session *s =
	    ctx->cfg.max_connections > 1 && ctx->report ? core_ctx_session(ctx, err) : NULL;
	/* The first message authenticates (the Automatic order decides the
	 * method, as for sc_send); the parallel sessions reuse its choice. */
	if (!s && err->code) {
		/* the lookup failed: as sc_send reports it, without a second try */
		struct sc_delivery none = {0};
		core_send_report(NULL, m, &none, err->code, r, err);
		return err->code;
	}
	if (!s || !s->pool || !s->open)
		return sc_send(ctx, env, m, r, err);
	int rc = core_send_prepare(s, env, m, err);
	if (!rc)
		rc = core_pool_submit(s->pool, env, m, ctx->report,
		                      (size_t)(r - ctx->report->results),
		                      ctx->action ? ctx->action->desc->name : "action", err);
	if (rc != SC_PENDING) {
		struct sc_delivery none = {0};
		core_send_report(s, m, &none, rc, r, err);
	}
	return rc;
}

void sc_delivery_free(struct sc_delivery *d)
{
	for (size_t i = 0; d->accepted && i < d->naccepted; i++)
		free(d->accepted[i]);
	for (size_t i = 0; d->refused && i < d->nrefused; i++) {
		free(d->refused[i].addr);
		free(d->refused[i].reply);
	}
	free(d->accepted);
	free(d->refused);
	free(d->reply);
	memset(d, 0, sizeof *d);
}

void sc_delivery_report(const struct sc_session *s, const struct sc_delivery *d,
                        struct sc_result *r)
{
	cJSON *data = sc_result_data(r);
	cJSON *acc = cJSON_AddArrayToObject(data, "accepted");
	for (size_t i = 0; i < d->naccepted; i++)
		cJSON_AddItemToArray(acc, cJSON_CreateString(d->accepted[i]));
	cJSON *ref = cJSON_AddArrayToObject(data, "refused");
	for (size_t i = 0; i < d->nrefused; i++) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "address", d->refused[i].addr);
		cJSON_AddStringToObject(o, "reply", d->refused[i].reply);
		cJSON_AddBoolToObject(o, "temporary", d->refused[i].reply[0] == '4');
		cJSON_AddItemToArray(ref, o);
	}
	if (d->reply)
		cJSON_AddStringToObject(data, "smtp_reply", d->reply);
	else
		cJSON_AddNullToObject(data, "smtp_reply");
	cJSON_AddStringToObject(data, "auth", sc_session_auth(s) ? sc_session_auth(s) : "");
	if (d->naccepted == 0 || !d->reply)
		return; /* not sent: the caller's error is the message */
	if (d->nrefused) {
		char *t = sc_delivery_refused_text(d);
		sc_result_message(r, "Email sent to %zu of %zu recipients; refused: %s",
		                  d->naccepted, d->naccepted + d->nrefused, t ? t : "");
		free(t);
	} else {
		sc_result_message(r, "Email sent");
	}
}
