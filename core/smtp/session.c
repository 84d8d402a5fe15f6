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
#include <sys/stat.h>
#include <unistd.h>

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
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
		return sc_error_set(err, SC_EINPUT, "asset.server: \"%s\" has a bad port after ':' "
				    "(1-65535)", server);
	if (*port && *port != p)
		return sc_error_set(err, SC_EINPUT, "asset.server: \"%s\" names port %ld but "
				    "asset.port is %ld; give the port in one place", server, p, *port);
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
			return sc_error_set(err, SC_EINPUT, "asset.server: \"%s\": expected ':' and a "
					    "port after ']'", server);
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
			return sc_error_set(err, SC_EINPUT,
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
		sc_log(SC_LOG_WARN, "TLS certificate verification is OFF for %s "
		       "(verify_server_cert: false): anyone on the path can intercept the "
		       "session, credentials included", s->host);
	return core_tls_policy(ctx, s->curl, err);
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
		s->port = !strcmp(s->ssl_config, "SSL") ? 465 : !strcmp(s->ssl_config, "None") ? 25 : 587;
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
			 !strcmp(s->ssl_config, "StartTLS") ? (long)CURLUSESSL_ALL : (long)CURLUSESSL_NONE);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(t * 1000));
	curl_easy_setopt(c, CURLOPT_SERVER_RESPONSE_TIMEOUT, s->timeout);
	/* A server that stops reading the message: under 1 byte/s for the
	 * whole timeout is a failure too. */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, s->timeout);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_MAXCONNECTS, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, s->errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
	curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, core_transcript_cb);
	curl_easy_setopt(c, CURLOPT_DEBUGDATA, &s->tr);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT_ALLLOWFAILS, 1L);
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

static void session_free(struct sc_session *s)
{
	if (!s)
		return;
	if (s->curl)
		curl_easy_cleanup(s->curl); /* sends QUIT on an open connection */
	if (s->auth && s->auth->desc->auth->release)
		s->auth->desc->auth->release(s->auth_priv);
	core_transcript_free(&s->tr);
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
		session_free(s);
		sc_error_set(err, SC_ENOMEM, "cannot create a libcurl handle");
		return NULL;
	}
	s->key = key;
	if (configure(s, ctx, err)) {
		session_free(s);
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
		session_free(s);
	}
}

