/* Unit tests for plugins/actions/send_rawemail/rawmsg.c: the `\n` rule,
 * where fields start and end (folds, line-ending styles), unfolded values,
 * Bcc removal byte for byte, and errors that name the line. */
#include "core.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static char *expand(const char *in)
{
	size_t len = strlen(in);
	char *t = strdup(in);
	assert_non_null(t);
	t[sc_rawmsg_expand_newlines(t, len)] = '\0';
	return t;
}

static void newlines_only_without_real_ones(void **state)
{
	(void)state;
	char *t = expand("From: a@x\\nTo: b@y\\n\\nC:\\\\new");
	assert_string_equal(t, "From: a@x\nTo: b@y\n\nC:\\\n"
	                       "ew");
	free(t);
	t = expand("From: a@x\nTo: b@y\n\nC:\\new and \\n");
	assert_string_equal(t, "From: a@x\nTo: b@y\n\nC:\\new and \\n");
	free(t);
	t = expand("Subject: x\r\\nnot expanded: a bare CR is a line break too");
	assert_string_equal(t, "Subject: x\r\\nnot expanded: a bare CR is a line break too");
	free(t);
	t = expand("trailing backslash \\");
	assert_string_equal(t, "trailing backslash \\");
	free(t);
	t = expand("");
	assert_string_equal(t, "");
	free(t);
}

static void fields_and_folds(void **state)
{
	(void)state;
	const char *t = "From: a@x\r\nTo: b@y,\r\n c@z\r\nX-Empty:\nSubject : hi\r\n\r\nbody\nmore";
	struct sc_rawmsg m;
	struct sc_error err = SC_ERROR_INIT;
	assert_int_equal(sc_rawmsg_parse(t, strlen(t), &m, &err), SC_OK);
	assert_int_equal(m.n, 4);
	assert_true(sc_rawmsg_is(&m, 0, "FROM"));
	assert_true(sc_rawmsg_is(&m, 3, "subject"));
	assert_int_equal(m.f[1].line, 2);
	assert_int_equal(m.f[2].line, 4);
	assert_int_equal(m.f[3].line, 5);
	assert_int_equal(sc_rawmsg_find(&m, "to", 0), 1);
	assert_int_equal(sc_rawmsg_find(&m, "to", 2), m.n);
	size_t len = 0;
	char *v = sc_rawmsg_value(&m, 1, &len);
	assert_string_equal(v, "b@y, c@z");
	assert_int_equal(len, 8);
	free(v);
	v = sc_rawmsg_value(&m, 2, NULL);
	assert_string_equal(v, "");
	free(v);
	v = sc_rawmsg_value(&m, 3, NULL);
	assert_string_equal(v, "hi");
	free(v);
	assert_string_equal(t + m.body, "body\nmore");
	assert_false(m.header_8bit);
	assert_false(m.body_8bit);
	sc_rawmsg_free(&m);
}

static void bare_cr_and_no_body(void **state)
{
	(void)state;
	const char *t = "From: a@x\rTo: b@y\r\tc@z";
	struct sc_rawmsg m;
	struct sc_error err = SC_ERROR_INIT;
	assert_int_equal(sc_rawmsg_parse(t, strlen(t), &m, &err), SC_OK);
	assert_int_equal(m.n, 2);
	assert_int_equal(m.body, strlen(t));
	char *v = sc_rawmsg_value(&m, 1, NULL);
	assert_string_equal(v, "b@y\tc@z");
	free(v);
	sc_rawmsg_free(&m);
}

static void eight_bit(void **state)
{
	(void)state;
	const char *t = "Subject: Gr\xc3\xbc\xc3\x9f"
	                "e\n\nascii";
	struct sc_rawmsg m;
	struct sc_error err = SC_ERROR_INIT;
	assert_int_equal(sc_rawmsg_parse(t, strlen(t), &m, &err), SC_OK);
	assert_true(m.header_8bit);
	assert_false(m.body_8bit);
	sc_rawmsg_free(&m);
	t = "Subject: x\n\n\xe6\x9d\xb1";
	assert_int_equal(sc_rawmsg_parse(t, strlen(t), &m, &err), SC_OK);
	assert_false(m.header_8bit);
	assert_true(m.body_8bit);
	sc_rawmsg_free(&m);
}

