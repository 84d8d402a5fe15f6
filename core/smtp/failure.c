/* A failed libcurl transfer in words: the stage (greeting, EHLO,
 * STARTTLS, AUTH, MAIL FROM, RCPT TO, DATA, end of data), what the server
 * did there (its reply verbatim from the transcript, or that it closed the
 * connection, or sent no complete reply within the timeout) and what to do.
 * libcurl's own text ("Got unexpected smtp-server response: 554",
 * "response reading failed (errno: 115)") says none of that: its errno is
 * stale after an end-of-file, so it is never shown for a close. */
#include "session.h"

#include <stdlib.h>
#include <string.h>

enum outcome { REPLIED, CLOSED, TIMED_OUT, TOO_LARGE, OTHER };

static enum outcome outcome_of(const struct sc_session *s, CURLcode rc, const char *why)
{
	if (strstr(why, "Too large response"))
		return TOO_LARGE;
	if (s->tr.answer)
		return REPLIED;
	if (rc == CURLE_OPERATION_TIMEDOUT)
		return TIMED_OUT;
	/* "response reading failed" is libcurl's end-of-file on a reply */
	if (rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR || rc == CURLE_GOT_NOTHING ||
	    strstr(why, "response reading failed"))
		return CLOSED;
	return OTHER;
}

/* "the server replied \"...\"" and the like; allocated. */
static char *what_happened(const struct sc_session *s, enum outcome o, const char *why)
{
	const struct core_transcript *tr = &s->tr;
	switch (o) {
	case REPLIED:
		return sc_asprintf("the server replied \"%s\"", tr->answer);
	case TIMED_OUT:
		if (tr->partial)
			return sc_asprintf(
			    "the server's reply was still incomplete after the %ld s timeout "
			    "(so far: \"%s\")",
			    s->timeout, tr->partial);
		/* libcurl's connect timeout covers the whole set-up */
		if (tr->stage <= STAGE_AUTH)
			return sc_asprintf(
			    "the server sent no complete reply before the %ld s timeout "
			    "for the connection set-up (greeting to AUTH) ran out",
			    s->timeout);
		return sc_asprintf("the server sent no complete reply within the %ld s timeout",
		                   s->timeout);
	case CLOSED:
		return sc_asprintf("the server closed the connection without a reply%s",
		                   strstr(why, "reset") ? " (connection reset)" : "");
	case TOO_LARGE:
		return sc_asprintf(
		    "the server's replies in one transfer passed libcurl's limit (%s)", why);
	default:
		return sc_asprintf("%s", why);
	}
}

static const char *retry_hint(const struct sc_session *s, enum outcome o)
{
	if (o == TIMED_OUT)
		return "The server is slow or stuck: try again later, or raise the asset's timeout";
	if (o == CLOSED)
		return "Try again later; if it persists, the server's log says why it hung up";
	if (o == REPLIED && s->tr.last_code / 100 == 4)
		return "The refusal is temporary: try again later";
	return "";
}

static const char *tls_hint(const struct sc_session *s, const char *why)
{
	if (strstr(why, "wrong version number") || strstr(why, "packet length too long") ||
	    strstr(why, "unexpected eof"))
		return !strcmp(s->ssl_config, "SSL")
		           ? "The server does not speak TLS from the first byte on this port: "
		             "use ssl_config \"StartTLS\" for port 587 or 25, or port 465 for "
		             "\"SSL\""
		           : "The TLS handshake was broken off: check that the server offers TLS "
		             "on this port";
	if (strstr(why, "certificate") || strstr(why, "self-signed") ||
	    strstr(why, "self signed") || strstr(why, "issuer"))
		return "The server's certificate is not trusted: set ca_file to the PEM file of "
		       "the CA "
		       "that signed it (or, on a test network only, verify_server_cert: false)";
	if (strstr(why, "name") || strstr(why, "subject"))
		return "The certificate is for another host name: connect with the name the "
		       "certificate "
		       "carries, or fix the certificate";
	return "Check ssl_config and port (SSL uses 465, StartTLS 587), and ca_file";
}

static const char *port_hint(const struct sc_session *s)
{
	return !strcmp(s->ssl_config, "SSL")
	           ? "if this port expects STARTTLS (587 or 25) use ssl_config \"StartTLS\""
	       : s->port == 465 ? "port 465 expects TLS from the first byte: use ssl_config \"SSL\""
	                        : "check the port and ssl_config (SSL on 465, StartTLS on 587)";
}

