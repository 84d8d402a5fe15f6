/* Decoding what a received message holds into UTF-8 text: RFC 2047
 * encoded words, quoted-printable and base64 bodies, charsets (iconv),
 * and repair of ill-formed UTF-8. Rules in inbound.h.
 *
 * Base64 is OpenSSL's EVP decoder, fed only whole quads of alphabet
 * characters: it stops at the first junk byte or at data after "=", and
 * received mail has both (line noise, concatenated encoder output), so
 * the filter here keeps going where EVP alone would drop the rest. */
#include "inbound.h"

#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

static const char FFFD[] = "\xEF\xBF\xBD";

/* ---- UTF-8 ------------------------------------------------------------ */

/* Length of the well-formed sequence at s (1..4), 0 when ill-formed
 * (*sub: bytes of its maximal subpart), -1 when s[0..n) is a valid but
 * incomplete prefix. */
static int utf8_seq(const unsigned char *s, size_t n, size_t *sub)
{
	unsigned c = s[0], lo = 0x80, hi = 0xBF;
	size_t need;

	*sub = 1;
	if (c < 0x80)
		return c ? 1 : 0;
	if (c >= 0xC2 && c <= 0xDF)
		need = 1;
	else if (c >= 0xE0 && c <= 0xEF) {
		need = 2;
		lo = c == 0xE0 ? 0xA0 : 0x80;
		hi = c == 0xED ? 0x9F : 0xBF;
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 3;
		lo = c == 0xF0 ? 0x90 : 0x80;
		hi = c == 0xF4 ? 0x8F : 0xBF;
	} else
		return 0;
	for (size_t i = 1; i <= need; i++) {
		if (i >= n)
			return -1;
		if (s[i] < lo || s[i] > hi) {
			*sub = i;
			return 0;
		}
		lo = 0x80;
		hi = 0xBF;
	}
	return (int)need + 1;
}

/* Append the valid UTF-8 of s[0..n); stops before an incomplete tail
 * unless `final`. Returns bytes consumed, or (size_t)-1 on ENOMEM. */
static size_t utf8_run(struct sc_buf *out, const char *s, size_t n, int final)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, run = 0;

	while (i < n) {
		/* most text is ASCII: step over it without a call per byte
		 * (NUL is not: utf8_seq replaces it) */
		while (i < n && u[i] - 1u < 0x7Fu)
			i++;
		if (i == n)
			break;
		size_t sub;
		int k = utf8_seq(u + i, n - i, &sub);
		if (k > 0) {
			i += (size_t)k;
			continue;
		}
		if (k < 0 && !final)
			break;
		if (sc_buf_add(out, s + run, i - run) || sc_buf_add(out, FFFD, 3))
			return (size_t)-1;
		i += k < 0 ? n - i : sub;
		run = i;
	}
	if (sc_buf_add(out, s + run, i - run))
		return (size_t)-1;
	return i;
}

int inb_utf8_append(struct sc_buf *out, const char *s, size_t n)
{
	if (n == 0)
		return SC_OK;
	return utf8_run(out, s, n, 1) == (size_t)-1 ? SC_ENOMEM : SC_OK;
}

/* ---- charsets ---------------------------------------------------------- */

/* MIME names that iconv spells otherwise, or whose usual real-world
 * meaning is a superset: Shift_JIS mail is Windows-31J in practice (and
 * glibc's SHIFT_JIS maps 0x5C to YEN SIGN, turning paths and regexes
 * into nonsense); GB2312 mail is GBK/GB18030; ks_c_5601 is CP949. */
static const char *const ALIASES[][2] = {
    {"shift_jis", "CP932"},      {"shift-jis", "CP932"},       {"sjis", "CP932"},
    {"x-sjis", "CP932"},         {"gb2312", "GB18030"},        {"gbk", "GB18030"},
    {"ks_c_5601-1987", "CP949"}, {"x-mac-roman", "MACINTOSH"},
};

/* Charsets read by the UTF-8 path: us-ascii too, since 8-bit bytes in
 * "ASCII" mail are almost always UTF-8 a client forgot to label. */
static int is_utf8_name(const char *cs)
{
	static const char *const names[] = {"utf-8",        "utf8",      "us-ascii", "ascii",
	                                    "unknown-8bit", "x-unknown", ""};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (!strcasecmp(cs, names[i]))
			return 1;
	return 0;
}

