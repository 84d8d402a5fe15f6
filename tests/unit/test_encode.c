/* Unit tests for the header encoders (core/message/encode.c) and the body
 * transfer encodings (core/message/transfer_encoding.c). Exact outputs where the form is
 * fixed by an RFC or a decision worth pinning; structural checks (line
 * widths, encoded-word sizes, whole UTF-8 characters) elsewhere. The
 * round trip through an independent decoder is encode_oracle.py's job. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core.h"
#include "body_stream.h"
#include "text.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ----------------------------------------------------------- */

/* Widest line of a folded header value written after `first_col`
 * columns ("Subject: " is 9). */
static size_t widest(const char *s, size_t first_col)
{
	size_t max = 0, col = first_col;
	for (; *s; s++) {
		if (s[0] == '\r' && s[1] == '\n') {
			max = col > max ? col : max;
			col = 0;
			s++;
		} else {
			col++;
		}
	}
	return col > max ? col : max;
}

/* Every CR is the start of a CRLF fold followed by a blank and text. */
static void assert_folds_ok(const char *s)
{
	for (const char *p = s; *p; p++) {
		assert_true(*p != '\n' || (p > s && p[-1] == '\r'));
		if (*p != '\r')
			continue;
		assert_int_equal(p[1], '\n');
		assert_true(p[2] == ' ' || p[2] == '\t');
		assert_true(p[3] != '\0' && p[3] != '\r');
	}
}

/* The value with folds removed (what a reader unfolds to). */
static char *unfold(const char *s)
{
	char *u = malloc(strlen(s) + 1), *q = u;
	assert_non_null(u);
	for (; *s; s++) {
		if (s[0] == '\r' && s[1] == '\n')
			s++;
		else
			*q++ = *s;
	}
	*q = '\0';
	return u;
}

static int is_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 0;
	return 1;
}

static int hexval(char c)
{
	return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* Decode the text of one encoded word; returns its octet count. */
static size_t ew_decode(const char *text, size_t n, int b, unsigned char *out)
{
	if (b) {
		int k = EVP_DecodeBlock(out, (const unsigned char *)text, (int)n);
		assert_true(k >= 0);
		while (n > 0 && text[n - 1] == '=') { /* padding decodes to 0s */
			n--;
			k--;
		}
		return (size_t)k;
	}
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (text[i] == '=') {
			out[o++] = (unsigned char)(hexval(text[i + 1]) * 16 + hexval(text[i + 2]));
			i += 2;
		} else {
			out[o++] = text[i] == '_' ? ' ' : (unsigned char)text[i];
		}
	}
	return o;
}

/* Whole, well-formed UTF-8 characters only. */
static int utf8_whole(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t want = s[i] < 0x80 ? 1 : s[i] < 0xE0 ? 2 : s[i] < 0xF0 ? 3 : 4;
		if (s[i] >= 0x80 && s[i] < 0xC2)
			return 0;
		if (i + want > n)
			return 0;
		for (size_t k = 1; k < want; k++)
			if ((s[i + k] & 0xC0) != 0x80)
				return 0;
		i += want;
	}
	return 1;
}

/* Each encoded word in s: at most 75 chars, whole UTF-8 characters, and
 * in a phrase Q text only from the RFC 2047 §5(3) set. Returns how many. */
static int check_ews(const char *s, int phrase)
{
	int count = 0;
	for (const char *p = strstr(s, "=?utf-8?"); p; p = strstr(p, "=?utf-8?")) {
		int b = p[8] == 'b';
		const char *text = p + 10, *end = strstr(text, "?=");
		assert_non_null(end);
		assert_true(end + 2 - p <= 75);
		unsigned char buf[80];
		size_t n = ew_decode(text, (size_t)(end - text), b, buf);
		assert_true(utf8_whole(buf, n));
		for (const char *t = text; phrase && !b && t < end; t++)
			assert_true(strchr("!*+-/=_", *t) || (*t >= '0' && *t <= '9') ||
			            ((*t | 0x20) >= 'a' && (*t | 0x20) <= 'z'));
		count++;
		p = end + 2;
	}
	return count;
}

/* ---- header names ------------------------------------------------------ */