int sc_session_open(struct sc_ctx *ctx, struct sc_session **out, struct sc_error *err)
{
	struct sc_session *s = core_ctx_session(ctx, err);
	if (!s)
		return err->code ? err->code : SC_ENOMEM;
	if (!s->open) {
		int rc = core_session_authenticate(ctx, s, err);
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
/* Failures: stage, the server's reply verbatim, and a hint.             */
/* ------------------------------------------------------------------ */

static const char *tls_hint(const struct sc_session *s, const char *why)
{
	if (strstr(why, "wrong version number") || strstr(why, "packet length too long") ||
	    strstr(why, "unexpected eof"))
		return !strcmp(s->ssl_config, "SSL")
			? "The server does not speak TLS from the first byte on this port: "
			  "use ssl_config \"StartTLS\" for port 587 or 25, or port 465 for \"SSL\""
			: "The TLS handshake was broken off: check that the server offers TLS on this port";
	if (strstr(why, "certificate") || strstr(why, "self-signed") || strstr(why, "self signed") ||
	    strstr(why, "issuer"))
		return "The server's certificate is not trusted: set ca_file to the PEM file of the CA "
		       "that signed it (or, on a test network only, verify_server_cert: false)";
	if (strstr(why, "name") || strstr(why, "subject"))
		return "The certificate is for another host name: connect with the name the certificate "
		       "carries, or fix the certificate";
	return "Check ssl_config and port (SSL uses 465, StartTLS 587), and ca_file";
}

static int fail_connect(struct sc_session *s, CURLcode rc, const char *why, struct sc_error *err)
{
	if (rc == CURLE_COULDNT_RESOLVE_HOST)
		return sc_error_set(err, SC_ECONNECT, "Connection to server failed: cannot resolve host "
				    "\"%s\" (%s). Check the server name", s->host, why);
	if (rc == CURLE_OPERATION_TIMEDOUT && s->tr.replies == 0 && !s->tr.greeting) {
		const char *hint = !strcmp(s->ssl_config, "SSL")
			? "if this port expects STARTTLS (587 or 25) use ssl_config \"StartTLS\""
			: s->port == 465 ? "port 465 expects TLS from the first byte: use ssl_config \"SSL\""
					 : "check the port and ssl_config (SSL on 465, StartTLS on 587)";
		return sc_error_set(err, SC_ECONNECT,
				    "Connection to server failed: %s:%ld %s within the %ld s timeout; %s",
				    s->host, s->port,
				    strstr(why, "onnect") && !strstr(why, "received")
					    ? "did not accept the connection"
					    : "accepted the connection but sent no SMTP greeting",
				    s->timeout, hint);
	}
	return sc_error_set(err, SC_ECONNECT, "Connection to server failed: %s:%ld: %s. "
			    "Check server, port and that a firewall lets the connection through",
			    s->host, s->port, why);
}

static int fail_auth(struct sc_session *s, const char *why, struct sc_error *err)
{
	const char *reply = s->tr.auth_reply ? s->tr.auth_reply : s->tr.last_reply;
	if (!s->tr.auth_sent) {
		char *mechs = core_transcript_auth_mechs(&s->tr);
		sc_error_set(err, SC_EAUTH, "AUTH failed: no usable SASL mechanism (%s); the server "
			     "offers %s. Set auth_mechanism to one it offers, or check auth_type",
			     why, mechs ? mechs : "none");
		free(mechs);
		return SC_EAUTH;
	}
	const char *hint = "";
	if (reply && (strstr(reply, "5.7.139") || strstr(reply, "SmtpClientAuthentication")))
		hint = ". SMTP AUTH is disabled for this mailbox or tenant: enable it in Exchange Online";
	else if (reply && strstr(reply, "5.7.30"))
		hint = ". The server no longer accepts passwords: use OAuth";
	return sc_error_set(err, SC_EAUTH, "AUTH failed: the server refused the credentials: %s%s",
			    reply ? reply : why, hint);
}

static int fail_after_connect(struct sc_session *s, CURLcode rc, const char *why,
			      struct sc_error *err)
{
	const char *reply = s->tr.last_reply;
	switch (s->tr.stage) {
	case STAGE_MAIL:
		if (reply && s->tr.last_code == 530)
			return sc_error_set(err, SC_ESEND, "MAIL FROM refused: %s. The server requires "
					    "authentication: configure Basic (username, password) or OAuth", reply);
		return sc_error_set(err, SC_ESEND, "MAIL FROM refused: %s",
				    reply ? reply : why);
	case STAGE_DATA:
	case STAGE_BODY:
		if (s->tr.data_reply || s->tr.last_code >= 400)
			return sc_error_set(err, SC_ESEND, "The server refused the message at DATA: %s%s",
					    s->tr.data_reply ? s->tr.data_reply : reply,
					    s->tr.last_code == 552 ? ". It is larger than the server accepts" : "");
		return sc_error_set(err, SC_EPROTO, "The connection failed while sending the message "
				    "(%s); the message may not have been delivered", why);
	case STAGE_EHLO:
		if (reply && s->tr.last_code >= 400)
			return sc_error_set(err, SC_EPROTO, "EHLO refused: %s. Set ehlo_name to a name "
					    "the server accepts", reply);
		break;
	default:
		break;
	}
	if (rc == CURLE_OPERATION_TIMEDOUT)
		return sc_error_set(err, SC_EPROTO, "The server did not answer %s within the %ld s timeout",
				    core_stage_name(s->tr.stage), s->timeout);
	if (rc == CURLE_WEIRD_SERVER_REPLY && s->tr.stage == STAGE_CONNECT)
		return sc_error_set(err, SC_EPROTO, "Connection to server failed: %s:%ld did not answer "
				    "like an SMTP server (%s)%s", s->host, s->port, why,
				    s->port == 465 ? "; port 465 expects TLS from the first byte: use ssl_config \"SSL\"" : "");
	return sc_error_set(err, SC_EPROTO, "SMTP %s failed: %s%s%s", core_stage_name(s->tr.stage), why,
			    reply ? "; last server reply: " : "", reply ? reply : "");
}

int core_session_fail(struct sc_session *s, CURLcode rc, struct sc_error *err)
{
	const char *why = s->errbuf[0] ? s->errbuf : curl_easy_strerror(rc);
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
		return fail_connect(s, rc, why, err);
	case CURLE_OPERATION_TIMEDOUT:
		if (!s->tr.greeting)
			return fail_connect(s, rc, why, err);
		break;
	case CURLE_USE_SSL_FAILED:
		return sc_error_set(err, SC_ETLS,
				    "STARTTLS failed: the server at %s:%ld did not offer STARTTLS, which "
				    "ssl_config \"StartTLS\" requires; nothing else was sent. If it expects TLS "
				    "from the first byte use ssl_config \"SSL\"; use \"None\" only on a trusted network",
				    s->host, s->port);
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
		return sc_error_set(err, SC_ETLS, "TLS failed with %s:%ld: %s. %s", s->host, s->port, why,
				    tls_hint(s, why));
	case CURLE_LOGIN_DENIED:
		return fail_auth(s, why, err);
	default:
		break;
	}
	return fail_after_connect(s, rc, why, err);
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
 * before MAIL FROM, so a message it cannot carry is never half-sent. */
static int check_capabilities(struct sc_session *s, const struct sc_envelope *env,
			      struct sc_error *err)
{
	const char *u = first_utf8(env);
	if (u && !s->allow_smtputf8)
		return sc_error_set(err, SC_EINPUT, "The address \"%s\" is not ASCII and needs SMTPUTF8, "
				    "but the asset sets allow_smtputf8: false. Enable it or use an ASCII address", u);
	if (u && !sc_session_offers(s, "SMTPUTF8"))
		return sc_error_set(err, SC_ESEND, "The address \"%s\" is not ASCII and needs SMTPUTF8, "
				    "which the server at %s:%ld does not offer; nothing was sent. Use an ASCII address",
				    u, s->host, s->port);
	/* UTF-8 in header fields (send rawemail sends them as given) is only
	 * defined under SMTPUTF8 (RFC 6532); 8BITMIME covers bodies only. */
	if (env->needs_smtputf8 && !u && !s->allow_smtputf8)
		return sc_error_set(err, SC_EINPUT, "The message has UTF-8 in its header fields, which "
				    "needs SMTPUTF8, but the asset sets allow_smtputf8: false. Enable it or "
				    "encode those fields as RFC 2047 encoded words (=?utf-8?b?...?=)");
	if (env->needs_smtputf8 && !u && !sc_session_offers(s, "SMTPUTF8"))
		return sc_error_set(err, SC_ESEND, "The message has UTF-8 in its header fields, which "
				    "needs SMTPUTF8; the server at %s:%ld does not offer it, so nothing was "
				    "sent. Encode those fields as RFC 2047 encoded words (=?utf-8?b?...?=)",
				    s->host, s->port);
	if ((env->needs_8bit || env->needs_smtputf8) && !sc_session_offers(s, "8BITMIME") &&
	    !sc_session_offers(s, "SMTPUTF8"))
		return sc_error_set(err, SC_ESEND, "The message carries 8-bit (UTF-8) content, but the "
				    "server at %s:%ld offers neither 8BITMIME nor SMTPUTF8; nothing was sent. "
				    "Encode the message in 7-bit (quoted-printable or base64)", s->host, s->port);
	return SC_OK;
}

static struct curl_slist *rcpt_list(const struct sc_envelope *env)
{
	struct curl_slist *l = NULL;
	for (size_t i = 0; i < env->nrcpt; i++) {
		char *r = sc_asprintf("<%s>", env->rcpt[i]);
		struct curl_slist *n = r ? curl_slist_append(l, r) : NULL;
		free(r);
		if (!n) {
			curl_slist_free_all(l);
			return NULL;
		}
		l = n;
	}
	return l;
}

/* A reused connection may have been closed by the server while idle; one
 * fresh attempt is safe as long as the server accepted nothing. */
static CURLcode perform(struct sc_session *s, struct sc_message *m)
{
	core_transcript_reset(&s->tr);
	s->errbuf[0] = '\0';
	CURLcode rc = curl_easy_perform(s->curl);
	long fresh = 0;
	curl_easy_getinfo(s->curl, CURLINFO_NUM_CONNECTS, &fresh);
	int dead = rc != CURLE_OK && fresh == 0 && s->tr.stage <= STAGE_MAIL &&
		   (!s->tr.mail_reply || s->tr.last_code == 421);
	if (dead) {
		sc_log(SC_LOG_INFO, "the server closed the idle connection; reconnecting");
		core_transcript_reset(&s->tr);
		s->errbuf[0] = '\0';
		struct sc_error e = SC_ERROR_INIT;
		if (core_message_apply(m, s->curl, &e) == SC_OK) {
			curl_easy_setopt(s->curl, CURLOPT_FRESH_CONNECT, 1L);
			rc = curl_easy_perform(s->curl);
			curl_easy_setopt(s->curl, CURLOPT_FRESH_CONNECT, 0L);
		}
		sc_error_clear(&e);
	}
	return rc;
}

static void collect(struct sc_session *s, struct sc_delivery *out)
{
	out->accepted = calloc(s->tr.nrcpts + 1, sizeof *out->accepted);
	out->refused = calloc(s->tr.nrcpts + 1, sizeof *out->refused);
	if (!out->accepted || !out->refused)
		return;
	for (size_t i = 0; i < s->tr.nrcpts; i++) {
		struct core_rcpt_reply *r = &s->tr.rcpts[i];
		if (r->code / 100 == 2) {
			out->accepted[out->naccepted++] = strdup(r->addr ? r->addr : "");
		} else {
			out->refused[out->nrefused].addr = strdup(r->addr ? r->addr : "");
			out->refused[out->nrefused].reply = strdup(r->reply ? r->reply : "");
			out->nrefused++;
		}
	}
	out->reply = s->tr.data_reply ? strdup(s->tr.data_reply) : NULL;
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

int sc_session_send(struct sc_session *s, const struct sc_envelope *env, struct sc_message *m,
		    struct sc_delivery *out, struct sc_error *err)
{
	memset(out, 0, sizeof *out);
	if (env->nrcpt == 0)
		return sc_error_set(err, SC_EINPUT, "no recipients: give at least one address in to, cc or bcc");
	if (bad_envelope_addr(env->mail_from))
		return sc_error_set(err, SC_EINPUT, "the sender address contains control characters or <>");
	for (size_t i = 0; i < env->nrcpt; i++)
		if (bad_envelope_addr(env->rcpt[i]))
			return sc_error_set(err, SC_EINPUT, "a recipient address contains control characters or <>");
	int rc = check_capabilities(s, env, err);
	if (!rc && s->secret_key)
		rc = core_message_sign(m, s->secret_key, err);
	if (!rc && s->throttle > 0)
		rc = core_throttle_wait(s->throttle_path, s->throttle, s->throttle_max_wait, err);
	if (rc)
		return rc;
	struct curl_slist *rcpts = rcpt_list(env);
	char *from = sc_asprintf("<%s>", env->mail_from);
	if (!rcpts || !from) {
		curl_slist_free_all(rcpts);
		free(from);
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	curl_easy_setopt(s->curl, CURLOPT_CUSTOMREQUEST, NULL);
	curl_easy_setopt(s->curl, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(s->curl, CURLOPT_MAIL_RCPT, rcpts);
	rc = core_message_apply(m, s->curl, err);
	if (rc == SC_OK) {
		CURLcode cr = perform(s, m);
		collect(s, out);
		if (cr == CURLE_OK) {
			rc = SC_OK;
		} else if (out->nrefused && out->naccepted == 0 && s->tr.stage == STAGE_RCPT) {
			char *t = sc_delivery_refused_text(out);
			rc = sc_error_set(err, SC_ESEND, "Every recipient was refused: %s", t ? t : "");
			free(t);
		} else {
			rc = core_session_fail(s, cr, err);
		}
	}
	core_message_detach(m, s->curl);
	curl_easy_setopt(s->curl, CURLOPT_MAIL_RCPT, NULL);
	curl_easy_setopt(s->curl, CURLOPT_MAIL_FROM, NULL);
	curl_slist_free_all(rcpts);
	free(from);
	return rc;
}

int sc_send(struct sc_ctx *ctx, const struct sc_envelope *env, struct sc_message *m,
	    struct sc_result *r, struct sc_error *err)
{
	struct sc_session *s = NULL;
	struct sc_delivery d;
	memset(&d, 0, sizeof d);
	int rc = sc_session_open(ctx, &s, err);
	if (!rc) {
		rc = sc_session_send(s, env, m, &d, err);
		sc_delivery_report(s, &d, r);
	}
	if (!rc) {
		const char *id = core_message_id(m);
		cJSON_AddStringToObject(sc_result_data(r), "message_id", id ? id : "");
	} else {
		sc_error_prefix(err, "Email send failed");
	}
	sc_delivery_free(&d);
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

void sc_delivery_report(const struct sc_session *s, const struct sc_delivery *d, struct sc_result *r)
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
		sc_result_message(r, "Email sent to %zu of %zu recipients; refused: %s", d->naccepted,
				  d->naccepted + d->nrefused, t ? t : "");
		free(t);
	} else {
		sc_result_message(r, "Email sent");
	}
}
