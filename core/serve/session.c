/* The SMTP server state machine (see session.h). Reply texts carry
 * RFC 3463 enhanced status codes, as ENHANCEDSTATUSCODES promises. */
#include "session.h"
#include "msgfile.h"
#include "smtp_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

/* Unstuffed bytes are written in blocks of this size: memory stays flat
 * whatever the message size. */
#define FLUSH_AT (64 * 1024)
/* RFC 4954 §4: an AUTH line may be 12288 octets; commands get at least
 * that much whatever line_length says. */
#define CMD_LINE_MIN 12288

static void reply(struct sc_buf *out, const char *fmt, ...) SC_PRINTF(2, 3);
static void reply(struct sc_buf *out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *t = core_vasprintf(fmt, ap);
	va_end(ap);
	if (t) {
		sc_buf_str(out, t);
		sc_buf_add(out, "\r\n", 2);
	}
	free(t);
}

static char *dup_n(const char *p, size_t n)
{
	char *s = malloc(n + 1);
	if (s) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

static void auth_wipe(struct serve_session *s)
{
	free(s->auth_name);
	if (s->auth_pass)
		sc_secret_wipe(s->auth_pass, s->auth_pass_len);
	free(s->auth_pass);
	s->auth_name = s->auth_pass = NULL;
	s->auth_pass_len = 0;
}

static void drop_file(struct serve_session *s)
{
	serve_msgfile_release(&s->file, s->accepted);
	s->accepted = 0;
	sc_buf_free(&s->pending);
}

/* End the transaction (RSET, after a message, STARTTLS); a new id. */
static void reset_transaction(struct serve_session *s)
{
	int had = s->mail_from != NULL || s->file.path != NULL;
	drop_file(s);
	free(s->mail_from);
	s->mail_from = NULL;
	for (size_t i = 0; i < s->nrcpt; i++)
		free(s->rcpt[i]);
	free(s->rcpt);
	s->rcpt = NULL;
	s->nrcpt = 0;
	s->smtputf8 = 0;
	s->size = 0;
	if (s->state != SS_FRESH)
		s->state = SS_READY;
	if (had)
		serve_new_id(s->id);
}

struct serve_session *serve_session_new(const struct serve_config *cfg, const char *addr, int port,
                                        int tls, const char *tls_version)
{
	struct serve_session *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->cfg = cfg;
	s->file.fd = -1;
	snprintf(s->client_addr, sizeof s->client_addr, "%s", addr);
	s->client_port = port;
	s->tls = tls;
	s->tls_version = tls_version ? strdup(tls_version) : NULL;
	serve_new_id(s->id);
	serve_log(s->id, "New session from %s port %d%s", addr, port, tls ? " (TLS)" : "");
	return s;
}

void serve_session_free(struct serve_session *s)
{
	if (!s)
		return;
	serve_log(s->id, "Session logout after %u message%s", s->messages,
	          s->messages == 1 ? "" : "s");
	reset_transaction(s);
	auth_wipe(s);
	free(s->helo);
	free(s->auth_user);
	free(s->tls_version);
	sc_buf_wipe(&s->line);
	free(s);
}

void serve_session_greet(struct serve_session *s, struct sc_buf *out)
{
	reply(out, "220 %s ESMTP smtp-connector ready", s->cfg->domain);
}

long serve_session_timeout(const struct serve_session *s)
{
	if (s->want != SW_NONE && s->want != SW_CLOSE)
		return 0;
	return s->state == SS_DATA ? s->cfg->t_data : s->cfg->t_command;
}

static int tls_offered(const struct serve_session *s)
{
	return s->cfg->tls_cert && !s->tls;
}

static int auth_offered(const struct serve_session *s)
{
	return s->cfg->nusers && (s->tls || s->cfg->allow_plaintext_auth);
}

/* ------------------------------------------------------------------ */

static void do_ehlo(struct serve_session *s, const struct serve_cmd *c, struct sc_buf *out)
{
	reset_transaction(s);
	free(s->helo);
	s->helo = dup_n(c->arg, c->arg_len);
	s->state = SS_READY;
	s->esmtp = c->verb == SV_EHLO;
	serve_log(s->id, "%s: %s", s->esmtp ? "EHLO" : "HELO", s->helo ? s->helo : "");
	if (!s->esmtp) {
		reply(out, "250 %s", s->cfg->domain);
		return;
	}
	reply(out, "250-%s Hello %s", s->cfg->domain, s->helo ? s->helo : "");
	reply(out, "250-PIPELINING");
	reply(out, "250-SIZE %llu", s->cfg->max_size);
	reply(out, "250-8BITMIME");
	reply(out, "250-SMTPUTF8");
	if (tls_offered(s))
		reply(out, "250-STARTTLS");
	if (auth_offered(s))
		reply(out, "250-AUTH PLAIN LOGIN");
	reply(out, "250 ENHANCEDSTATUSCODES");
}

static void do_mail(struct serve_session *s, struct serve_cmd *c, struct sc_buf *out)
{
	const struct serve_config *cfg = s->cfg;
	if (s->state == SS_FRESH)
		return reply(out, "503 5.5.1 Say EHLO or HELO first");
	if (s->state != SS_READY)
		return reply(out, "503 5.5.1 Nested MAIL command");
	if (cfg->require_tls && !s->tls)
		return reply(out, "530 5.7.0 Must issue a STARTTLS command first");
	if (cfg->nusers && cfg->auth_required && !s->auth_user)
		return reply(out, "530 5.7.0 Authentication required");
	if (c->has_size && c->size > cfg->max_size)
		return reply(out, "552 5.3.4 Message size exceeds the maximum of %llu bytes",
		             cfg->max_size);
	if (c->non_ascii && !c->smtputf8)
		return reply(out, "553 5.6.7 Non-ASCII address without SMTPUTF8");
	s->mail_from = c->path;
	c->path = NULL;
	s->smtputf8 = c->smtputf8;
	s->state = SS_MAIL;
	serve_log(s->id, "MAIL: %s", s->mail_from);
	reply(out, "250 2.1.0 Sender <%s> OK", s->mail_from);
}

static void do_rcpt(struct serve_session *s, struct serve_cmd *c, struct sc_buf *out)
{
	if (s->state != SS_MAIL && s->state != SS_RCPT)
		return reply(out, "503 5.5.1 Need MAIL before RCPT");
	if (s->nrcpt >= s->cfg->max_rcpt)
		return reply(out, "452 4.5.3 Too many recipients (at most %zu)", s->cfg->max_rcpt);
	if (c->non_ascii && !s->smtputf8)
		return reply(out, "553 5.6.7 Non-ASCII address without SMTPUTF8");
	char **r = realloc(s->rcpt, (s->nrcpt + 1) * sizeof *r);
	if (!r)
		return reply(out, "452 4.3.0 Out of memory");
	s->rcpt = r;
	s->rcpt[s->nrcpt++] = c->path;
	c->path = NULL;
	s->state = SS_RCPT;
	serve_log(s->id, "RCPT: %s", s->rcpt[s->nrcpt - 1]);
	reply(out, "250 2.1.5 Recipient <%s> OK", s->rcpt[s->nrcpt - 1]);
}

static void do_data(struct serve_session *s, struct sc_buf *out)
{
	if (s->state == SS_MAIL)
		return reply(out, "554 5.5.1 No valid recipients");
	if (s->state != SS_RCPT)
		return reply(out, "503 5.5.1 Need MAIL and RCPT before DATA");
	if (serve_msgfile_open(s->cfg->spool_dir, s->id, &s->file)) {
		serve_log(s->id, "cannot create a message file in %s: %s", s->cfg->spool_dir,
		          strerror(errno));
		return reply(out, "451 4.3.0 Cannot store the message now; try again later");
	}
	serve_data_init(&s->dr, s->cfg->max_size, s->cfg->line_length);
	s->state = SS_DATA;
	reply(out, "354 End data with <CR><LF>.<CR><LF>");
}

static void do_auth(struct serve_session *s, const struct serve_cmd *c, struct sc_buf *out);

static void do_starttls(struct serve_session *s, struct sc_buf *out)
{
	if (!s->cfg->tls_cert)
		return reply(out, "502 5.5.1 STARTTLS not available");
	if (s->tls)
		return reply(out, "503 5.5.1 TLS already active");
	if (s->state != SS_READY && s->state != SS_FRESH)
		return reply(out, "503 5.5.1 STARTTLS not allowed during a mail transaction");
	reply(out, "220 2.0.0 Ready to start TLS");
	s->want = SW_STARTTLS;
}

static void command(struct serve_session *s, const char *line, size_t len, struct sc_buf *out)
{
	struct serve_cmd c;
	const char *why = NULL;
	int code = serve_cmd_parse(line, len, &c, &why);
	if (code) {
		s->errors++;
		reply(out, "%d %s", code, why);
		serve_cmd_clear(&c);
		return;
	}
	switch (c.verb) {
	case SV_HELO:
	case SV_EHLO:
		do_ehlo(s, &c, out);
		break;
	case SV_MAIL:
		do_mail(s, &c, out);
		break;
	case SV_RCPT:
		do_rcpt(s, &c, out);
		break;
	case SV_DATA:
		do_data(s, out);
		break;
	case SV_RSET:
		reset_transaction(s);
		reply(out, "250 2.0.0 Reset");
		break;
	case SV_NOOP:
		reply(out, "250 2.0.0 OK");
		break;
	case SV_QUIT:
		reply(out, "221 2.0.0 %s closing connection", s->cfg->domain);
		s->want = SW_CLOSE;
		break;
	case SV_VRFY:
		reply(
		    out,
		    "252 2.5.0 Cannot VRFY user, but will accept the message and attempt delivery");
		break;
	case SV_HELP:
		reply(out,
		      "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP%s%s",
		      tls_offered(s) ? " STARTTLS" : "", auth_offered(s) ? " AUTH" : "");
		break;
	case SV_STARTTLS:
		do_starttls(s, out);
		break;
	case SV_AUTH:
		do_auth(s, &c, out);
		break;
	default:
		s->errors++;
		reply(out, "502 5.5.1 Command not implemented");
	}
	serve_cmd_clear(&c);
}

/* ------------------------------------------------------------------ */
/* AUTH PLAIN (RFC 4616) and LOGIN                                     */

static void auth_fail(struct serve_session *s, struct sc_buf *out, const char *text)
{
	auth_wipe(s);
	s->state = SS_READY;
	s->errors++;
	reply(out, "%s", text);
}

/* A user name goes into the log and the index: no control characters. */
static int name_ok(const char *n)
{
	for (const unsigned char *p = (const unsigned char *)n; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return 0;
	return *n != '\0';
}

/* "authzid NUL authcid NUL passwd" */
static void auth_plain(struct serve_session *s, const char *b64, size_t n, struct sc_buf *out)
{
	size_t len = 0;
	unsigned char *d = serve_b64_decode(b64, n, &len);
	if (!d)
		return auth_fail(s, out, "501 5.5.2 Cannot decode the AUTH response");
	const unsigned char *z1 = memchr(d, '\0', len);
	const unsigned char *z2 = z1 ? memchr(z1 + 1, '\0', len - (size_t)(z1 + 1 - d)) : NULL;
	if (!z2) {
		sc_secret_wipe(d, len);
		free(d);
		return auth_fail(s, out,
		                 "501 5.5.2 AUTH PLAIN response is not authzid\\0user\\0password");
	}
	size_t zlen = (size_t)(z1 - d);
	const char *user = (const char *)z1 + 1;
	if (zlen && (zlen != strlen(user) || memcmp(d, user, zlen) != 0)) {
		sc_secret_wipe(d, len);
		free(d);
		return auth_fail(s, out, "535 5.7.8 Authorization identity differs from the user");
	}
	if (!name_ok(user)) {
		sc_secret_wipe(d, len);
		free(d);
		return auth_fail(s, out, "535 5.7.8 Authentication credentials invalid");
	}
	s->auth_name = strdup(user);
	s->auth_pass_len = len - (size_t)(z2 + 1 - d);
	s->auth_pass = dup_n((const char *)z2 + 1, s->auth_pass_len);
	sc_secret_wipe(d, len);
	free(d);
	if (!s->auth_name || !s->auth_pass)
		return auth_fail(s, out, "454 4.3.0 Out of memory");
	s->want = SW_AUTH;
}

static void auth_line(struct serve_session *s, const char *line, size_t len, struct sc_buf *out)
{
	if (len == 1 && line[0] == '*')
		return auth_fail(s, out, "501 5.7.0 Authentication cancelled");
	if (s->state == SS_AUTH_PLAIN)
		return auth_plain(s, line, len, out);
	size_t dl = 0;
	unsigned char *d = serve_b64_decode(line, len, &dl);
	if (!d)
		return auth_fail(s, out, "501 5.5.2 Cannot decode the AUTH response");
	if (s->state == SS_AUTH_USER) {
		if (dl != strlen((char *)d) || !name_ok((char *)d)) {
			free(d);
			return auth_fail(s, out, "535 5.7.8 Authentication credentials invalid");
		}
		s->auth_name = (char *)d;
		s->state = SS_AUTH_PASS;
		reply(out, "334 UGFzc3dvcmQ6"); /* "Password:" */
		return;
	}
	s->auth_pass = (char *)d;
	s->auth_pass_len = dl;
	s->want = SW_AUTH;
}

static void do_auth(struct serve_session *s, const struct serve_cmd *c, struct sc_buf *out)
{
	if (!s->cfg->nusers)
		return reply(out, "502 5.5.1 AUTH not available");
	if (!s->tls && !s->cfg->allow_plaintext_auth)
		return reply(
		    out, "538 5.7.11 Encryption required for requested authentication mechanism");
	if (!s->esmtp)
		return reply(out, "503 5.5.1 Say EHLO first");
	if (s->auth_user)
		return reply(out, "503 5.5.1 Already authenticated");
	if (s->state != SS_READY)
		return reply(out, "503 5.5.1 AUTH not allowed during a mail transaction");
	const char *sp = memchr(c->arg, ' ', c->arg_len);
	size_t ml = sp ? (size_t)(sp - c->arg) : c->arg_len;
	const char *ir = sp ? sp + 1 : NULL;
	size_t irl = sp ? c->arg_len - ml - 1 : 0;
	if (ml == 5 && strncasecmp(c->arg, "PLAIN", 5) == 0) {
		s->state = SS_AUTH_PLAIN;
		if (!ir)
			return reply(out, "334 ");
		if (irl == 1 && ir[0] == '=')
			irl = 0; /* RFC 4954: "=" is an empty initial response */
		return auth_plain(s, ir, irl, out);
	}
	if (ml == 5 && strncasecmp(c->arg, "LOGIN", 5) == 0) {
		s->state = SS_AUTH_USER;
		if (!ir)
			return reply(out, "334 VXNlcm5hbWU6"); /* "Username:" */
		return auth_line(s, ir, irl, out);
	}
	s->errors++;
	reply(out, "504 5.5.4 Unrecognized authentication type (PLAIN and LOGIN are offered)");
}

void serve_session_auth_done(struct serve_session *s, int ok, struct sc_buf *out)
{
	s->want = SW_NONE;
	s->state = SS_READY;
	if (ok) {
		s->auth_user = s->auth_name;
		s->auth_name = NULL;
		serve_log(s->id, "AUTH: %s", s->auth_user);
		reply(out, "235 2.7.0 Authentication successful");
	} else {
		serve_log(s->id, "AUTH failed for %s", s->auth_name ? s->auth_name : "");
		s->errors++;
		reply(out, "535 5.7.8 Authentication credentials invalid");
	}
	auth_wipe(s);
}

/* ------------------------------------------------------------------ */
/* DATA                                                                 */

static int flush_pending(struct serve_session *s)
{
	if (sc_write_all(s->file.fd, s->pending.p, s->pending.len))
		return -1;
	s->pending.len = 0;
	return 0;
}

static void data_end(struct serve_session *s, struct sc_buf *out)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	s->received = tv.tv_sec;
	s->received_usec = tv.tv_usec;
	s->size = s->dr.size;
	if (s->dr.error != SD_OK) {
		serve_log(s->id, "DATA refused (%llu bytes): %s", s->dr.size,
		          serve_data_error_reply(s->dr.error) + 10);
		reply(out, "%s", serve_data_error_reply(s->dr.error));
		reset_transaction(s);
		return;
	}
	int bad = flush_pending(s) || serve_msgfile_cut(&s->file, s->dr.size);
	sc_buf_free(&s->pending);
	if (bad) {
		serve_log(s->id, "cannot write %s: %s", s->file.path, strerror(errno));
		reply(out, "451 4.3.0 Cannot store the message now; try again later");
		reset_transaction(s);
		return;
	}
	serve_log(s->id, "DATA: [redacted (%llu bytes)]", s->size);
	s->want = SW_DELIVER;
}

static size_t data_input(struct serve_session *s, const char *in, size_t n, struct sc_buf *out)
{
	size_t used = 0;
	enum serve_data_status st = serve_data_feed(&s->dr, in, n, &used, &s->pending);
	if (st == SD_NOMEM) {
		reply(out, "452 4.3.0 Out of memory; closing connection");
		s->want = SW_CLOSE;
		return n;
	}
	if (s->pending.len >= FLUSH_AT && s->dr.error == SD_OK && flush_pending(s)) {
		serve_log(s->id, "cannot write %s: %s", s->file.path, strerror(errno));
		reply(out, "451 4.3.0 Cannot store the message now; closing connection");
		s->want = SW_CLOSE;
		return n;
	}
	if (st == SD_FATAL) {
		serve_log(s->id, "DATA refused: %s; closing connection",
		          serve_data_error_reply(s->dr.error) + 10);
		reply(out, "%s; closing connection", serve_data_error_reply(s->dr.error));
		reset_transaction(s);
		s->want = SW_CLOSE;
		return n;
	}
	if (st == SD_END)
		data_end(s, out);
	return used;
}

void serve_session_inbound(const struct serve_session *s, struct sc_inbound *m)
{
	memset(m, 0, sizeof *m);
	m->id = s->id;
	m->path = s->file.path;
	m->size = (size_t)s->size;
	m->mail_from = s->mail_from ? s->mail_from : "";
	m->rcpt = (const char *const *)s->rcpt;
	m->nrcpt = s->nrcpt;
	m->client_addr = s->client_addr;
	m->client_port = s->client_port;
	m->helo = s->helo ? s->helo : "";
	m->tls = s->tls;
	m->tls_version = s->tls_version;
	m->auth_user = s->auth_user;
	m->received = s->received;
	m->received_usec = s->received_usec;
}

void serve_session_delivered(struct serve_session *s, enum sc_sink_verdict v, const char *text,
                             const char *reason, struct sc_buf *out)
{
	s->want = SW_NONE;
	switch (v) {
	case SC_SINK_ACCEPT:
		s->accepted = 1; /* the sink holds it: its file may be reused */
		s->messages++;
		serve_log(s->id, "Delivered");
		if (text)
			reply(out, "250 %s", text);
		else
			reply(out, "250 2.0.0 OK: queued as %s", s->id);
		break;
	case SC_SINK_DEFER:
		serve_log(s->id, "Delivery deferred: %s", reason ? reason : "(no reason given)");
		reply(out, "451 %s",
		      text ? text : "4.3.0 Delivery failed for now; try again later");
		break;
	default:
		serve_log(s->id, "Delivery refused: %s", reason ? reason : "(no reason given)");
		reply(out, "554 %s", text ? text : "5.3.0 Delivery refused");
	}
	reset_transaction(s);
}

void serve_session_unsigned(struct serve_session *s, const char *reason, struct sc_buf *out)
{
	/* one printable ASCII line: the reason quotes header bytes */
	char line[400];
	size_t w = 0;
	for (const char *p = reason ? reason : "not signed"; *p && w + 1 < sizeof line; p++)
		line[w++] = *p >= 0x20 && *p < 0x7f ? *p : '?';
	line[w] = '\0';
	s->want = SW_NONE;
	serve_log(s->id, "Refused: signature: %s", line);
	reply(out, "550 5.7.1 Signature required: %s", line);
	reset_transaction(s);
}

/* ------------------------------------------------------------------ */

void serve_session_tls_started(struct serve_session *s, const char *version)
{
	s->want = SW_NONE;
	s->tls = 1;
	free(s->tls_version);
	s->tls_version = version ? strdup(version) : NULL;
	reset_transaction(s);
	free(s->helo);
	s->helo = NULL;
	s->esmtp = 0;
	s->state = SS_FRESH;
	sc_buf_wipe(&s->line);
	s->skipping = 0;
	serve_log(s->id, "STARTTLS: %s", version ? version : "TLS");
}

int serve_session_shutdown(struct serve_session *s, struct sc_buf *out)
{
	if (s->want != SW_NONE || s->state == SS_MAIL || s->state == SS_RCPT || s->state == SS_DATA)
		return 0;
	reply(out, "421 4.3.2 %s Service shutting down", s->cfg->domain);
	s->want = SW_CLOSE;
	return 1;
}

/* A full command line (without LF and an optional CR before it). */
static void line_done(struct serve_session *s, struct sc_buf *out)
{
	size_t len = s->line.len;
	if (len && s->line.p[len - 1] == '\r')
		len--;
	if (s->state == SS_AUTH_PLAIN || s->state == SS_AUTH_USER || s->state == SS_AUTH_PASS)
		auth_line(s, s->line.p ? s->line.p : "", len, out);
	else
		command(s, s->line.p ? s->line.p : "", len, out);
	sc_buf_wipe(&s->line); /* it may have held an AUTH secret */
	if (s->errors >= s->cfg->max_errors && s->want == SW_NONE) {
		reply(out, "421 4.7.0 %s Too many errors; closing connection", s->cfg->domain);
		s->want = SW_CLOSE;
	}
}

size_t serve_session_input(struct serve_session *s, const char *in, size_t n, struct sc_buf *out)
{
	size_t i = 0;
	size_t limit = s->cfg->line_length > CMD_LINE_MIN ? s->cfg->line_length : CMD_LINE_MIN;
	while (i < n && s->want == SW_NONE) {
		if (s->state == SS_DATA) {
			i += data_input(s, in + i, n - i, out);
			continue;
		}
		const char *lf = memchr(in + i, '\n', n - i);
		size_t take = lf ? (size_t)(lf - (in + i)) : n - i;
		if (!s->skipping && s->line.len + take > limit) {
			s->skipping = 1;
			sc_buf_wipe(&s->line);
		}
		if (!s->skipping && sc_buf_add(&s->line, in + i, take)) {
			reply(out, "421 4.3.0 Out of memory; closing connection");
			s->want = SW_CLOSE;
			return n;
		}
		i += take + (lf ? 1 : 0);
		if (!lf)
			break;
		if (s->skipping) {
			s->skipping = 0;
			s->errors++;
			reply(out, "500 5.5.2 Line too long");
			continue;
		}
		line_done(s, out);
	}
	return i;
}