static void test_header_name(void **state)
{
	(void)state;
	assert_true(sc_header_name_valid("X-Custom"));
	assert_true(sc_header_name_valid("Subject"));
	assert_true(sc_header_name_valid("X-!#$%&'*+.^_`|~"));
	assert_false(sc_header_name_valid(NULL));
	assert_false(sc_header_name_valid(""));
	assert_false(sc_header_name_valid("X Custom"));
	assert_false(sc_header_name_valid("X-Custom:"));
	assert_false(sc_header_name_valid("Subject:evil"));
	assert_false(sc_header_name_valid("X-Caf\xc3\xa9"));
	assert_false(sc_header_name_valid("X-\x01"));
	assert_false(sc_header_name_valid("X-\x7f"));
	assert_false(sc_header_name_valid("X\tY"));
	assert_false(sc_header_name_valid("X-\r\nBcc"));
}

/* ---- unstructured values ---------------------------------------------- */

static void test_subject_ascii_unchanged(void **state)
{
	(void)state;
	const char *v[] = {"Hello world", "Re: [SOAR] Alert #42 (high) =?? _x_", "", "a\tb  c",
	                   "?= then =?"};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char *s = sc_header_encode_unstructured("Subject", v[i], 0);
		assert_string_equal(s, v[i]);
		free(s);
	}
	char *s = sc_header_encode_unstructured("Subject", NULL, 0);
	assert_string_equal(s, "");
	free(s);
}

static void test_subject_long_ascii_folded(void **state)
{
	(void)state;
	const char *v = "Security alert: suspicious sign-in detected for account "
	                "jdoe from an unfamiliar location; the session was "
	                "blocked and the password must be reset before the "
	                "next login attempt by the user";
	char *s = sc_header_encode_unstructured("Subject", v, 0);
	assert_non_null(strstr(s, "\r\n "));
	assert_true(widest(s, 9) <= 78);
	assert_folds_ok(s);
	char *u = unfold(s);
	assert_string_equal(u, v);
	/* folded at the last blank that fits, not earlier */
	static const char head[] = "Security alert: suspicious sign-in "
	                           "detected for account jdoe from an\r\n "
	                           "unfamiliar";
	assert_memory_equal(s, head, sizeof(head) - 1);
	free(u);
	free(s);
}

static void test_subject_word_past_998(void **state)
{
	(void)state;
	char *v = malloc(1201);
	memset(v, 'w', 1200);
	v[1200] = '\0';
	char *s = sc_header_encode_unstructured("Subject", v, 0);
	assert_non_null(strstr(s, "=?utf-8?q?www"));
	assert_true(widest(s, 9) <= 78);
	assert_true(check_ews(s, 0) > 1);
	assert_folds_ok(s);
	free(s);
	/* also in SMTPUTF8 mode: 998 is a hard limit there too */
	s = sc_header_encode_unstructured("Subject", v, 1);
	assert_true(widest(s, 9) <= 998);
	free(s);
	/* a long word that fits 998 is left whole (only 78 is passed) */
	v[200] = '\0';
	s = sc_header_encode_unstructured("Subject", v, 0);
	assert_string_equal(s, v);
	free(s);
	free(v);
}

static void test_subject_non_ascii(void **state)
{
	(void)state;
	const char *v[] = {
	    "Caf\xc3\xa9 au lait",
	    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe4\xbb\xb6"
	    "\xe5\x90\x8d\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae"
	    "\xe4\xbb\xb6\xe5\x90\x8d\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"
	    "\xe3\x81\xae\xe4\xbb\xb6\xe5\x90\x8d\xe6\x97\xa5\xe6\x9c\xac"
	    "\xe8\xaa\x9e\xe3\x81\xae\xe4\xbb\xb6\xe5\x90\x8d",
	    "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80"
	    "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80"
	    "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80"
	    " and some ASCII words after the emoji run \xc3\xa9\xc3\xa9",
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char *s = sc_header_encode_unstructured("Subject", v[i], 0);
		assert_true(is_ascii(s));
		assert_true(widest(s, 9) <= 78);
		assert_true(check_ews(s, 0) >= 1);
		assert_folds_ok(s);
		free(s);
	}
	char *s = sc_header_encode_unstructured("Subject", v[0], 0);
	assert_string_equal(s, "=?utf-8?q?Caf=C3=A9?= au lait");
	free(s);
	/* the blank between two encoded words is encoded inside them */
	s = sc_header_encode_unstructured("Subject", "J\xc3\xa9 J\xc3\xa9", 0);
	assert_string_equal(s, "=?utf-8?q?J=C3=A9_J=C3=A9?=");
	free(s);
	/* B once Q would be more than a quarter longer */
	s = sc_header_encode_unstructured("Subject", "\xc3\xa9 \xc3\xa9", 0);
	assert_string_equal(s, "=?utf-8?b?w6kgw6k=?=");
	free(s);
}

