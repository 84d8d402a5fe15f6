// clang-format off
// fuzz-sources: core/message/encode.c core/message/transfer_encoding.c core/message/text.c core/runtime/error.c core/runtime/buf.c core/runtime/log.c core/runtime/utf8.c
// fuzz-pkgs: libcrypto
// clang-format on
/* libFuzzer target for the header encoders (core/message/encode.c).
 *
 * Arbitrary bytes go to sc_header_encode_unstructured (both utf8_ok
 * values), sc_header_encode_phrase, sc_address_list_format and
 * sc_mime_param_encode. Inputs with CR, LF or NUL are dropped: callers
 * reject them before encoding (a header value cannot carry them).
 *
 * Invariants, each a property a receiving MTA or MUA relies on:
 *  - every CR starts a CRLF fold followed by a blank and some text;
 *  - no line passes 998 octets (RFC 5322 MUST);
 *  - without SMTPUTF8 the output is pure ASCII;
 *  - lines stay within 78 columns when nothing in the input forces a
 *    longer one (an ASCII word plus the blanks around it that cannot be
 *    split), and always for parameters and address lists of short words;
 *  - encoded words are at most 75 characters, and a line holding one at
 *    most 76 octets (RFC 2047 §2);
 *  - decoded as RFC 2047 says (whole words; blanks between two encoded
 *    words dropped), an unstructured value gives back the input exactly,
 *    and no word that is not one of ours holds an "=?...?=" a reader
 *    could decode: text that looks like an encoded word reads as typed.
 * The same bytes, CR/LF/NUL included, also go through sc_qp_encode: it
 * must decode back exactly (line breaks as CRLF) with lines <= 76, no
 * trailing blank and no line starting with "." (core/message/transfer_encoding.c). */
#include "core.h"

#include <openssl/evp.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LINE_SOFT 78
#define LINE_HARD 998

/* Widest line (first line counted from first_col); aborts on a bad fold. */
static size_t check_lines(const char *s, size_t first_col)
{
	size_t max = 0, col = first_col;
	for (const char *p = s; *p; p++) {
		if (*p == '\n')
			abort(); /* only inside CRLF, consumed below */
		if (*p != '\r') {
			col++;
			continue;
		}
		if (p[1] != '\n' || (p[2] != ' ' && p[2] != '\t'))
			abort();
		size_t k = 2;
		while (p[k] == ' ' || p[k] == '\t')
			k++;
		if (p[k] == '\0' || p[k] == '\r')
			abort(); /* a blank-only line reads as the header end */
		max = col > max ? col : max;
		col = 0;
		p++;
	}
	max = col > max ? col : max;
	if (max > LINE_HARD)
		abort();
	return max;
}

static void check_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			abort();
}

/* Each of our encoded words (a whole blank-delimited word "=?utf-8?..?=")
 * is at most 75 characters. Input text such as a lone "=?utf-8?" may
 * stay plain: it cannot be decoded (check_round_trip checks that). */
static void check_ews(const char *in, const char *s)
{
	(void)in;
	for (const char *p = s; *p;) {
		size_t n = strcspn(p, " \t\r\n");
		if (n >= 12 && !strncmp(p, "=?utf-8?", 8) && !strncmp(p + n - 2, "?=", 2) && n > 75)
			abort();
		p += n;
		p += strspn(p, " \t\r\n");
	}
}

/* Whether the input has a run that may legitimately pass 78 columns: an
 * ASCII word with the blanks before and after it longer than a line
 * (in the encoder, words and blank runs up to these sizes stay plain). */
static int has_long_run(const unsigned char *s, size_t n)
{
	size_t maxw = 0, maxb = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		int blank = s[i] == ' ' || s[i] == '\t', plain = 1;
		while (j < n && (s[j] == ' ' || s[j] == '\t') == blank) {
			plain &= s[j] >= 0x20 && s[j] < 0x7f;
			j++;
		}
		if (blank && j - i <= 32 && j - i > maxb)
			maxb = j - i;
		if (!blank && plain && j - i > maxw)
			maxw = j - i;
		i = j;
	}
	return 2 * maxb + maxw > LINE_SOFT - 9;
}

