// clang-format off
// fuzz-sources: core/serve/session.c core/serve/msgfile.c core/serve/smtp_cmd.c core/runtime/utf8.c core/serve/data_reader.c core/serve/users.c core/runtime/buf.c core/runtime/error.c core/runtime/log.c
// clang-format on
/* libFuzzer target for serve's whole session state machine
 * (core/serve/session.c with the command parser and the DATA reader),
 * fed the way the listener feeds it: arbitrary bytes in chunks, and each
 * `want` answered at once (deliveries accepted or refused, AUTH checks
 * failed or passed, STARTTLS "completed"). Build as the others, plus
 * -Icore/serve and -lcrypto; serve_log and serve_new_id are stubbed here
 * (quiet and deterministic).
 *
 * Checks: no crash or leak; every reply line is "ddd" + " " or "-" and
 * ends in CRLF with no other CR or LF (a client's bytes never inject a
 * reply line); input is taken only while nothing is wanted; a message
 * handed over has a readable file of the size announced and envelope
 * paths free of CR, LF and NUL; after SW_CLOSE nothing more is read. */
#include "../../core/serve/session.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

void serve_log(const char *id, const char *fmt, ...)
{
	(void)id;
	(void)fmt;
}

void serve_new_id(char out[17])
{
	static unsigned long n;
	snprintf(out, 17, "%016lx", ++n);
}

static void check(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "fuzz_smtp_session: %s\n", what);
		abort();
	}
}

static void check_replies(const struct sc_buf *out)
{
	size_t i = 0;
	while (i < out->len) {
		const char *p = out->p + i;
		const char *end = memchr(p, '\n', out->len - i);
		check(end != NULL, "a reply ends in LF");
		size_t n = (size_t)(end - p);
		check(n >= 5 && p[n - 1] == '\r', "CRLF and a code");
		check(p[0] >= '2' && p[0] <= '5' && p[1] >= '0' && p[1] <= '9' && p[2] >= '0' &&
		          p[2] <= '9' && (p[3] == ' ' || p[3] == '-'),
		      "ddd then space or dash");
		check(!memchr(p, '\r', n - 1), "no CR inside a reply line");
		i += n + 1;
	}
}

static void check_inbound(const struct serve_session *s)
{
	struct sc_inbound m;
	serve_session_inbound(s, &m);
	struct stat st;
	check(stat(m.path, &st) == 0 && (size_t)st.st_size == m.size, "file of the size told");
	check(m.nrcpt > 0, "a recipient");
	check(!strpbrk(m.mail_from, "\r\n"), "clean sender");
	for (size_t i = 0; i < m.nrcpt; i++)
		check(!strpbrk(m.rcpt[i], "\r\n") && m.rcpt[i][0], "clean recipient");
}

static char spool[] = "/tmp/fuzz_smtp_session.XXXXXX";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct serve_config cfg;
	static struct serve_user user;
	if (!cfg.domain) {
		if (!mkdtemp(spool))
			abort();
		cfg.domain = "fuzz.example";
		cfg.spool_dir = spool;
		cfg.max_size = 4096;
		cfg.max_rcpt = 3;
		cfg.line_length = 1000;
		cfg.max_errors = 50;
		cfg.t_command = cfg.t_data = 1000;
		cfg.tls_cert = "unused.pem";
		cfg.users = &user;
		cfg.nusers = 1;
		cfg.allow_plaintext_auth = 1;
	}
	if (size < 2)
		return 0;
	size_t chunk = (size_t)(data[0] % 31) + 1;
	unsigned flags = data[1];
	const char *in = (const char *)data + 2;
	size_t n = size - 2, off = 0;
	struct sc_buf out = {0};
	struct serve_session *s = serve_session_new(&cfg, "127.0.0.1", 1, 0, NULL);
	check(s != NULL, "session");
	serve_session_greet(s, &out);
	unsigned k = 0;
	while (off < n && s->want != SW_CLOSE) {
		size_t len = n - off < chunk ? n - off : chunk;
		size_t used = serve_session_input(s, in + off, len, &out);
		check(used <= len, "used within the chunk");
		check(used == len || s->want != SW_NONE, "all taken unless something is wanted");
		off += used;
		switch (s->want) {
		case SW_DELIVER:
			check_inbound(s);
			serve_session_delivered(
			    s, (flags >> (k++ % 8)) & 1 ? SC_SINK_ACCEPT : SC_SINK_DEFER, NULL,
			    "fuzz", &out);
			break;
		case SW_AUTH:
			serve_session_auth_done(s, (flags >> (k++ % 8)) & 1, &out);
			break;
		case SW_STARTTLS:
			serve_session_tls_started(s, "TLSv1.3");
			break;
		default:
			break;
		}
	}
	check_replies(&out);
	serve_session_free(s);
	sc_buf_free(&out);
	return 0;
}