/* A charset name made safe for iconv_open(): RFC 2231's "*language"
 * suffix dropped, blanks and quotes trimmed, and only name characters
 * (no "//TRANSLIT" or other iconv syntax, no "/" to reach a gconv
 * module by path). Conversion is only ever *to* UTF-8. NULL: use the
 * UTF-8 path. */
static char *charset_name(const char *s, size_t n)
{
	while (n && (*s == ' ' || *s == '\t' || *s == '"'))
		s++, n--;
	const char *star = memchr(s, '*', n);
	if (star)
		n = (size_t)(star - s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '"'))
		n--;
	if (n == 0 || n > 40)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr("._:+-()", c)))
			return NULL;
	}
	char *cs = strndup(s, n);
	if (!cs || is_utf8_name(cs)) {
		free(cs);
		return NULL;
	}
	for (size_t i = 0; i < sizeof ALIASES / sizeof ALIASES[0]; i++)
		if (!strcasecmp(cs, ALIASES[i][0])) {
			free(cs);
			return strdup(ALIASES[i][1]);
		}
	return cs;
}

void inb_conv_open(struct inb_conv *c, const char *charset, size_t len)
{
	memset(c, 0, sizeof *c);
	char *cs = charset ? charset_name(charset, len) : NULL;
	if (!cs)
		return;
	iconv_t cd = iconv_open("UTF-8", cs);
	free(cs);
	if (cd != (iconv_t)-1)
		c->cd = cd;
}

static int utf8_feed(struct inb_conv *c, const char *in, size_t n, struct sc_buf *out)
{
	size_t used = 0;
	if (c->carry.len) {
		/* Complete the held sequence with at most 3 more bytes. */
		size_t take = n < 3 ? n : 3, had = c->carry.len;
		if (sc_buf_add(&c->carry, in, take))
			return SC_ENOMEM;
		size_t k = utf8_run(out, c->carry.p, c->carry.len, 0);
		if (k == (size_t)-1)
			return SC_ENOMEM;
		if (k < had) { /* still incomplete: all input is in carry */
			memmove(c->carry.p, c->carry.p + k, c->carry.len - k);
			c->carry.len -= k;
			return SC_OK;
		}
		used = k - had;
		c->carry.len = 0;
	}
	size_t k = utf8_run(out, in + used, n - used, 0);
	if (k == (size_t)-1)
		return SC_ENOMEM;
	return sc_buf_add(&c->carry, in + used + k, n - used - k);
}

/* Run iconv over src[0..*len), appending UTF-8 to out; leaves an
 * incomplete tail in src + (original *len - *len). */
static int iconv_run(iconv_t cd, char **src, size_t *len, struct sc_buf *out)
{
	/* A bounded output window: iconv never writes past outleft. */
	char win[1024];
	while (*len > 0) {
		char *op = win;
		size_t ol = sizeof win;
		size_t r = iconv(cd, src, len, &op, &ol);
		int e = errno;
		if (inb_utf8_append(out, win, (size_t)(op - win)))
			return SC_ENOMEM;
		if (r != (size_t)-1 || e == E2BIG)
			continue;
		if (e == EINVAL)
			break; /* incomplete sequence: wait for more */
		if (sc_buf_add(out, FFFD, 3))
			return SC_ENOMEM;
		(*src)++, (*len)--;
	}
	return SC_OK;
}

int inb_conv_feed(struct inb_conv *c, const char *in, size_t n, struct sc_buf *out)
{
	if (n == 0)
		return SC_OK;
	if (!c->cd)
		return utf8_feed(c, in, n, out);
	char *src = (char *)in;
	size_t len = n;
	if (c->carry.len) {
		if (sc_buf_add(&c->carry, in, n))
			return SC_ENOMEM;
		src = c->carry.p;
		len = c->carry.len;
	}
	if (iconv_run(c->cd, &src, &len, out))
		return SC_ENOMEM;
	if (c->carry.len) {
		memmove(c->carry.p, src, len);
		c->carry.len = len;
		return SC_OK;
	}
	return sc_buf_add(&c->carry, src, len);
}