static int drop_bcc(const struct sc_rawmsg *m, size_t i, void *arg)
{
	(void)arg;
	return sc_rawmsg_is(m, i, "Bcc");
}

static void without_bcc(void **state)
{
	(void)state;
	const char *t =
	    "Bcc: first@x\nFrom: a@x\nBcc: b@y\nbcc: c@y,\n d@y\r\n\tf@y\nTo: e@z\n\nBcc: body@x\n";
	struct sc_rawmsg m;
	struct sc_error err = SC_ERROR_INIT;
	assert_int_equal(sc_rawmsg_parse(t, strlen(t), &m, &err), SC_OK);
	size_t len = 0;
	char *o = sc_rawmsg_without(&m, drop_bcc, NULL, &len);
	assert_string_equal(o, "From: a@x\nTo: e@z\n\nBcc: body@x\n");
	assert_int_equal(len, strlen(o));
	free(o);
	sc_rawmsg_free(&m);
}

/* Issue 8: a bare CR ends the line before Bcc and a bare LF is the empty
 * line after it. Removed from the text as given, the CR and the LF became
 * one CRLF and the header/body separator vanished; made CRLF first (what
 * send rawemail does), the separator survives. */
static void without_bcc_keeps_the_separator(void **state)
{
	(void)state;
	const char *t = "From: a@x\r\nTo: b@y\rBcc: c@z\r\n\nX-Body: not a header\r\n";
	struct sc_buf b = {0};
	assert_int_equal(sc_buf_add_crlf(&b, t, strlen(t)), SC_OK);
	assert_string_equal(b.p,
	                    "From: a@x\r\nTo: b@y\r\nBcc: c@z\r\n\r\nX-Body: not a header\r\n");
	struct sc_rawmsg m;
	struct sc_error err = SC_ERROR_INIT;
	assert_int_equal(sc_rawmsg_parse(b.p, b.len, &m, &err), SC_OK);
	assert_int_equal(m.n, 3);
	size_t len = 0;
	char *o = sc_rawmsg_without(&m, drop_bcc, NULL, &len);
	assert_string_equal(o, "From: a@x\r\nTo: b@y\r\n\r\nX-Body: not a header\r\n");
	sc_rawmsg_free(&m);
	/* and parsed again (as message.c does), the body is still the body */
	assert_int_equal(sc_rawmsg_parse(o, len, &m, &err), SC_OK);
	assert_int_equal(m.n, 2);
	assert_int_equal(sc_rawmsg_find(&m, "X-Body", 0), m.n);
	sc_rawmsg_free(&m);
	free(o);
	sc_buf_free(&b);
}

/* RFC 5322 §2.1.1: 998 octets per line, headers and body alike, checked
 * before anything is sent, with the line named. */
