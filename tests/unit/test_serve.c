/* Unit tests for serve's protocol parts (core/serve/): the command parser,
 * the DATA reader and the session state machine, driven without sockets.
 * The integration tests (test_serve*.py) run the same over the network;
 * these pin the edge cases one by one. */
#include "data_reader.h"
#include "msgfile.h"
#include "../../core/serve/session.h" /* not core/smtp/session.h */
#include "smtp_cmd.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static int parse(const char *line, struct serve_cmd *c)
{
	const char *why = NULL;
	int code = serve_cmd_parse(line, strlen(line), c, &why);
	if (code)
		assert_non_null(why);
	return code;
}

static void mail_and_rcpt(void **state)
{
	(void)state;
	struct serve_cmd c;
	assert_int_equal(parse("MAIL FROM:<a@example.com> SIZE=12345 BODY=8BITMIME SMTPUTF8", &c),
	                 0);
	assert_int_equal(c.verb, SV_MAIL);
	assert_string_equal(c.path, "a@example.com");
	assert_true(c.has_size);
	assert_int_equal(c.size, 12345);
	assert_int_equal(c.body, SB_8BITMIME);
	assert_true(c.smtputf8);
	serve_cmd_clear(&c);
	assert_int_equal(parse("mail from: <>", &c), 0);
	assert_string_equal(c.path, "");
	serve_cmd_clear(&c);
	assert_int_equal(parse("RCPT TO:<@a.example,@b.example:u@c.example>", &c), 0);
	assert_string_equal(c.path, "u@c.example");
	serve_cmd_clear(&c);
	assert_int_equal(parse("RCPT TO:<\"two words\"@example.com>", &c), 0);
	assert_string_equal(c.path, "\"two words\"@example.com");
	serve_cmd_clear(&c);
	assert_int_equal(parse("RCPT TO:<Postmaster>", &c), 0);
	serve_cmd_clear(&c);
}

static void command_errors(void **state)
{
	(void)state;
	struct serve_cmd c;
	assert_int_equal(parse("MAIL FROM:a@example.com", &c), 501);
	assert_int_equal(parse("MAIL FROM:<a@example.com", &c), 501);
	assert_int_equal(parse("MAIL FROM:<a b@example.com>", &c), 501);
	assert_int_equal(parse("MAIL FROM:<nodomain>", &c), 501);
	assert_int_equal(parse("RCPT TO:<>", &c), 501);
	assert_int_equal(parse("MAIL FROM:<a@example.com> SIZE=12x", &c), 501);
	assert_int_equal(parse("MAIL FROM:<a@example.com> BODY=BINARYMIME", &c), 555);
	assert_int_equal(parse("MAIL FROM:<a@example.com> RET=FULL", &c), 555);
	assert_int_equal(parse("RCPT TO:<a@example.com> NOTIFY=NEVER", &c), 555);
	assert_int_equal(parse("DATA now", &c), 501);
	assert_int_equal(parse("EHLO", &c), 501);
	assert_int_equal(parse("XYZZY", &c), 500);
	const char nul[] = "NOOP a\0b";
	const char *why;
	assert_int_equal(serve_cmd_parse(nul, sizeof nul - 1, &c, &why), 500);
	char long_path[400] = "MAIL FROM:<";
	memset(long_path + 11, 'a', 300);
	memcpy(long_path + 311, "@example.com>", sizeof "@example.com>");
	assert_int_equal(parse(long_path, &c), 501);
	assert_null(c.path);
}

/* Feed `in` in chunks of `chunk` bytes; returns the status and sets *used. */
static enum serve_data_status feed(const char *in, size_t n, size_t chunk, struct sc_buf *out,
                                   size_t *used, struct serve_data_reader *r)
{
	size_t off = 0;
	while (off < n) {
		size_t len = n - off < chunk ? n - off : chunk, u = 0;
		enum serve_data_status st = serve_data_feed(r, in + off, len, &u, out);
		off += u;
		if (st != SD_MORE) {
			*used = off;
			return st;
		}
	}
	*used = off;
	return SD_MORE;
}