static void test_subject_utf8_ok(void **state)
{
	(void)state;
	const char *v = "Caf\xc3\xa9 cr\xc3\xa8me \xe2\x80\x93 Caf\xc3\xa9 cr\xc3\xa8me "
	                "\xe2\x80\x93 Caf\xc3\xa9 cr\xc3\xa8me \xe2\x80\x93 Caf\xc3\xa9 "
	                "cr\xc3\xa8me \xe2\x80\x93 Caf\xc3\xa9 cr\xc3\xa8me";
	char *s = sc_header_encode_unstructured("Subject", v, 1);
	assert_null(strstr(s, "=?"));
	assert_non_null(strstr(s, "\r\n "));
	assert_true(widest(s, 9) <= 78);
	char *u = unfold(s);
	assert_string_equal(u, v);
	free(u);
	free(s);
	s = sc_header_encode_unstructured("Subject", "Caf\xc3\xa9", 1);
	assert_string_equal(s, "Caf\xc3\xa9");
	free(s);
}

/* Control characters never go out raw, whatever the mode. */
static void test_subject_controls(void **state)
{
	(void)state;
	char *s = sc_header_encode_unstructured("Subject", "bell\x07 ring", 1);
	assert_string_equal(s, "=?utf-8?q?bell=07?= ring");
	free(s);
}

/* ---- phrases and addresses ------------------------------------------- */

static void test_phrase_atoms_and_quoting(void **state)
{
	(void)state;
	static const char *const cases[][2] = {
	    {"Jane Doe", "Jane Doe"},
	    {"O'Brien-Smith", "O'Brien-Smith"},
	    {"Doe, Jane", "\"Doe, Jane\""},
	    {"Jane \"JD\" Doe", "\"Jane \\\"JD\\\" Doe\""},
	    {"back\\slash", "\"back\\\\slash\""},
	    {"ops@corp", "\"ops@corp\""},
	    {"J. Doe", "\"J. Doe\""},
	    {"<team>", "\"<team>\""},
	    {"a (b)", "\"a (b)\""},
	    {"x;y:z", "\"x;y:z\""},
	    {"[ops]", "\"[ops]\""},
	    {" lead", "\" lead\""},
	    {"two  blanks", "\"two  blanks\""},
	    {"", "\"\""},
	    /* encoded-word look-alikes are text, encoded so that they
	     * read back as typed, not as what they would decode to */
	    {"=?utf-8?q?CEO?=", "=?utf-8?b?PT91dGYtOD9xP0NFTz89?="},
	    {"x=?a?q?b?=", "=?utf-8?b?eD0/YT9xP2I/PQ==?="},
	    {"=?utf-8?q?a\"b?=", "=?utf-8?b?PT91dGYtOD9xP2EiYj89?="},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = sc_header_encode_phrase(cases[i][0], 0);
		assert_string_equal(s, cases[i][1]);
		free(s);
	}
}

static void test_phrase_non_ascii(void **state)
{
	(void)state;
	char *s = sc_header_encode_phrase("J\xc3\xa9r\xc3\xb4me Dupont, Jr.", 0);
	assert_string_equal(s, "=?utf-8?q?J=C3=A9r=C3=B4me_Dupont=2C_Jr=2E?=");
	check_ews(s, 1);
	free(s);
	s = sc_header_encode_phrase("\xe7\x8e\x8b\xe5\xb0\x8f\xe6\x98\x8e", 0);
	assert_string_equal(s, "=?utf-8?b?546L5bCP5piO?=");
	free(s);
	/* SMTPUTF8: raw, quoted only for specials */
	s = sc_header_encode_phrase("J\xc3\xa9r\xc3\xb4me Dupont", 1);
	assert_string_equal(s, "J\xc3\xa9r\xc3\xb4me Dupont");
	free(s);
	s = sc_header_encode_phrase("Dupont, J\xc3\xa9r\xc3\xb4me", 1);
	assert_string_equal(s, "\"Dupont, J\xc3\xa9r\xc3\xb4me\"");
	free(s);
}