int inb_conv_finish(struct inb_conv *c, struct sc_buf *out)
{
	int rc = SC_OK;
	if (!c->cd) {
		rc = inb_utf8_append(out, c->carry.p, c->carry.len);
	} else {
		if (c->carry.len)
			rc = sc_buf_add(out, FFFD, 3);
		char win[64], *op = win;
		size_t ol = sizeof win;
		/* Return to the initial state (ISO-2022-JP's final escape). */
		iconv(c->cd, NULL, NULL, &op, &ol);
		if (rc == SC_OK)
			rc = inb_utf8_append(out, win, (size_t)(op - win));
	}
	c->carry.len = 0;
	return rc;
}

void inb_conv_close(struct inb_conv *c)
{
	if (c->cd)
		iconv_close(c->cd);
	c->cd = NULL;
	sc_buf_free(&c->carry);
}

int inb_conv_append(const char *charset, size_t clen, const char *s, size_t n, struct sc_buf *out)
{
	struct inb_conv c;
	inb_conv_open(&c, charset, clen);
	int rc = inb_conv_feed(&c, s, n, out);
	if (rc == SC_OK)
		rc = inb_conv_finish(&c, out);
	inb_conv_close(&c);
	return rc;
}

/* ---- transfer encodings ------------------------------------------------ */

enum { QP_TEXT, QP_EQ, QP_EQ_WS, QP_HEX1 };

int inb_tdec_init(struct inb_tdec *d, enum inb_cte cte)
{
	memset(d, 0, sizeof *d);
	d->cte = cte;
	if (cte == INB_CTE_BASE64) {
		d->b64 = EVP_ENCODE_CTX_new();
		if (!d->b64)
			return SC_ENOMEM;
		EVP_DecodeInit(d->b64);
	}
	return SC_OK;
}

void inb_tdec_free(struct inb_tdec *d)
{
	if (d->b64)
		EVP_ENCODE_CTX_free(d->b64);
	d->b64 = NULL;
	sc_buf_free(&d->qp_wsb);
	sc_buf_free(&d->b64in);
}

