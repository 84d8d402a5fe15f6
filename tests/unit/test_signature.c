/* Unit tests for the signature's canonical forms (core/message/
 * sig_canon.c) and its verdicts (signature.c): the DKIM "simple" body
 * digest against hashlib-computed vectors, fed whole and byte by byte;
 * the header section read as a stream; unfolded values; the tag parser's
 * refusals, each naming the tag; sign then verify, and what a change says. */
#include "signature.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void digest_hex(const char *body, size_t len, size_t step, char out[65])
{
	struct sig_body b;
	unsigned char md[32];
	assert_int_equal(sig_body_init(&b), 0);
	for (size_t at = 0; at < len; at += step)
		sig_body_update(&b, body + at, len - at < step ? len - at : step);
	assert_int_equal(sig_body_final(&b, md), 0);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* The canonical form of each body, given as the bytes SHA-256 must see. */
static void body_simple_canonicalisation(void **state)
{
	(void)state;
	static const struct {
		const char *body, *canon;
	} cases[] = {
	    {"", "\r\n"},
	    {"\r\n", "\r\n"},
	    {"\r\n\r\n\r\n", "\r\n"},
	    {"abc", "abc\r\n"},
	    {"abc\r\n", "abc\r\n"},
	    {"abc\r\n\r\n\r\n", "abc\r\n"},
	    {"a\r\n\r\nb\r\n\r\n", "a\r\n\r\nb\r\n"},
	    {"a\nb\n\n", "a\r\nb\r\n"},   /* bare LF is CRLF */
	    {"a\r", "a\r\r\n"},           /* a lone CR is not a line end */
	    {"a\r\rb", "a\r\rb\r\n"},     /* nor two */
	    {" \r\n \r\n", " \r\n \r\n"}, /* a line of blanks is not empty */
	    {"x\r\n.\r\n..", "x\r\n.\r\n..\r\n"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char want[65], got[65];
		digest_hex(cases[i].canon, strlen(cases[i].canon), 1 << 20, want);
		/* the canonical form is its own canonical form (a fixed point) */
		for (size_t step = 1; step <= 4; step++) {
			digest_hex(cases[i].body, strlen(cases[i].body), step, got);
			assert_string_equal(got, want);
		}
		digest_hex(cases[i].body, strlen(cases[i].body), 1 << 20, got);
		assert_string_equal(got, want);
	}
	/* RFC 6376 §3.4.3: the empty body hashes as CRLF (DKIM's well-known
	 * value, base64 frcCV1k9...): */
	char e[65];
	digest_hex("", 0, 1, e);
	assert_string_equal(e, "7eb70257593da06f682a3ddda54a9d260d4fc514f645237f5ca74b08f8da61a6");
}

static void reader_splits_and_bounds(void **state)
{
	(void)state;
	static const char msg[] = "From: a@x\nSubject: s\n\nbody\n";
	for (size_t step = 1; step <= sizeof msg; step++) {
		struct sig_reader r;
		assert_int_equal(sig_reader_init(&r), 0);
		for (size_t at = 0; at < sizeof msg - 1; at += step)
			sig_reader_feed(&r, msg + at,
			                sizeof msg - 1 - at < step ? sizeof msg - 1 - at : step);
		assert_true(r.in_body);
		assert_int_equal(r.head.len, strlen("From: a@x\r\nSubject: s\r\n\r\n"));
		assert_memory_equal(r.head.p, "From: a@x\r\nSubject: s\r\n\r\n", r.head.len);
		sig_reader_free(&r);
	}
	/* no empty line: every byte is header, the body is empty */
	struct sig_reader r;
	assert_int_equal(sig_reader_init(&r), 0);
	sig_reader_feed(&r, "From: a\r\n", 9);
	assert_false(r.in_body);
	sig_reader_free(&r);
	/* a header section over the bound is refused, not grown */
	assert_int_equal(sig_reader_init(&r), 0);
	char *big = malloc(SIG_HEADERS_MAX + 10);
	assert_non_null(big);
	memset(big, 'a', SIG_HEADERS_MAX + 10);
	sig_reader_feed(&r, big, SIG_HEADERS_MAX + 10);
	assert_true(r.too_big);
	assert_true(r.head.len <= SIG_HEADERS_MAX);
	struct sig_verdict v;
	sig_verify(&r, "k", &v);
	assert_int_equal(v.status, SIG_UNREADABLE);
	free(big);
	sig_reader_free(&r);
}

static void header_values_unfolded(void **state)
{
	(void)state;
	static const char head[] = "Subject : folded\r\n  subject \r\nTo: a\r\nto:\tb\r\n"
	                           " x: not a field\r\nX: 1\r\n\r\n";
	size_t n = 0, len = 0;
	char *v = sig_header_value(head, strlen(head), "subject", &n, &len);
	assert_int_equal(n, 1);
	assert_string_equal(v, "folded  subject");
	free(v);
	v = sig_header_value(head, strlen(head), "TO", &n, &len);
	assert_int_equal(n, 2);
	assert_string_equal(v, "a");
	free(v);
	v = sig_header_value(head, strlen(head), "cc", &n, &len);
	assert_null(v);
	assert_int_equal(n, 0);
}

static void tag_parser(void **state)
{
	(void)state;
	struct sig_tags t;
	char why[128];
	static const char ok[] = "v=2; a=hmac-sha256; t=17;\r\n bh=ab\r\n cd=;\r\n h=from:to;"
	                         " hh=1:2; b=ff;";
	assert_int_equal(sig_tags_parse(ok, strlen(ok), &t, why, sizeof why), 0);
	assert_string_equal(t.v, "2");
	assert_string_equal(t.bh, "abcd="); /* folds inside a value are dropped */
	assert_string_equal(t.h, "from:to");
	assert_string_equal(t.b, "ff");
	sig_tags_free(&t);
	static const struct {
		const char *in, *why;
	} bad[] = {
	    {"v=2; v=2", "malformed tag \"v\": it appears twice"},
	    {"v=2; x=1", "malformed tag \"x\": not a tag of this signature"},
	    {"v=2; junk", "malformed tag \"junk\": expected name=value"},
	    {"v=2; =1", "malformed tag \"=1\": expected name=value"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(sig_tags_parse(bad[i].in, strlen(bad[i].in), &t, why, sizeof why),
		                 -1);
		assert_string_equal(why, bad[i].why);
	}
	assert_int_equal(sig_tags_parse("v=2\0;", 5, &t, why, sizeof why), -1);
	assert_non_null(strstr(why, "NUL"));
}

/* ---- sign, then verify ------------------------------------------------ */

static const char *const fields[][2] = {{"from", "SOC <soc@corp.example>"},
                                        {"to", "a@corp.example"},
                                        {"subject", "=?utf-8?q?caf=C3=A9?=\r\n =?utf-8?q?_x?="},
                                        {"date", "Sun, 22 Nov 2026 01:00:00 +0000"},
                                        {"message-id", "<1@x>"}};

static char *value_of(void *arg, const char *name)
{
	(void)arg;
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
		if (!strcmp(fields[i][0], name))
			return strdup(fields[i][1]);
	return NULL;
}

static char *signed_message(const char *body)
{
	struct sig_body b;
	unsigned char bh[32];
	assert_int_equal(sig_body_init(&b), 0);
	sig_body_update(&b, body, strlen(body));
	assert_int_equal(sig_body_final(&b, bh), 0);
	struct sc_error err = {0};
	char *sig = sig_sign_v2("key", value_of, NULL, bh, 1796000000LL, &err);
	assert_non_null(sig);
	char *m = sc_asprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: %s\r\n"
	                      "X-SMTP-Connector-Signature: %s\r\n\r\n%s",
	                      fields[0][1], fields[1][1], fields[2][1], fields[3][1], fields[4][1],
	                      sig, body);
	free(sig);
	return m;
}

static void verdict_of(const char *m, const char *key, struct sig_verdict *v)
{
	struct sig_reader r;
	assert_int_equal(sig_reader_init(&r), 0);
	sig_reader_feed(&r, m, strlen(m));
	sig_verify(&r, key, v);
	sig_reader_free(&r);
}

static void replace(char *m, const char *from, const char *to)
{
	char *p = strstr(m, from);
	assert_non_null(p);
	assert_int_equal(strlen(from), strlen(to));
	memcpy(p, to, strlen(to));
}

static void sign_then_verify(void **state)
{
	(void)state;
	struct sig_verdict v;
	char *m = signed_message("line\r\n\r\n");
	verdict_of(m, "key", &v);
	assert_int_equal(v.status, SIG_VALID);
	assert_int_equal(v.version, 2);
	assert_true(v.t == 1796000000LL);
	assert_non_null(strstr(v.reason, "valid: v=2, signed 2026-"));
	verdict_of(m, "kez", &v);
	assert_int_equal(v.status, SIG_CHANGED);
	assert_non_null(strstr(v.reason, "HMAC mismatch: the key differs"));
	replace(m, "To: a@", "To: b@");
	verdict_of(m, "key", &v);
	assert_string_equal(v.reason, "header changed: to");
	replace(m, "line", "lime");
	verdict_of(m, "key", &v);
	assert_string_equal(v.reason, "header changed: to; body changed (bh mismatch)");
	free(m);
	m = signed_message("line\r\n");
	replace(m, "line", "lime");
	verdict_of(m, "key", &v);
	assert_string_equal(v.reason, "body changed (bh mismatch)");
	free(m);
	verdict_of("From: a\r\n\r\nx", "key", &v);
	assert_int_equal(v.status, SIG_NONE);
	verdict_of("X-SMTP-Connector-Signature: a=hmac-sha256\r\n\r\n", "key", &v);
	assert_string_equal(v.reason, "malformed tag \"v\": it is missing");
	verdict_of("X-SMTP-Connector-Signature: v=9\r\n\r\n", "key", &v);
	assert_int_equal(v.status, SIG_VERSION);
	verdict_of("X-SMTP-Connector-Signature: v=2; a=hmac-sha256; h=from:bcc; b=1; t=1; bh=x; "
	           "hh=1\r\n\r\n",
	           "key", &v);
	assert_int_equal(v.status, SIG_MALFORMED);
	assert_non_null(strstr(v.reason, "\"bcc\" is not a header this signature covers"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(body_simple_canonicalisation),
	    cmocka_unit_test(reader_splits_and_bounds),
	    cmocka_unit_test(header_values_unfolded),
	    cmocka_unit_test(tag_parser),
	    cmocka_unit_test(sign_then_verify),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