/* A quoted string too long for a line of its own becomes encoded words,
 * which can be folded between. */
static void test_phrase_long(void **state)
{
	(void)state;
	const char *v = "Security Operations Center, Incident Response Team "
	                "(Tier 2), EMEA region, on-call rotation";
	char *s = sc_header_encode_phrase(v, 0);
	assert_true(check_ews(s, 1) >= 2);
	assert_null(strchr(s, '\r'));
	free(s);
}

static void test_address_format(void **state)
{
	(void)state;
	struct sc_address a = {"Jane Doe", "jane@corp.example"};
	char *s = sc_address_format(&a, 0);
	assert_string_equal(s, "Jane Doe <jane@corp.example>");
	free(s);
	a.display = NULL;
	s = sc_address_format(&a, 0);
	assert_string_equal(s, "jane@corp.example");
	free(s);
	a.display = "";
	s = sc_address_format(&a, 0);
	assert_string_equal(s, "jane@corp.example");
	free(s);
	a.display = "Doe, Jane";
	s = sc_address_format(&a, 0);
	assert_string_equal(s, "\"Doe, Jane\" <jane@corp.example>");
	free(s);
	a.display = "Jos\xc3\xa9";
	s = sc_address_format(&a, 0);
	assert_string_equal(s, "=?utf-8?q?Jos=C3=A9?= <jane@corp.example>");
	free(s);
	s = sc_address_format(&a, 1);
	assert_string_equal(s, "Jos\xc3\xa9 <jane@corp.example>");
	free(s);
}

static void test_address_list_format(void **state)
{
	(void)state;
	struct sc_address v[] = {
	    {"Jane Doe", "jane@corp.example"},
	    {NULL, "soc@corp.example"},
	    {"Doe, John", "john@corp.example"},
	    {"J\xc3\xa9r\xc3\xb4me Dupont", "jerome@corp.example"},
	    {"Incident Response Team", "irt@corp.example"},
	};
	struct sc_address_list l = {v, 5};
	char *s = sc_address_list_format("To", &l, 0);
	assert_true(widest(s, 4) <= 78);
	assert_folds_ok(s);
	char *u = unfold(s);
	assert_string_equal(u, "Jane Doe <jane@corp.example>, soc@corp.example, "
	                       "\"Doe, John\" <john@corp.example>, "
	                       "=?utf-8?q?J=C3=A9r=C3=B4me_Dupont?= "
	                       "<jerome@corp.example>, Incident Response Team "
	                       "<irt@corp.example>");
	/* never a line that starts with the comma */
	assert_null(strstr(s, "\r\n ,"));
	free(u);
	free(s);
	l.n = 1;
	s = sc_address_list_format("To", &l, 0);
	assert_string_equal(s, "Jane Doe <jane@corp.example>");
	free(s);
	l.n = 0;
	s = sc_address_list_format("To", &l, 0);
	assert_string_equal(s, "");
	free(s);
}

/* ---- MIME parameters ------------------------------------------------- */