/* Whether the word w[0..n) is one of ours: "=?utf-8?q|b?...?=". */
static int our_ew(const char *w, size_t n)
{
	return n >= 12 && !strncmp(w, "=?utf-8?", 8) && (w[8] == 'q' || w[8] == 'b') &&
	       w[9] == '?' && w[n - 2] == '?' && w[n - 1] == '=';
}

/* The widest line holding one of our encoded words (the first line
 * counted from first_col). */
static size_t widest_ew_line(const char *s, size_t first_col)
{
	size_t max = 0, col = first_col;
	const char *line = s;
	for (;;) {
		size_t len = strcspn(line, "\r");
		int ew = 0;
		for (size_t i = 0; i < len;) {
			size_t n = strcspn(line + i, " \t\r");
			ew |= our_ew(line + i, n);
			i += n;
			i += strspn(line + i, " \t");
		}
		if (ew && col + len > max)
			max = col + len;
		if (!line[len])
			return max;
		line += len + 2;
		col = 0;
	}
}

static int hexval(char c);

/* One of our encoded words, decoded onto `out`: 1, or 0 when w[0..n) is
 * not a whole "=?utf-8?q|b?...?=" word. */
static int ew_decode(const char *w, size_t n, struct sc_buf *out)
{
	if (n < 12 || strncmp(w, "=?utf-8?", 8) || (w[8] != 'q' && w[8] != 'b') || w[9] != '?' ||
	    w[n - 2] != '?' || w[n - 1] != '=')
		return 0;
	const char *t = w + 10;
	size_t tn = n - 12;
	if (w[8] == 'b') {
		unsigned char dec[80];
		if (tn % 4 || tn > 76)
			abort();
		int k = EVP_DecodeBlock(dec, (const unsigned char *)t, (int)tn);
		if (k < 0)
			abort();
		k -= (tn && t[tn - 1] == '=') + (tn > 1 && t[tn - 2] == '=');
		sc_buf_add(out, dec, (size_t)k);
		return 1;
	}
	for (size_t i = 0; i < tn; i++) {
		char c = t[i];
		if (c == '_') {
			c = ' ';
		} else if (c == '=') {
			if (i + 2 >= tn)
				abort();
			c = (char)(hexval(t[i + 1]) * 16 + hexval(t[i + 2]));
			i += 2;
		} else if (c == '?' || c == ' ') {
			abort();
		}
		sc_buf_add(out, &c, 1);
	}
	return 1;
}

/* A plain word a reader could still decode: "=?" then "?=" in it. */
static int decodable(const char *w, size_t n)
{
	for (size_t i = 0; i + 3 < n; i++)
		if (w[i] == '=' && w[i + 1] == '?')
			for (size_t j = i + 2; j + 1 < n; j++)
				if (w[j] == '?' && w[j + 1] == '=')
					return 1;
	return 0;
}

/* RFC 2047 decoding of a folded unstructured value; must equal `in`. */
static void check_round_trip(const char *in, const char *enc)
{
	struct sc_buf u = {0}, out = {0};
	for (const char *p = enc; *p; p++)
		if (!(p[0] == '\r' && p[1] == '\n') && !(p[0] == '\n' && p > enc && p[-1] == '\r'))
			sc_buf_add(&u, p, 1);
	sc_buf_add(&u, "", 0);
	size_t i = 0, ws_from = 0, ws_len = 0;
	int prev_ew = 0;
	while (i < u.len) {
		size_t j = i;
		while (j < u.len && (u.p[j] == ' ' || u.p[j] == '\t'))
			j++;
		ws_from = i;
		ws_len = j - i;
		i = j;
		while (j < u.len && u.p[j] != ' ' && u.p[j] != '\t')
			j++;
		if (j == i) { /* trailing blanks */
			sc_buf_add(&out, u.p + ws_from, ws_len);
			break;
		}
		size_t mark = out.len;
		if (!prev_ew || !ew_decode(u.p + i, j - i, &out)) {
			out.len = mark;
			sc_buf_add(&out, u.p + ws_from, ws_len);
			if (ew_decode(u.p + i, j - i, &out)) {
				prev_ew = 1;
			} else {
				if (decodable(u.p + i, j - i))
					abort(); /* a look-alike left as it is */
				sc_buf_add(&out, u.p + i, j - i);
				prev_ew = 0;
			}
		}
		i = j;
	}
	sc_buf_add(&out, "", 0);
	if (out.len != strlen(in) || memcmp(out.p, in, out.len))
		abort();
	sc_buf_free(&u);
	sc_buf_free(&out);
}