static int fail_connect(struct sc_session *s, CURLcode rc, const char *why, struct sc_error *err)
{
	if (rc == CURLE_COULDNT_RESOLVE_HOST)
		return sc_error_set(err, SC_ECONNECT,
		                    "Connection to server failed: cannot resolve host "
		                    "\"%s\" (%s). Check the server name",
		                    s->host, why);
	if (rc == CURLE_OPERATION_TIMEDOUT)
		return sc_error_set(
		    err, SC_ECONNECT,
		    "Connection to server failed: %s:%ld %s within the %ld s timeout; %s", s->host,
		    s->port,
		    !s->tr.connected ? "did not accept the connection"
		                     : "accepted the connection but sent no SMTP greeting",
		    s->timeout, port_hint(s));
	return sc_error_set(err, SC_ECONNECT,
	                    "Connection to server failed: %s:%ld: %s. "
	                    "Check server, port and that a firewall lets the connection through",
	                    s->host, s->port, why);
}

/* The greeting: a refusal (554 "... block list"), a hang-up, or not SMTP. */
static int fail_greeting(struct sc_session *s, CURLcode rc, enum outcome o, const char *why,
                         struct sc_error *err)
{
	int code = s->tr.last_code;
	if (o == TIMED_OUT)
		return fail_connect(s, rc, why, err);
	if (o == REPLIED && (code / 100 == 4 || code / 100 == 5))
		return sc_error_set(
		    err, SC_ECONNECT,
		    "Connection to server failed: %s:%ld refused the "
		    "session in its greeting: \"%s\". %s",
		    s->host, s->port, s->tr.answer,
		    code / 100 == 4 ? "It is busy or refusing this client for now: try again later"
		                    : "It does not accept mail from this client (its reply says "
		                      "why): ask its administrator, or use another server");
	if (o == REPLIED)
		return sc_error_set(err, SC_EPROTO,
		                    "Connection to server failed: %s:%ld did not answer "
		                    "like an SMTP server (greeting: \"%s\"); %s",
		                    s->host, s->port, s->tr.answer, port_hint(s));
	if (o == CLOSED)
		return sc_error_set(
		    err, SC_ECONNECT,
		    "Connection to server failed: %s:%ld closed the "
		    "connection without a greeting%s. It may refuse this client or be "
		    "overloaded; %s",
		    s->host, s->port, strstr(why, "reset") ? " (connection reset)" : "",
		    port_hint(s));
	return sc_error_set(err, SC_ECONNECT,
	                    "Connection to server failed: %s:%ld, before the "
	                    "greeting: %s; %s",
	                    s->host, s->port, why, port_hint(s));
}

static int fail_auth(struct sc_session *s, const char *why, struct sc_error *err)
{
	const char *reply = s->tr.auth_reply ? s->tr.auth_reply : s->tr.last_reply;
	if (!s->tr.auth_sent) {
		char *mechs = core_transcript_auth_mechs(&s->tr);
		sc_error_set(err, SC_EAUTH,
		             "AUTH failed: no usable SASL mechanism (%s); the server "
		             "offers %s. Set auth_mechanism to one it offers, or check auth_type",
		             why, mechs ? mechs : "none");
		free(mechs);
		return SC_EAUTH;
	}
	const char *hint = "";
	if (reply && (strstr(reply, "5.7.139") || strstr(reply, "SmtpClientAuthentication")))
		hint = ". SMTP AUTH is disabled for this mailbox or tenant: enable it in Exchange "
		       "Online";
	else if (reply && strstr(reply, "5.7.30"))
		hint = ". The server no longer accepts passwords: use OAuth";
	return sc_error_set(err, SC_EAUTH, "AUTH failed: the server refused the credentials: %s%s",
	                    reply ? reply : why, hint);
}