static void test_param_simple(void **state)
{
	(void)state;
	static const char *const cases[][2] = {
	    {"report.pdf", "filename=\"report.pdf\""},
	    {"we\"ird\\name.txt", "filename=\"we\\\"ird\\\\name.txt\""},
	    {"a b;c=d.txt", "filename=\"a b;c=d.txt\""},
	    {"\xe2\x82\xac.pdf", "filename*=utf-8''%E2%82%AC.pdf"},
	    {"tab\there", "filename*=utf-8''tab%09here"},
	    {"", "filename=\"\""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = sc_mime_param_encode("filename", cases[i][0]);
		assert_string_equal(s, cases[i][1]);
		free(s);
	}
}

static void test_param_continuations(void **state)
{
	(void)state;
	struct sc_error e = SC_ERROR_INIT;
	(void)e;
	char *v = NULL;
	for (int i = 0; i < 12; i++) {
		char *w = sc_asprintf("%s\xd0\x9e\xd1\x82\xd1\x87\xd1\x91\xd1\x82 ", v ? v : "");
		free(v);
		v = w;
	}
	char *s = sc_mime_param_encode("filename", v);
	assert_memory_equal(s, "filename*0*=utf-8''%D0%9E", 25);
	assert_non_null(strstr(s, ";\r\n filename*1*=%"));
	assert_null(strstr(s, "filename*1*=utf-8"));
	assert_true(widest(s, 1) <= 78);
	assert_folds_ok(s);
	free(s);
	free(v);
	/* long ASCII: quoted sections, escapes never split */
	v = malloc(201);
	for (int i = 0; i < 200; i++)
		v[i] = i % 7 ? 'x' : '"';
	v[200] = '\0';
	s = sc_mime_param_encode("filename", v);
	assert_memory_equal(s, "filename*0=\"\\\"xx", 16);
	assert_non_null(strstr(s, "\";\r\n filename*1=\""));
	assert_true(widest(s, 1) <= 78);
	free(s);
	free(v);
}

/* ---- bodies ---------------------------------------------------------- */

static void test_body_encoding(void **state)
{
	(void)state;
	char *long_line = malloc(1001);
	memset(long_line, 'a', 1000);
	long_line[1000] = '\0';
	assert_string_equal(sc_body_encoding("", 0), "7bit");
	assert_string_equal(sc_body_encoding("Hello\r\nworld\r\n", 14), "7bit");
	/* a bare LF never goes out as 7bit: "\n.\n" would pass dot-stuffing */
	assert_string_equal(sc_body_encoding("Hello\r\nworld\n.\n", 16), "quoted-printable");
	assert_string_equal(sc_body_encoding(long_line, 998), "7bit");
	assert_string_equal(sc_body_encoding(long_line, 999), "quoted-printable");
	assert_string_equal(sc_body_encoding("a\rb", 3), "quoted-printable");
	assert_string_equal(sc_body_encoding("a\0b", 3), "base64");
	assert_string_equal(sc_body_encoding("Caf\xc3\xa9 au lait, merci bien", 25),
	                    "quoted-printable");
	assert_string_equal(sc_body_encoding("\xe6\x97\xa5\xe6\x9c\xac", 6), "base64");
	free(long_line);
}

static void test_base64_lines(void **state)
{
	(void)state;
	static const char *const rfc4648[][2] = {
	    {"", ""},
	    {"f", "Zg==\r\n"},
	    {"fo", "Zm8=\r\n"},
	    {"foo", "Zm9v\r\n"},
	    {"foob", "Zm9vYg==\r\n"},
	    {"fooba", "Zm9vYmE=\r\n"},
	    {"foobar", "Zm9vYmFy\r\n"},
	};
	for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		size_t n = 99;
		char *s = sc_base64_lines((const unsigned char *)rfc4648[i][0],
		                          strlen(rfc4648[i][0]), &n);
		assert_string_equal(s, rfc4648[i][1]);
		assert_int_equal(n, strlen(rfc4648[i][1]));
		free(s);
	}
	unsigned char data[58];
	memset(data, 0, sizeof(data));
	size_t n;
	char *s = sc_base64_lines(data, 57, &n);
	assert_int_equal(n, 78);
	assert_string_equal(s + 76, "\r\n");
	free(s);
	s = sc_base64_lines(data, 58, &n);
	assert_int_equal(n, 78 + 4 + 2);
	assert_string_equal(s + 78, "AA==\r\n");
	free(s);
}

static void qp_is(const char *in, size_t len, const char *want)
{
	size_t n;
	char *s = sc_qp_encode(in, len, &n);
	assert_string_equal(s, want);
	assert_int_equal(n, strlen(want));
	free(s);
}