static void data_unstuffing_and_end(void **state)
{
	(void)state;
	static const char in[] = "A\r\n..B\r\n.C\r\n\r\n.\r\nMAIL FROM:<x@y>\r\n";
	for (size_t chunk = 1; chunk <= sizeof in; chunk++) {
		struct serve_data_reader r;
		struct sc_buf out = {0};
		size_t used = 0;
		serve_data_init(&r, 0, 0);
		assert_int_equal(feed(in, sizeof in - 1, chunk, &out, &used, &r), SD_END);
		assert_int_equal(used, strlen("A\r\n..B\r\n.C\r\n\r\n.\r\n"));
		assert_string_equal(out.p, "A\r\n.B\r\nC\r\n\r\n");
		assert_int_equal(r.error, SD_OK);
		sc_buf_free(&out);
	}
	struct serve_data_reader r;
	struct sc_buf out = {0};
	size_t used;
	serve_data_init(&r, 0, 0);
	assert_int_equal(feed(".\r\n", 3, 3, &out, &used, &r), SD_END); /* empty message */
	assert_int_equal(out.len, 0);
	sc_buf_free(&out);
}

static void data_smuggling_markers_fatal(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		enum serve_data_error e;
	} cases[] = {
	    {"hi\n.\nMAIL FROM:<a@b>\r\n", SD_BARE_LF},
	    {"hi\r.\rMAIL FROM:<a@b>\r\n", SD_BARE_CR},
	    {"hi\n.\r\n", SD_BARE_LF},
	    {"hi\r\n.\n", SD_BARE_LF},
	    {"hi\r\n.\rx", SD_BARE_CR},
	    {"a\rb\r\n.\r\n", SD_BARE_CR},
	    {"a\0b\r\n.\r\n", SD_NUL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t n = strlen(cases[i].in);
		if (cases[i].e == SD_NUL)
			n = 9;
		struct serve_data_reader r;
		struct sc_buf out = {0};
		size_t used;
		serve_data_init(&r, 0, 0);
		assert_int_equal(feed(cases[i].in, n, 2, &out, &used, &r), SD_FATAL);
		assert_int_equal(r.error, cases[i].e);
		assert_true(used < n);
		sc_buf_free(&out);
	}
}

static void data_limits_soft(void **state)
{
	(void)state;
	struct serve_data_reader r;
	struct sc_buf out = {0};
	size_t used;
	serve_data_init(&r, 10, 0);
	const char *in = "0123456789abc\r\n.\r\n";
	assert_int_equal(feed(in, strlen(in), 4, &out, &used, &r), SD_END);
	assert_int_equal(r.error, SD_TOO_BIG);
	assert_true(out.len <= 10);
	assert_int_equal(r.size, 15);
	sc_buf_free(&out);
	serve_data_init(&r, 0, 1000);
	struct sc_buf line = {0};
	for (int i = 0; i < 1100; i++)
		sc_buf_add(&line, "x", 1);
	sc_buf_str(&line, "\r\n.\r\n");
	assert_int_equal(feed(line.p, line.len, 100, &out, &used, &r), SD_END);
	assert_int_equal(r.error, SD_LINE_LONG);
	sc_buf_free(&out);
	sc_buf_free(&line);
}

/* ------------------------------------------------------------------ */

static struct serve_config cfg;
static char spool[] = "/tmp/test_serve.XXXXXX";

static int setup(void **state)
{
	(void)state;
	memset(&cfg, 0, sizeof cfg);
	assert_non_null(mkdtemp(spool));
	cfg.domain = "unit.example";
	cfg.spool_dir = spool;
	cfg.max_size = 1000;
	cfg.max_rcpt = 2;
	cfg.line_length = 1000;
	cfg.max_errors = 5;
	cfg.t_command = 1000;
	cfg.t_data = 1000;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rmdir(spool);
	return 0;
}

static size_t say(struct serve_session *s, const char *in, struct sc_buf *out)
{
	out->len = 0;
	if (out->p)
		out->p[0] = '\0';
	return serve_session_input(s, in, strlen(in), out);
}