/* Text of a new line: the line end held before it is written first. */
static int put(struct inb_tdec *d, const char *s, size_t n, struct sc_buf *out)
{
	if (d->pending_eol) {
		d->pending_eol = 0;
		if (sc_buf_add(out, "\n", 1))
			return SC_ENOMEM;
	}
	return sc_buf_add(out, s, n);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int qp_flush_ws(struct inb_tdec *d, struct sc_buf *out)
{
	int rc = d->qp_wsb.len ? put(d, d->qp_wsb.p, d->qp_wsb.len, out) : SC_OK;
	d->qp_wsb.len = 0;
	return rc;
}

/* One byte of quoted-printable. Blanks are held until something other
 * than a line end follows them (RFC 2045 §6.7 rule 3: trailing blanks
 * are transport padding); a huge run of them is let through rather than
 * held without bound. */
static int qp_byte(struct inb_tdec *d, char c, struct sc_buf *out)
{
	int blank = c == ' ' || c == '\t';
	switch (d->qp_state) {
	case QP_EQ:
	case QP_EQ_WS:
		if (blank && d->qp_wsb.len < 4096) {
			d->qp_state = QP_EQ_WS;
			return sc_buf_add(&d->qp_wsb, &c, 1);
		}
		if (d->qp_state == QP_EQ && hexval(c) >= 0) {
			d->qp_hex = c;
			d->qp_state = QP_HEX1;
			return SC_OK;
		}
		d->qp_state = QP_TEXT;
		if (put(d, "=", 1, out) || qp_flush_ws(d, out))
			return SC_ENOMEM;
		return qp_byte(d, c, out);
	case QP_HEX1:
		d->qp_state = QP_TEXT;
		if (hexval(c) >= 0) {
			char b = (char)(hexval(d->qp_hex) * 16 + hexval(c));
			return put(d, &b, 1, out);
		}
		if (put(d, "=", 1, out) || put(d, &d->qp_hex, 1, out))
			return SC_ENOMEM;
		return qp_byte(d, c, out);
	default:
		if (blank) {
			if (d->qp_wsb.len >= 4096 && qp_flush_ws(d, out))
				return SC_ENOMEM;
			return sc_buf_add(&d->qp_wsb, &c, 1);
		}
		if (qp_flush_ws(d, out))
			return SC_ENOMEM;
		if (c == '=') {
			d->qp_state = QP_EQ;
			return SC_OK;
		}
		return put(d, &c, 1, out);
	}
}

static int b64_isalpha(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

/* Hand the whole quads gathered so far to EVP. Slices of 512 characters
 * decode to at most 384 bytes (EVP keeps nothing back from whole quads
 * of valid characters), so a fixed window holds the output. */
static int b64_drain(struct inb_tdec *d, struct sc_buf *out)
{
	unsigned char win[384];
	for (size_t off = 0; off < d->b64in.len; off += 512) {
		size_t n = d->b64in.len - off < 512 ? d->b64in.len - off : 512;
		int outl = 0;
		EVP_DecodeUpdate(d->b64, win, &outl, (unsigned char *)d->b64in.p + off, (int)n);
		if (outl > 0 && sc_buf_add(out, win, (size_t)outl))
			return SC_ENOMEM;
	}
	d->b64in.len = 0;
	return SC_OK;
}

/* "=" ends a group: complete the quad, decode, and start EVP afresh so
 * that data after the padding (concatenated encodings) still decodes. */
static int b64_pad(struct inb_tdec *d, struct sc_buf *out)
{
	if (d->nquad >= 2) {
		while (d->nquad < 4)
			d->quad[d->nquad++] = '=';
		if (sc_buf_add(&d->b64in, d->quad, 4))
			return SC_ENOMEM;
	}
	d->nquad = 0;
	if (!d->b64in.len)
		return SC_OK;
	int rc = b64_drain(d, out);
	unsigned char tail[4];
	int outl = 0;
	EVP_DecodeFinal(d->b64, tail, &outl);
	EVP_DecodeInit(d->b64);
	return rc;
}

static int b64_feed(struct inb_tdec *d, const char *s, size_t n, struct sc_buf *out)
{
	size_t i = 0;
	while (i < n) {
		if (d->nquad == 0) {
			/* Fast path: the whole quads of a run of alphabet
			 * characters (a base64 line) go on in one piece. */
			size_t j = i;
			while (j < n && b64_isalpha((unsigned char)s[j]))
				j++;
			size_t whole = (j - i) & ~(size_t)3;
			if (whole) {
				if (sc_buf_add(&d->b64in, s + i, whole))
					return SC_ENOMEM;
				i += whole;
				continue;
			}
		}
		unsigned char c = (unsigned char)s[i++];
		if (c == '=') {
			if (b64_pad(d, out))
				return SC_ENOMEM;
			continue;
		}
		if (!b64_isalpha(c))
			continue; /* line breaks, blanks, junk */
		d->quad[d->nquad++] = (char)c;
		if (d->nquad == 4) {
			d->nquad = 0;
			if (sc_buf_add(&d->b64in, d->quad, 4))
				return SC_ENOMEM;
		}
	}
	return d->b64in.len >= 4096 ? b64_drain(d, out) : SC_OK;
}

int inb_tdec_feed(struct inb_tdec *d, const char *s, size_t n, struct sc_buf *out)
{
	switch (d->cte) {
	case INB_CTE_BASE64:
		return b64_feed(d, s, n, out);
	case INB_CTE_QP:
		for (size_t i = 0; i < n; i++)
			if (qp_byte(d, s[i], out))
				return SC_ENOMEM;
		return SC_OK;
	default:
		return n ? put(d, s, n, out) : SC_OK;
	}
}

int inb_tdec_eol(struct inb_tdec *d, struct sc_buf *out)
{
	switch (d->cte) {
	case INB_CTE_BASE64:
		return SC_OK;
	case INB_CTE_QP: {
		int soft = d->qp_state == QP_EQ || d->qp_state == QP_EQ_WS;
		int rc = SC_OK;
		if (d->qp_state == QP_HEX1)
			rc = put(d, "=", 1, out) ? SC_ENOMEM : put(d, &d->qp_hex, 1, out);
		d->qp_state = QP_TEXT;
		d->qp_wsb.len = 0; /* trailing blanks: transport padding */
		if (rc)
			return rc;
		if (soft)
			return SC_OK;
		break;
	}
	default:
		break;
	}
	/* Two line ends in a row: the first one is text now. */
	if (d->pending_eol && sc_buf_add(out, "\n", 1))
		return SC_ENOMEM;
	d->pending_eol = 1;
	return SC_OK;
}

int inb_tdec_finish(struct inb_tdec *d, int final_eol, struct sc_buf *out)
{
	int rc = SC_OK;
	if (d->cte == INB_CTE_BASE64) {
		rc = b64_pad(d, out);
	} else if (d->cte == INB_CTE_QP) {
		if (d->qp_state == QP_HEX1)
			rc = put(d, "=", 1, out) ? SC_ENOMEM : put(d, &d->qp_hex, 1, out);
		else if (d->qp_state != QP_TEXT)
			rc = put(d, "=", 1, out);
		if (rc == SC_OK)
			rc = qp_flush_ws(d, out);
		d->qp_state = QP_TEXT;
	}
	if (rc == SC_OK && final_eol && d->pending_eol)
		rc = sc_buf_add(out, "\n", 1);
	d->pending_eol = 0;
	return rc;
}

/* ---- RFC 2047 ------------------------------------------------------------ */

struct ew {
	const char *cs;
	size_t cslen;
	char enc; /* 'B' or 'Q' */
	const char *text;
	size_t tlen;
	size_t len; /* of the whole word */
};

static int ew_char(char c)
{
	return (unsigned char)c > 32 && (unsigned char)c < 127 && c != '?';
}

/* "=?charset?B|Q?text?=" at s; 1 when well formed. Each field stops at
 * the next "?", so scanning stays linear over a header. */
static int ew_parse(const char *s, size_t n, struct ew *w)
{
	size_t i = 2;
	w->cs = s + i;
	while (i < n && ew_char(s[i]))
		i++;
	w->cslen = (size_t)(s + i - w->cs);
	if (w->cslen == 0 || i + 3 > n || s[i] != '?')
		return 0;
	w->enc = (char)(s[i + 1] & ~0x20);
	if ((w->enc != 'B' && w->enc != 'Q') || s[i + 2] != '?')
		return 0;
	i += 3;
	w->text = s + i;
	while (i < n && ew_char(s[i]))
		i++;
	w->tlen = (size_t)(s + i - w->text);
	if (i + 2 > n || s[i] != '?' || s[i + 1] != '=')
		return 0;
	w->len = i + 2;
	return 1;
}

static int ew_bytes(const struct ew *w, struct sc_buf *raw)
{
	if (w->enc == 'B') {
		struct inb_tdec d;
		int rc = inb_tdec_init(&d, INB_CTE_BASE64);
		if (rc == SC_OK)
			rc = inb_tdec_feed(&d, w->text, w->tlen, raw);
		if (rc == SC_OK)
			rc = inb_tdec_finish(&d, 0, raw);
		inb_tdec_free(&d);
		return rc;
	}
	for (size_t i = 0; i < w->tlen; i++) {
		char c = w->text[i];
		if (c == '_')
			c = ' ';
		else if (c == '=' && i + 2 < w->tlen && hexval(w->text[i + 1]) >= 0 &&
		         hexval(w->text[i + 2]) >= 0) {
			c = (char)(hexval(w->text[i + 1]) * 16 + hexval(w->text[i + 2]));
			i += 2;
		}
		if (sc_buf_add(raw, &c, 1))
			return SC_ENOMEM;
	}
	return SC_OK;
}

static int is_blank_run(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return 0;
	return 1;
}

int inb_rfc2047_decode(const char *s, size_t n, struct sc_buf *out)
{
	struct sc_buf raw = {0}; /* bytes of the current run of words */
	const char *cs = NULL;   /* and their charset */
	size_t cslen = 0, text = 0, i = 0;
	int rc = SC_OK, in_run = 0;

	while (rc == SC_OK && i < n) {
		struct ew w;
		if (s[i] != '=' || i + 1 >= n || s[i + 1] != '?' || !ew_parse(s + i, n - i, &w)) {
			i++;
			continue;
		}
		int same = in_run && w.cslen == cslen && !strncasecmp(w.cs, cs, cslen);
		int gap_dropped = in_run && is_blank_run(s + text, i - text);
		if (!(gap_dropped && same) && in_run) {
			rc = inb_conv_append(cs, cslen, raw.p, raw.len, out);
			raw.len = 0;
		}
		if (rc == SC_OK && !gap_dropped)
			rc = inb_utf8_append(out, s + text, i - text);
		cs = w.cs;
		cslen = w.cslen;
		in_run = 1;
		if (rc == SC_OK)
			rc = ew_bytes(&w, &raw);
		i += w.len;
		text = i;
	}
	if (rc == SC_OK && in_run)
		rc = inb_conv_append(cs, cslen, raw.p, raw.len, out);
	if (rc == SC_OK)
		rc = inb_utf8_append(out, s + text, n - text);
	sc_buf_free(&raw);
	return rc;
}