/* A reply that refuses the stage's command: "<stage> refused: <reply>". */
static int fail_refused(struct sc_session *s, struct sc_error *err)
{
	const struct core_transcript *tr = &s->tr;
	const char *hint = retry_hint(s, REPLIED);
	switch (tr->stage) {
	case STAGE_EHLO:
		return sc_error_set(err, SC_EPROTO,
		                    "EHLO refused: %s. Set ehlo_name to a name the "
		                    "server accepts%s%s",
		                    tr->answer, *hint ? "; " : "", hint);
	case STAGE_STARTTLS:
		return sc_error_set(err, SC_ETLS,
		                    "STARTTLS failed: the server offered STARTTLS but "
		                    "replied \"%s\"; nothing else was sent. %s",
		                    tr->answer,
		                    *hint ? hint
		                          : "Ask its administrator to fix TLS, or use ssl_config "
		                            "\"SSL\" if it offers TLS on port 465");
	case STAGE_MAIL:
		if (tr->last_code == 530)
			return sc_error_set(
			    err, SC_ESEND,
			    "MAIL FROM refused: %s. The server requires "
			    "authentication: configure Basic (username, password) or OAuth",
			    tr->answer);
		return sc_error_set(err, SC_ESEND, "MAIL FROM refused: %s%s%s", tr->answer,
		                    *hint ? ". " : "", hint);
	case STAGE_DATA:
		return sc_error_set(err, SC_ESEND,
		                    "The server refused the message at DATA: %s; "
		                    "nothing was delivered%s%s",
		                    tr->answer, *hint ? ". " : "", hint);
	case STAGE_BODY:
		return sc_error_set(err, SC_ESEND,
		                    "The server refused the message at the end of data: "
		                    "%s%s%s",
		                    tr->answer,
		                    tr->last_code == 552 ? ". It is larger than the server accepts"
		                    : *hint              ? ". "
		                                         : "",
		                    tr->last_code == 552 ? "" : hint);
	default:
		return sc_error_set(err, SC_EPROTO, "%s: the server replied \"%s\"%s%s",
		                    core_stage_name(tr->stage), tr->answer, *hint ? ". " : "",
		                    hint);
	}
}

/* No reply: a close, a timeout, a libcurl limit. */
static int fail_unanswered(struct sc_session *s, enum outcome o, const char *why,
                           struct sc_error *err)
{
	const struct core_transcript *tr = &s->tr;
	char *what = what_happened(s, o, why);
	const char *w = what ? what : why;
	const char *hint = retry_hint(s, o);
	int r;
	switch (tr->stage) {
	case STAGE_EHLO:
		if (o == TOO_LARGE)
			r = sc_error_set(
			    err, SC_EPROTO,
			    "EHLO: the server's EHLO reply is larger than "
			    "libcurl accepts (%s); nothing was sent. Ask its administrator to "
			    "shorten the EHLO reply, or use another server",
			    why);
		else
			r = sc_error_set(err, SC_EPROTO, "EHLO: %s; nothing was sent. %s", w, hint);
		break;
	case STAGE_STARTTLS:
		r = sc_error_set(err, SC_ETLS, "STARTTLS failed: %s; nothing else was sent. %s", w,
		                 hint);
		break;
	case STAGE_RCPT:
		r = sc_error_set(err, SC_EPROTO, "RCPT TO <%s>: %s; the message was not sent. %s",
		                 tr->pending_rcpt ? tr->pending_rcpt : "?", w, hint);
		break;
	case STAGE_BODY:
		r = sc_error_set(
		    err, SC_EPROTO,
		    "end of data: %s, so it is unknown whether the message "
		    "was delivered; check before sending it again (a retry may deliver it "
		    "twice). %s",
		    w, hint);
		break;
	case STAGE_MAIL:
	case STAGE_DATA:
	case STAGE_AUTH:
	default:
		r = sc_error_set(err, SC_EPROTO, "%s: %s; %s. %s", core_stage_name(tr->stage), w,
		                 tr->stage >= STAGE_MAIL ? "the message was not sent"
		                                         : "nothing was sent",
		                 hint);
		break;
	}
	free(what);
	return r;
}

int core_session_fail(struct sc_session *s, CURLcode rc, struct sc_error *err)
{
	const char *why = s->errbuf[0] ? s->errbuf : curl_easy_strerror(rc);
	enum outcome o = outcome_of(s, rc, why);
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
		return fail_connect(s, rc, why, err);
	case CURLE_USE_SSL_FAILED:
		if (s->tr.stage == STAGE_STARTTLS)
			break; /* offered, then refused: its reply says why */
		return sc_error_set(
		    err, SC_ETLS,
		    "STARTTLS failed: the server at %s:%ld did not offer STARTTLS, which "
		    "ssl_config \"StartTLS\" requires; nothing else was sent. If it expects TLS "
		    "from the first byte use ssl_config \"SSL\"; use \"None\" only on a trusted "
		    "network",
		    s->host, s->port);
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
		return sc_error_set(err, SC_ETLS, "TLS failed with %s:%ld: %s. %s", s->host,
		                    s->port, why, tls_hint(s, why));
	case CURLE_LOGIN_DENIED:
		return fail_auth(s, why, err);
	default:
		break;
	}
	if (!s->tr.connected)
		return fail_connect(s, rc, why, err);
	if (s->tr.stage == STAGE_CONNECT)
		return fail_greeting(s, rc, o, why, err);
	if (o == REPLIED)
		return fail_refused(s, err);
	return fail_unanswered(s, o, why, err);
}