static void lines_over_998_are_refused(void **state)
{
	(void)state;
	struct {
		size_t at, len;
		const char *want;
	} cases[] = {
	    {0, 998, NULL},
	    {0, 999, "line 2 is 999 octets long"},
	    {1, 998, NULL},
	    {1, 999, "line 4 is 999 octets long"},
	    {2, 5000, "line 5 is 5000 octets long"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct sc_buf b = {0};
		assert_int_equal(sc_buf_str(&b, "From: a@x\r\n"), SC_OK);
		if (cases[i].at == 0) { /* a header line: "X: " + value */
			assert_int_equal(sc_buf_str(&b, "X: "), SC_OK);
			for (size_t k = 3; k < cases[i].len; k++)
				sc_buf_add(&b, "h", 1);
			sc_buf_str(&b, "\r\n\r\nbody\r\n");
		} else {
			sc_buf_str(&b, "\r\nbody\r\n");
			if (cases[i].at == 2)
				sc_buf_str(&b, "more\r\n");
			for (size_t k = 0; k < cases[i].len; k++)
				sc_buf_add(&b, "b", 1);
			sc_buf_str(&b, cases[i].at == 2 ? "" : "\r\n");
		}
		struct sc_rawmsg m;
		struct sc_error err = SC_ERROR_INIT;
		int rc = sc_rawmsg_parse(b.p, b.len, &m, &err);
		if (!cases[i].want) {
			assert_int_equal(rc, SC_OK);
		} else {
			assert_int_equal(rc, SC_EINPUT);
			if (!strstr(err.message, cases[i].want) || !strstr(err.message, "998"))
				fail_msg("case %zu: \"%s\" not in \"%s\"", i, cases[i].want,
				         err.message);
		}
		sc_error_clear(&err);
		sc_rawmsg_free(&m);
		sc_buf_free(&b);
	}
}

struct err_case {
	const char *in;
	const char *want; /* substring of the message */
};

static const struct err_case err_cases[] = {
    {"From: a@x\nnot a header\n\nbody", "line 2 (\"not a header\") is not a header field"},
    {" From: a@x\n\nbody", "line 1 (\" From: a@x\") starts with a blank"},
    {"From: a@x\n \t\n\nbody", "line 2 (\" \\x09\") has only blanks"},
    {": no name\n\n", "line 1 (\": no name\")"},
    {"From: a@x\nSu\x01ject: x\n", "line 2 (\"Su\\x01ject: x\")"},
    {"From: a@x\nSübject: x\n", "line 2 (\"Sübject: x\")"},
    {"From: a@x\n\xff\xfe: x\n", "line 2 (\"\\xff\\xfe: x\")"},
    {"From: a@x\r\n\r\n", NULL}, /* fine: an empty body */
};

static void errors_name_the_line(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof err_cases / sizeof err_cases[0]; i++) {
		const struct err_case *c = &err_cases[i];
		struct sc_rawmsg m;
		struct sc_error err = SC_ERROR_INIT;
		int rc = sc_rawmsg_parse(c->in, strlen(c->in), &m, &err);
		if (!c->want) {
			assert_int_equal(rc, SC_OK);
		} else {
			assert_int_equal(rc, SC_EINPUT);
			assert_non_null(err.message);
			if (!strstr(err.message, c->want))
				fail_msg("case %zu: \"%s\" not in \"%s\"", i, c->want, err.message);
		}
		sc_error_clear(&err);
		sc_rawmsg_free(&m);
	}
}

static void long_line_is_quoted_short(void **state)
{
	(void)state;
	char t[400];
	memset(t, 'x', sizeof t - 1);
	t[sizeof t - 1] = '\0';
	struct sc_rawmsg m;
	struct sc_error err = SC_ERROR_INIT;
	assert_int_equal(sc_rawmsg_parse(t, strlen(t), &m, &err), SC_EINPUT);
	assert_true(strlen(err.message) < 250);
	assert_non_null(strstr(err.message, "...\")"));
	sc_error_clear(&err);
	sc_rawmsg_free(&m);
}

static void nul_bytes_are_data(void **state)
{
	(void)state;
	static const char t[] = "To: a@x\0b\n\nbody\0";
	struct sc_rawmsg m;
	struct sc_error err = SC_ERROR_INIT;
	assert_int_equal(sc_rawmsg_parse(t, sizeof t - 1, &m, &err), SC_OK);
	size_t len = 0;
	char *v = sc_rawmsg_value(&m, 0, &len);
	assert_int_equal(len, 5);
	assert_memory_equal(v, "a@x\0b", 5);
	free(v);
	sc_rawmsg_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(newlines_only_without_real_ones),
	    cmocka_unit_test(fields_and_folds),
	    cmocka_unit_test(bare_cr_and_no_body),
	    cmocka_unit_test(eight_bit),
	    cmocka_unit_test(without_bcc),
	    cmocka_unit_test(without_bcc_keeps_the_separator),
	    cmocka_unit_test(lines_over_998_are_refused),
	    cmocka_unit_test(errors_name_the_line),
	    cmocka_unit_test(long_line_is_quoted_short),
	    cmocka_unit_test(nul_bytes_are_data),
	};
	return cmocka_run_group_tests_name("rawmsg", tests, NULL, NULL);
}