static void session_dialogue(void **state)
{
	(void)state;
	struct sc_buf out = {0};
	struct serve_session *s = serve_session_new(&cfg, "127.0.0.1", 1234, 0, NULL);
	assert_non_null(s);
	serve_session_greet(s, &out);
	assert_string_equal(out.p, "220 unit.example ESMTP smtp-connector ready\r\n");
	say(s, "MAIL FROM:<a@example.com>\r\n", &out);
	assert_memory_equal(out.p, "503 ", 4);
	say(s, "EHLO c.example\r\n", &out);
	assert_non_null(strstr(out.p, "250-SIZE 1000\r\n"));
	assert_null(strstr(out.p, "STARTTLS"));
	/* pipelined: everything up to the end of DATA, then the session waits */
	const char *burst = "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
	                    "RCPT TO:<c@example.com>\r\nRCPT TO:<d@example.com>\r\nDATA\r\n"
	                    "Subject: t\r\n\r\nbody\r\n.\r\nNOOP\r\n";
	size_t used = say(s, burst, &out);
	assert_int_equal(used, strlen(burst) - strlen("NOOP\r\n"));
	assert_int_equal(s->want, SW_DELIVER);
	assert_non_null(strstr(out.p, "452 4.5.3"));
	assert_non_null(strstr(out.p, "354 "));
	assert_int_equal(serve_session_timeout(s), 0);
	struct sc_inbound m;
	serve_session_inbound(s, &m);
	assert_string_equal(m.mail_from, "a@example.com");
	assert_int_equal(m.nrcpt, 2);
	assert_int_equal(m.size, strlen("Subject: t\r\n\r\nbody\r\n"));
	assert_int_equal(access(m.path, R_OK), 0);
	char *path = strdup(m.path);
	out.len = 0;
	serve_session_delivered(s, SC_SINK_ACCEPT, NULL, NULL, &out);
	assert_memory_equal(out.p, "250 2.0.0 OK: queued as ", 24);
	/* a delivered message's file is kept for the next message to overwrite
	 * (core/serve/msgfile.c): the sink has its own copy */
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(s->want, SW_NONE);
	say(s, "NOOP\r\n", &out);
	assert_string_equal(out.p, "250 2.0.0 OK\r\n");
	say(s, "QUIT\r\n", &out);
	assert_int_equal(s->want, SW_CLOSE);
	serve_session_free(s);
	serve_msgfile_clear(); /* as the listener does at exit */
	assert_int_not_equal(access(path, F_OK), 0);
	free(path);
	sc_buf_free(&out);
}

/* The whole file as a string (test files are small). */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	static char buf[256];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* A delivered message's file is kept with its descriptor and reused for
 * the next message, cut to it; one a sink renamed is the sink's. */
static void msgfile_reuse(void **state)
{
	(void)state;
	struct serve_msgfile f;
	assert_int_equal(serve_msgfile_open(spool, "m1", &f), 0);
	assert_int_equal(write(f.fd, "a longer first message", 22), 22);
	assert_int_equal(serve_msgfile_cut(&f, 22), 0);
	char *first = strdup(f.path);
	serve_msgfile_release(&f, 1);
	assert_null(f.path);
	assert_int_equal(serve_msgfile_open(spool, "m2", &f), 0);
	assert_string_equal(f.path, first); /* the kept one */
	assert_int_equal(write(f.fd, "second", 6), 6);
	assert_int_equal(serve_msgfile_cut(&f, 6), 0);
	assert_string_equal(slurp(f.path), "second");
	/* a sink renames it: the file is its own, never written again */
	char *taken = sc_asprintf("%s/taken", spool);
	assert_int_equal(rename(f.path, taken), 0);
	serve_msgfile_release(&f, 1);
	assert_int_equal(serve_msgfile_open(spool, "m3", &f), 0);
	assert_string_not_equal(f.path, first);
	assert_int_equal(write(f.fd, "third", 5), 5);
	assert_int_equal(serve_msgfile_cut(&f, 5), 0);
	assert_string_equal(slurp(taken), "second");
	/* not delivered: the file goes */
	char *third = strdup(f.path);
	serve_msgfile_release(&f, 0);
	assert_int_not_equal(access(third, F_OK), 0);
	unlink(taken);
	serve_msgfile_clear();
	free(first), free(taken), free(third);
}

