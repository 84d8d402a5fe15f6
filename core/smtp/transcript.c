/* Following the SMTP conversation through libcurl's debug callback.
 * Replies arrive one line per call (HEADER_IN), commands whole
 * (HEADER_OUT), message data in chunks (DATA_OUT). With -v the
 * conversation is printed, with SASL exchanges redacted: the AUTH line's
 * initial response and every client line until AUTH's final reply. */
#include "transcript.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <poll.h>
#include <sys/socket.h>

const char *core_stage_name(enum core_stage s)
{
	static const char *const names[] = {"greeting", "EHLO",        "STARTTLS",  "TLS handshake",
	                                    "AUTH",     "command",     "MAIL FROM", "RCPT TO",
	                                    "DATA",     "end of data", "QUIT"};
	return names[s];
}

static void set_str(char **dst, const char *src)
{
	free(*dst);
	*dst = src ? strdup(src) : NULL;
}

void core_transcript_reset(struct core_transcript *tr)
{
	for (size_t i = 0; i < tr->nrcpts; i++) {
		free(tr->rcpts[i].addr);
		free(tr->rcpts[i].reply);
	}
	free(tr->rcpts);
	tr->rcpts = NULL;
	tr->nrcpts = 0;
	set_str(&tr->partial, NULL);
	set_str(&tr->last_reply, NULL);
	set_str(&tr->mail_reply, NULL);
	set_str(&tr->data_reply, NULL);
	set_str(&tr->auth_reply, NULL);
	set_str(&tr->pending_rcpt, NULL);
	set_str(&tr->answer, NULL);
	tr->stage = STAGE_CONNECT; /* until a command goes out */
	tr->connected = 0;
	tr->last_code = 0;
	tr->replies = 0;
	tr->body_bytes = 0;
	tr->in_auth = 0;
	tr->quitting = 0;
}

void core_transcript_free(struct core_transcript *tr)
{
	core_transcript_reset(tr);
	set_str(&tr->ehlo, NULL);
	set_str(&tr->greeting, NULL);
}

/* Copy of a line without its CRLF. */
static char *line_of(const char *data, size_t size)
{
	while (size && (data[size - 1] == '\n' || data[size - 1] == '\r'))
		size--;
	return strndup(data, size);
}

static void append_line(char **acc, const char *line)
{
	char *n = *acc ? sc_asprintf("%s\n%s", *acc, line) : strdup(line);
	if (n) {
		free(*acc);
		*acc = n;
	}
}

static void record_rcpt(struct core_transcript *tr, const char *reply, int code)
{
	struct core_rcpt_reply *n = realloc(tr->rcpts, (tr->nrcpts + 1) * sizeof *n);
	if (!n)
		return;
	tr->rcpts = n;
	n[tr->nrcpts].addr = tr->pending_rcpt;
	n[tr->nrcpts].reply = strdup(reply);
	n[tr->nrcpts].code = code;
	tr->nrcpts++;
	tr->pending_rcpt = NULL;
}

static void reply_done(struct core_transcript *tr, int code)
{
	char *reply = tr->partial;
	tr->partial = NULL;
	if (!reply)
		return;
	if (tr->quitting) {
		/* libcurl QUITs after a failed command; "221 Bye" must not
		 * replace the reply that explains the failure. */
		free(reply);
		return;
	}
	tr->replies++;
	set_str(&tr->answer, reply);
	free(tr->last_reply);
	tr->last_reply = reply;
	tr->last_code = code;
	switch (tr->stage) {
	case STAGE_CONNECT:
		set_str(&tr->greeting, reply);
		break;
	case STAGE_EHLO:
		if (code / 100 == 2)
			set_str(&tr->ehlo, reply);
		break;
	case STAGE_AUTH:
		if (code != 334) {
			tr->in_auth = 0;
			set_str(&tr->auth_reply, reply);
		}
		break;
	case STAGE_MAIL:
		set_str(&tr->mail_reply, reply);
		break;
	case STAGE_RCPT:
		if (tr->pending_rcpt)
			record_rcpt(tr, reply, code);
		break;
	case STAGE_BODY:
		set_str(&tr->data_reply, reply);
		break;
	case STAGE_DATA:
		if (code != 354)
			set_str(&tr->data_reply, reply);
		break;
	default:
		break;
	}
}

static void on_reply_line(struct core_transcript *tr, const char *data, size_t size)
{
	char *line = line_of(data, size);
	if (!line)
		return;
	if (tr->verbose) {
		if (tr->stage == STAGE_BODY && tr->body_bytes && !tr->partial)
			fprintf(stderr, "smtp> [%zu bytes of message data]\n", tr->body_bytes);
		fprintf(stderr, "smtp< %s\n", line);
	}
	append_line(&tr->partial, line);
	size_t n = strlen(line);
	int final = n < 4 || line[3] != '-';
	int code = (n >= 3 && isdigit((unsigned char)line[0])) ? atoi(line) : 0;
	free(line);
	if (final)
		reply_done(tr, code);
}

/* libcurl sends QUIT inside curl_easy_perform only when it closes the
 * connection after a failure, and then waits up to the whole response
 * timeout for "221" (the debug callback runs after the write). A server
 * that did not answer the last command will not answer QUIT either: shut
 * the read side now, so libcurl reads end-of-file at once. A server that
 * did answer gets quit_wait_ms. Only with exactly one socket open, so the
 * right connection is the one shut. */