static void test_qp_vectors(void **state)
{
	(void)state;
	qp_is("", 0, "");
	qp_is("Hello = world\n", 14, "Hello =3D world\r\n");
	qp_is("caf\xc3\xa9", 5, "caf=C3=A9");
	qp_is("a \nb\t\r\nc ", 9, "a=20\r\nb=09\r\nc=20");
	qp_is("a b", 3, "a b");
	qp_is("From me\nFrom: x\n.\n..", 20, "=46rom me\r\nFrom: x\r\n=2E\r\n=2E.");
	qp_is("a\rb\r", 4, "a=0Db=0D");
	qp_is("a\0b\x7f", 4, "a=00b=7F");
	/* 76 fits a line before a hard break; 77 needs a soft break */
	char buf[200];
	memset(buf, 'x', sizeof(buf));
	size_t n;
	char *s = sc_qp_encode(buf, 76, &n);
	assert_int_equal(n, 76);
	free(s);
	s = sc_qp_encode(buf, 77, &n);
	assert_int_equal(n, 75 + 3 + 2);
	assert_memory_equal(s + 75, "=\r\nxx", 5);
	free(s);
	/* an escape is never split by a soft break */
	buf[74] = '=';
	s = sc_qp_encode(buf, 80, &n);
	assert_memory_equal(s + 74, "=\r\n=3D", 6);
	free(s);
	/* a dot that lands at the start of a soft-broken line is escaped */
	buf[74] = 'x';
	buf[75] = '.';
	s = sc_qp_encode(buf, 80, &n);
	assert_memory_equal(s + 75, "=\r\n=2E", 6);
	free(s);
}

/* ---- issue 8 ------------------------------------------------------------ */

/* Widest line that holds an encoded word (first line after first_col). */
static size_t widest_ew_line(const char *s, size_t first_col)
{
	size_t max = 0, col = first_col;
	int ew = 0;
	for (const char *p = s;; p++) {
		if (!*p || (p[0] == '\r' && p[1] == '\n')) {
			if (ew && col > max)
				max = col;
			if (!*p)
				return max;
			col = 0;
			ew = 0;
			p++;
			continue;
		}
		ew |= p[0] == '=' && p[1] == '?';
		col++;
	}
}

/* RFC 2047 §2: a line that carries an encoded word is at most 76 octets
 * (it was 78, the limit of plain lines). */
static void test_ew_lines_76(void **state)
{
	(void)state;
	const char *v[] = {
	    "Sicherheitswarnung: verd\xc3\xa4"
	    "chtige Anmeldung f\xc3\xbcr Konto jdoe aus "
	    "unbekanntem Land, bitte sofort pr\xc3\xbc"
	    "fen und das Passwort \xc3\xa4ndern",
	    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe4\xbb\xb6\xe5\x90\x8d "
	    "plain words follow the encoded ones and must fit too",
	    "x =?utf-8?q?looks?= encoded and is long enough to need a fold somewhere here",
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		for (size_t name = 1; name < 40; name += 7) {
			char hdr[48];
			memset(hdr, 'H', name);
			hdr[name] = '\0';
			char *s = sc_header_encode_unstructured(hdr, v[i], 0);
			assert_non_null(s);
			if (widest_ew_line(s, name + 2) > 76)
				fail_msg("%s: a line with an encoded word is %zu octets: %s", v[i],
				         widest_ew_line(s, name + 2), s);
			assert_folds_ok(s);
			free(s);
		}
	}
	struct sc_address a[3] = {
	    {"M\xc3\xbcller, J\xc3\xbcrgen aus der Abteilung f\xc3\xbcr Sicherheit",
	     "j@corp.example"},
	    {"=?utf-8?q?CEO?=", "ceo@corp.example"},
	    {"\xe7\x8e\x8b\xe5\xb0\x8f\xe6\x98\x8e", "w@corp.example"},
	};
	struct sc_address_list l = {a, 3};
	char *s = sc_address_list_format("To", &l, 0);
	assert_true(widest_ew_line(s, 4) <= 76);
	assert_true(widest(s, 4) <= 78);
	free(s);
}

/* Text that reads as an encoded word is encoded itself: no "=?" of the
 * input survives, so nothing decodes to other text. */