static void session_smuggling_closes(void **state)
{
	(void)state;
	struct sc_buf out = {0};
	struct serve_session *s = serve_session_new(&cfg, "127.0.0.1", 1, 0, NULL);
	say(s, "EHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n", &out);
	say(s, "x\n.\nMAIL FROM:<evil@example.com>\r\n", &out);
	assert_non_null(strstr(out.p, "550 5.5.2"));
	assert_int_equal(s->want, SW_CLOSE);
	assert_null(s->file.path); /* the spool file is gone */
	serve_session_free(s);
	sc_buf_free(&out);
}

static void session_starttls_and_auth(void **state)
{
	(void)state;
	struct serve_config c2 = cfg;
	struct serve_user u = {0};
	c2.tls_cert = "cert.pem";
	c2.nusers = 1;
	c2.users = &u;
	c2.auth_required = 1;
	struct sc_buf out = {0};
	struct serve_session *s = serve_session_new(&c2, "127.0.0.1", 1, 0, NULL);
	say(s, "EHLO c\r\n", &out);
	assert_non_null(strstr(out.p, "250-STARTTLS"));
	assert_null(strstr(out.p, "AUTH"));
	say(s, "AUTH PLAIN AGFsaWNlAHB3\r\n", &out);
	assert_memory_equal(out.p, "538 ", 4);
	size_t used = say(s, "STARTTLS\r\nMAIL FROM:<a@example.com>\r\n", &out);
	assert_int_equal(used, strlen("STARTTLS\r\n"));
	assert_int_equal(s->want, SW_STARTTLS);
	serve_session_tls_started(s, "TLSv1.3");
	say(s, "MAIL FROM:<a@example.com>\r\n", &out);
	assert_memory_equal(out.p, "503 ", 4); /* EHLO again first */
	say(s, "EHLO c\r\n", &out);
	assert_non_null(strstr(out.p, "250-AUTH PLAIN LOGIN"));
	say(s, "MAIL FROM:<a@example.com>\r\n", &out);
	assert_memory_equal(out.p, "530 ", 4);
	say(s, "AUTH PLAIN AGFsaWNlAHB3\r\n", &out); /* \0alice\0pw */
	assert_int_equal(s->want, SW_AUTH);
	assert_string_equal(s->auth_name, "alice");
	assert_int_equal(s->auth_pass_len, 2);
	out.len = 0;
	serve_session_auth_done(s, 1, &out);
	assert_memory_equal(out.p, "235 ", 4);
	assert_null(s->auth_pass);
	say(s, "MAIL FROM:<a@example.com>\r\n", &out);
	assert_memory_equal(out.p, "250 ", 4);
	serve_session_free(s);
	s = serve_session_new(&c2, "127.0.0.1", 1, 1, "TLSv1.3");
	say(s, "EHLO c\r\nAUTH LOGIN\r\n", &out);
	assert_non_null(strstr(out.p, "334 VXNlcm5hbWU6"));
	say(s, "Ym9i\r\n", &out);
	assert_string_equal(out.p, "334 UGFzc3dvcmQ6\r\n");
	say(s, "c2VjcmV0\r\n", &out);
	assert_int_equal(s->want, SW_AUTH);
	out.len = 0;
	serve_session_auth_done(s, 0, &out);
	assert_memory_equal(out.p, "535 5.7.8", 9);
	serve_session_free(s);
	sc_buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(mail_and_rcpt),
	    cmocka_unit_test(command_errors),
	    cmocka_unit_test(data_unstuffing_and_end),
	    cmocka_unit_test(data_smuggling_markers_fatal),
	    cmocka_unit_test(data_limits_soft),
	    cmocka_unit_test(session_dialogue),
	    cmocka_unit_test(msgfile_reuse),
	    cmocka_unit_test(session_smuggling_closes),
	    cmocka_unit_test(session_starttls_and_auth),
	};
	return cmocka_run_group_tests_name("serve", tests, setup, teardown);
}