static void fuzz_unstructured(const char *v, size_t n, int utf8_ok)
{
	char *s = sc_header_encode_unstructured("Subject", v, utf8_ok);
	if (!s)
		abort();
	size_t w = check_lines(s, 9);
	check_ews(v, s);
	if (widest_ew_line(s, 9) > 76)
		abort();
	check_round_trip(v, s);
	if (!utf8_ok) {
		check_ascii(s);
		if (w > LINE_SOFT && !has_long_run((const unsigned char *)v, n))
			abort();
	}
	free(s);
	/* A long name leaves little room on the first line: only 998 holds
	 * there, as a plain first word is never moved off the name's line. */
	static const char name[] = "X-A-Rather-Long-Custom-Header-Name-For-"
	                           "Fuzzing-Purposes";
	s = sc_header_encode_unstructured(name, v, utf8_ok);
	if (!s)
		abort();
	check_lines(s, sizeof(name) - 1 + 2);
	free(s);
}

static void fuzz_phrase(const char *v, int utf8_ok)
{
	char *s = sc_header_encode_phrase(v, utf8_ok);
	if (!s || strchr(s, '\r') || strchr(s, '\n'))
		abort();
	if (!utf8_ok)
		check_ascii(s);
	check_ews(v, s);
	free(s);
	struct sc_address a[2] = {{(char *)v, "a@example.com"}, {(char *)v, "b@example.com"}};
	struct sc_address_list l = {a, 2};
	s = sc_address_list_format("To", &l, utf8_ok);
	if (!s || check_lines(s, 4) > LINE_SOFT)
		abort();
	if (!utf8_ok)
		check_ascii(s);
	free(s);
}

static int hexval(char c)
{
	return c <= '9' ? c - '0' : c - 'A' + 10;
}

/* Decode quoted-printable output (our own, so upper-case hex only) and
 * check each line on the way. Returns the decoded length in out. */
static size_t qp_decode_checked(const char *q, size_t n, unsigned char *out)
{
	size_t o = 0, col = 0;
	for (size_t i = 0; i < n; i++) {
		if (q[i] == '\r') {
			if (i + 1 >= n || q[i + 1] != '\n' || col > 76 ||
			    (i > 0 && (q[i - 1] == ' ' || q[i - 1] == '\t')))
				abort();
			if (i == 0 || q[i - 1] != '=') { /* hard break */
				out[o++] = '\r';
				out[o++] = '\n';
			}
			col = 0;
			i++;
			continue;
		}
		if (col == 0 && q[i] == '.')
			abort();
		col++;
		if (q[i] != '=') {
			out[o++] = (unsigned char)q[i];
		} else if (i + 2 < n && q[i + 1] != '\r') {
			out[o++] = (unsigned char)(hexval(q[i + 1]) * 16 + hexval(q[i + 2]));
			i += 2;
			col += 2;
		}
	}
	if (col > 76)
		abort();
	return o;
}

static void fuzz_qp(const uint8_t *data, size_t size)
{
	size_t n;
	char *q = sc_qp_encode((const char *)data, size, &n);
	unsigned char *want = malloc(2 * size + 1), *got = malloc(n + 1);
	if (!q || !want || !got)
		abort();
	size_t w = 0;
	for (size_t i = 0; i < size; i++) { /* bare LF -> CRLF */
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
			want[w++] = '\r';
		want[w++] = data[i];
	}
	size_t g = qp_decode_checked(q, n, got);
	if (g != w || memcmp(got, want, w) != 0)
		abort();
	(void)sc_body_encoding((const char *)data, size);
	free(q);
	free(want);
	free(got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_qp(data, size);
	if (memchr(data, '\r', size) || memchr(data, '\n', size) || memchr(data, '\0', size))
		return 0;
	char *v = malloc(size + 1);
	if (!v)
		return 0;
	memcpy(v, data, size);
	v[size] = '\0';
	fuzz_unstructured(v, size, 0);
	fuzz_unstructured(v, size, 1);
	fuzz_phrase(v, 0);
	fuzz_phrase(v, 1);
	char *p = sc_mime_param_encode("filename", v);
	if (!p || check_lines(p, 1) > LINE_SOFT)
		abort();
	check_ascii(p);
	free(p);
	free(v);
	return 0;
}