static void test_lookalikes_encoded(void **state)
{
	(void)state;
	const char *v[] = {"=?utf-8?q?CEO?=", "Re: x=?a?b?QUJD?=y", "=?utf-8?q?a?= =?utf-8?q?b?="};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		char *s = sc_header_encode_unstructured("Subject", v[i], 0);
		char *t = sc_header_encode_unstructured("Subject", v[i], 1); /* SMTPUTF8 too */
		char *p = sc_header_encode_phrase(v[i], 1);
		const char *outs[] = {s, t, p};
		for (size_t k = 0; k < 3; k++) {
			assert_non_null(outs[k]);
			/* every "=?" starts one of our words: skip each to its "?=" */
			for (const char *q = strstr(outs[k], "=?"); q;) {
				if (strncmp(q, "=?utf-8?", 8) || !strstr(q + 10, "?="))
					fail_msg("\"%s\" -> \"%s\": a look-alike survived", v[i],
					         outs[k]);
				q = strstr(strstr(q + 10, "?=") + 2, "=?");
			}
			assert_null(strstr(outs[k], "CEO"));
			assert_null(strstr(outs[k], "QUJD?="));
		}
		free(s);
		free(t);
		free(p);
	}
	/* "=?" alone, or "?=" before "=?", cannot be read as an encoded word */
	char *s = sc_header_encode_unstructured("Subject", "a =?? b ?=x=?", 0);
	assert_string_equal(s, "a =?? b ?=x=?");
	free(s);
	/* in a MIME parameter: the RFC 2231 form, which shows it literally */
	s = sc_mime_param_encode("filename", "=?utf-8?q?a.pdf?=.exe");
	assert_string_equal(s, "filename*=utf-8''%3D%3Futf-8%3Fq%3Fa.pdf%3F%3D.exe");
	free(s);
}

/* text.c: the one copy of each byte check. */
static void test_text_helpers(void **state)
{
	(void)state;
	assert_int_equal(sc_utf8_len("a", 1), 1);
	assert_int_equal(sc_utf8_len("\xc3\xa9", 2), 2);
	assert_int_equal(sc_utf8_len("\xc3", 1), 0);             /* truncated */
	assert_int_equal(sc_utf8_len("\xc0\xaf", 2), 0);         /* overlong */
	assert_int_equal(sc_utf8_len("\xed\xa0\x80", 3), 0);     /* surrogate */
	assert_int_equal(sc_utf8_len("\xf4\x90\x80\x80", 4), 0); /* > U+10FFFF */
	assert_int_equal(sc_utf8_len("\xf0\x9f\x8e\x89", 4), 4);
	assert_int_equal(sc_utf8_len("", 0), 0);
	assert_false(sc_has_8bit("abc\0d", 5));
	assert_true(sc_has_8bit("abc\0\x80", 5));
	assert_false(sc_str_8bit(NULL));
	struct sc_buf b = {0};
	static const char in[] = "a\nb\rc\r\nd\n\re\r";
	assert_int_equal(sc_buf_add_crlf(&b, in, sizeof in - 1), SC_OK);
	assert_string_equal(b.p, "a\r\nb\r\nc\r\nd\r\n\r\ne\r\n");
	assert_int_equal(core_crlf_len(in, sizeof in - 1), b.len);
	sc_buf_free(&b);
	assert_int_equal(sc_buf_add_crlf(&b, "", 0), SC_OK);
	assert_string_equal(b.p, "");
	sc_buf_free(&b);
	/* every control code, DEL too, becomes a space; UTF-8 stays */
	char line[] = "a\r\nb\tc\x01"
	              "d\x1f\x7f\xc3\xa9 ~";
	assert_ptr_equal(sc_str_one_line(line), line);
	assert_string_equal(line, "a  b c d  \xc3\xa9 ~");
	assert_null(sc_str_one_line(NULL));
}

/* The streamed body is byte for byte sc_text_encode() of the whole text,
 * across chunk boundaries (a CRLF cut in two, QP look-ahead, base64
 * groups), for every encoding, read in odd-sized pieces. */