static void bound_quit(struct core_transcript *tr, int answered)
{
	if (tr->sock == CURL_SOCKET_BAD || tr->nsock != 1)
		return;
	struct pollfd p = {.fd = tr->sock, .events = POLLIN};
	if (answered && tr->quit_wait_ms > 0 && poll(&p, 1, (int)tr->quit_wait_ms) > 0)
		return;
	shutdown(tr->sock, SHUT_RD);
}

static enum core_stage stage_of(const char *cmd)
{
	static const struct {
		const char *word;
		enum core_stage st;
	} map[] = {
	    {"EHLO", STAGE_EHLO}, {"HELO", STAGE_EHLO}, {"STARTTLS", STAGE_STARTTLS},
	    {"AUTH", STAGE_AUTH}, {"MAIL", STAGE_MAIL}, {"RCPT", STAGE_RCPT},
	    {"DATA", STAGE_DATA}, {"QUIT", STAGE_QUIT},
	};
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
		size_t n = strlen(map[i].word);
		if (strncasecmp(cmd, map[i].word, n) == 0 && (cmd[n] == ' ' || cmd[n] == '\0'))
			return map[i].st;
	}
	return STAGE_COMMAND;
}

/* "RCPT TO:<a@b> NOTIFY=..." -> "a@b". */
static char *rcpt_addr(const char *cmd)
{
	const char *lt = strchr(cmd, '<');
	const char *gt = lt ? strchr(lt, '>') : NULL;
	return gt ? strndup(lt + 1, (size_t)(gt - lt - 1)) : strdup(cmd);
}

static void on_command(struct core_transcript *tr, const char *data, size_t size)
{
	char *cmd = line_of(data, size);
	if (!cmd)
		return;
	tr->connected = 1;
	enum core_stage st = tr->in_auth ? STAGE_AUTH : stage_of(cmd);
	if (st == STAGE_QUIT) {
		/* keep the failing stage and its answer for the message */
		tr->quitting = 1;
		if (tr->verbose)
			fprintf(stderr, "smtp> %s\n", cmd);
		free(cmd);
		if (tr->in_transfer)
			bound_quit(tr, tr->answer != NULL);
		return;
	}
	set_str(&tr->answer, NULL);
	if (tr->in_auth) {
		/* A SASL continuation line: credentials. */
		if (tr->verbose)
			fprintf(stderr, "smtp> [redacted]\n");
		free(cmd);
		return;
	}
	tr->stage = st;
	if (tr->stage == STAGE_AUTH) {
		tr->auth_sent = 1;
		tr->in_auth = 1;
		if (tr->verbose) {
			/* "AUTH PLAIN <initial response>": keep the mechanism. */
			size_t keep = 5;
			while (cmd[keep] && cmd[keep] != ' ')
				keep++;
			fprintf(stderr, "smtp> %.*s%s\n", (int)keep, cmd,
			        cmd[keep] ? " [redacted]" : "");
		}
	} else {
		if (tr->stage == STAGE_RCPT) {
			free(tr->pending_rcpt);
			tr->pending_rcpt = rcpt_addr(cmd);
		}
		if (tr->stage == STAGE_EHLO)
			tr->auth_sent = 0; /* a new (or upgraded) session */
		if (tr->verbose)
			fprintf(stderr, "smtp> %s\n", cmd);
	}
	free(cmd);
}

int core_transcript_cb(CURL *curl, curl_infotype type, char *data, size_t size, void *arg)
{
	struct core_transcript *tr = arg;
	(void)curl;
	switch (type) {
	case CURLINFO_TEXT:
		if (tr->verbose && size && strncmp(data, "TLSv", 4) && strncmp(data, "ALPN", 4) &&
		    strncmp(data, "Curl_", 5))
			fprintf(stderr, "smtp* %.*s", (int)size, data);
		if (size > 8 && strncmp(data, "Re-using", 8) == 0)
			tr->connected = 1;
		if (size > 12 && strncmp(data, "Connected to", 12) == 0) {
			tr->connected = 1;
			tr->stage = STAGE_CONNECT;
			tr->auth_sent = 0;
			tr->quitting = 0;
		}
		break;
	case CURLINFO_HEADER_IN:
		on_reply_line(tr, data, size);
		break;
	case CURLINFO_HEADER_OUT:
		on_command(tr, data, size);
		break;
	case CURLINFO_DATA_OUT:
		if (tr->stage != STAGE_BODY)
			set_str(&tr->answer, NULL); /* the 354 is not the answer to the message */
		tr->stage = STAGE_BODY;
		tr->body_bytes += size;
		break;
	default:
		break;
	}
	return 0;
}

int core_transcript_offers(const struct core_transcript *tr, const char *ext)
{
	if (!tr->ehlo)
		return 0;
	size_t n = strlen(ext);
	const char *p = tr->ehlo;
	int first = 1;
	while (*p) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		/* Skip the greeting line of the EHLO reply (the server name). */
		if (!first && len > 4 && strncasecmp(p + 4, ext, n) == 0 &&
		    (len == 4 + n || p[4 + n] == ' ' || p[4 + n] == '='))
			return 1;
		first = 0;
		p += len + (eol ? 1 : 0);
	}
	return 0;
}

char *core_transcript_auth_mechs(const struct core_transcript *tr)
{
	if (!tr->ehlo)
		return NULL;
	const char *p = tr->ehlo;
	while (*p) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		if (len > 9 && strncasecmp(p + 4, "AUTH", 4) == 0 && (p[8] == ' ' || p[8] == '='))
			return strndup(p + 9, len - 9);
		p += len + (eol ? 1 : 0);
	}
	return NULL;
}