static void stream_is_whole(const char *text, size_t len, const char *want_cte)
{
	const char *cte = NULL, *cte2 = NULL;
	size_t elen = 0;
	char *whole = sc_text_encode(text, len, &cte, &elen);
	struct body_stream *bs = body_stream_new(text, len, 0, &cte2);
	assert_non_null(whole);
	assert_non_null(bs);
	assert_string_equal(cte, want_cte);
	assert_string_equal(cte2, cte);
	assert_int_equal(body_stream_size(bs), elen);
	char *got = malloc(elen + 1);
	for (int round = 0; round < 2; round++) { /* and again after a rewind */
		size_t n = 0, k, piece = 1;
		while ((k = body_stream_read(bs, got + n, piece)) > 0) {
			assert_true(k != (size_t)-1 && n + k <= elen);
			n += k;
			piece = piece * 7 % 65536 + 1;
		}
		assert_int_equal(n, elen);
		assert_memory_equal(got, whole, elen);
		body_stream_rewind(bs);
	}
	free(got);
	free(whole);
	body_stream_free(bs);
}

static void test_body_stream(void **state)
{
	(void)state;
	size_t n = 300 * 1024;
	char *t = malloc(n);
	/* 7bit with LF line ends, a CR LF pair on the 57 KiB chunk edges */
	for (size_t i = 0; i < n; i++)
		t[i] = i % 61 == 60 ? '\n' : (char)('a' + i % 26);
	for (size_t e = 57 * 1024; e < n; e += 57 * 1024)
		t[e - 1] = '\r', t[e] = '\n';
	stream_is_whole(t, n, "7bit");
	/* quoted-printable: long lines, blanks before breaks, dots and From */
	for (size_t i = 0; i < n; i++)
		t[i] = "From x .\t \xc3\xa9=\r\n abcdefgh"[i % 24];
	for (size_t i = 5000; i < 9000; i++)
		t[i] = 'L';
	stream_is_whole(t, n, "quoted-printable");
	/* base64: CJK */
	for (size_t i = 0; i + 3 <= n; i += 3)
		memcpy(t + i, "\xe6\x97\xa5", 3);
	stream_is_whole(t, n - n % 3, "base64");
	stream_is_whole(t, 1, "base64");
	stream_is_whole("", 0, "7bit");
	stream_is_whole("end in CR\r", 10, "7bit");
	/* pseudo-random mixes of what the encoders treat specially, so CR,
	 * LF, blanks, dots and "From " land on every chunk edge */
	static const char alpha[] = "\r\n \t.=From xyz\xc3\xa9\x80\x01";
	unsigned x = 12345;
	for (int round = 0; round < 6; round++) {
		size_t len = 150 * 1024 + (size_t)round * 9973;
		for (size_t i = 0; i < len; i++) {
			x = x * 1103515245u + 12345u;
			t[i] = alpha[(x >> 16) % (sizeof alpha - 1)];
			if (round % 3 == 0 && t[i] < 0)
				t[i] = 'q'; /* ASCII only: quoted-printable or 7bit */
		}
		const char *cte = core_text_encoding(t, len);
		stream_is_whole(t, len, cte);
	}
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_header_name),
	    cmocka_unit_test(test_subject_ascii_unchanged),
	    cmocka_unit_test(test_subject_long_ascii_folded),
	    cmocka_unit_test(test_subject_word_past_998),
	    cmocka_unit_test(test_subject_non_ascii),
	    cmocka_unit_test(test_subject_utf8_ok),
	    cmocka_unit_test(test_subject_controls),
	    cmocka_unit_test(test_phrase_atoms_and_quoting),
	    cmocka_unit_test(test_phrase_non_ascii),
	    cmocka_unit_test(test_phrase_long),
	    cmocka_unit_test(test_address_format),
	    cmocka_unit_test(test_address_list_format),
	    cmocka_unit_test(test_param_simple),
	    cmocka_unit_test(test_param_continuations),
	    cmocka_unit_test(test_body_encoding),
	    cmocka_unit_test(test_base64_lines),
	    cmocka_unit_test(test_qp_vectors),
	    cmocka_unit_test(test_ew_lines_76),
	    cmocka_unit_test(test_lookalikes_encoded),
	    cmocka_unit_test(test_text_helpers),
	    cmocka_unit_test(test_body_stream),
	};
	return cmocka_run_group_tests_name("encode", tests, NULL, NULL);
}
