/* Body transfer encodings: choosing one, base64 and quoted-printable.
 *
 * libcurl enforces no line length (peers-and-libcurl.md §3, "Line
 * length"), and HTML bodies routinely carry lines far past 998 octets, so
 * the choice of encoding is what keeps a message within RFC 5322. */
#include "body_stream.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LINE_HARD 998 /* RFC 5322 §2.1.1, CRLF not counted */
#define QP_LINE 76    /* RFC 2045 §6.7(5), the soft-break "=" counted */
#define B64_IN 57     /* 57 octets -> 76 base64 characters */
#define QP_AHEAD 8    /* octets qp_must_escape and qp_break look ahead */

/* Octets quoted-printable cannot carry literally. */
static int qp_escaped(unsigned char c)
{
	return c >= 0x80 || c == '=' || (c < 0x20 && c != '\t' && c != '\r' && c != '\n') ||
	       c == 0x7f;
}

/* "7bit" only when the text may go as is: ASCII, no NUL, no bare CR or
 * bare LF (RFC 5321 §2.3.8 forbids them; a bare LF also slips past
 * dot-stuffing, the shape of SMTP smuggling), no line past 998 octets. Otherwise
 * quoted-printable while it stays readable and small (fewer than 1 in 6
 * octets escaped: QP costs 3 per escape, base64 4/3 per octet, so past
 * about 1/6 base64 is both smaller and safer), else base64. */
/* With `canon`, the verdict for the text as it will be once every line
 * break is CRLF (sc_buf_add_crlf), without making that copy. */
static const char *encoding_of(const char *text, size_t len, int canon)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t esc = 0, line = 0, clen = 0;
	int seven = 1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];
		int crlf = c == '\r' && i + 1 < len && s[i + 1] == '\n';
		if (canon && (c == '\r' || c == '\n')) {
			line = 0;
			clen += 2;
			i += (size_t)crlf;
			continue;
		}
		clen++;
		esc += qp_escaped(c);
		if (c >= 0x80 || c == 0 || (c == '\r' && !crlf))
			seven = 0;
		if (c == '\n' && (i == 0 || s[i - 1] != '\r'))
			seven = 0; /* goes out as is: must already be CRLF */
		if (c == '\n')
			line = 0;
		else if (c != '\r' && ++line > LINE_HARD)
			seven = 0;
	}
	if (seven)
		return "7bit";
	return esc * 6 < clen ? "quoted-printable" : "base64";
}

const char *sc_body_encoding(const char *text, size_t len)
{
	return encoding_of(text, len, 0);
}

const char *core_text_encoding(const char *text, size_t len)
{
	return encoding_of(text, len, 1);
}

char *sc_base64_lines(const unsigned char *data, size_t len, size_t *outlen)
{
	size_t lines = (len + B64_IN - 1) / B64_IN;
	if (lines > (SIZE_MAX - 1) / (4 * B64_IN / 3 + 2))
		return NULL;
	char *out = malloc(lines * (4 * B64_IN / 3 + 2) + 1);
	if (!out)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < len; i += B64_IN) {
		size_t n = len - i < B64_IN ? len - i : B64_IN;
		/* EVP_EncodeBlock adds no newlines and NUL-terminates, which
		 * the next line (or the final NUL) overwrites. */
		o += (size_t)EVP_EncodeBlock((unsigned char *)out + o, data + i, (int)n);
		out[o++] = '\r';
		out[o++] = '\n';
	}
	out[o] = '\0';
	if (outlen)
		*outlen = o;
	return out;
}

/* ---- quoted-printable ----------------------------------------------- */

/* The encoder's state between calls (core_qp_step streams a body
 * through it a window at a time). */
struct qp {
	struct sc_buf *out;
	size_t col;
	int oom;
};

static void qp_put(struct qp *q, const char *s, size_t n)
{
	if (!q->oom && sc_buf_add(q->out, s, n))
		q->oom = 1;
	q->col += n;
}

/* Where a line break starts at s[i]: 2 for CRLF, 1 for a bare LF (both
 * become CRLF hard breaks), 0 otherwise. A bare CR is data, sent as =0D,
 * never as a line break that some relays would see and others not. */
static size_t qp_break(const unsigned char *s, size_t i, size_t len)
{
	if (s[i] == '\n')
		return 1;
	if (s[i] == '\r' && i + 1 < len && s[i + 1] == '\n')
		return 2;
	return 0;
}

/* Whether s[i] must be written as =XX. Beyond RFC 2045's own rules
 * (non-ASCII, "=", controls, a blank a line break or the end follows),
 * two line starts are escaped for mail paths that are not transparent:
 * "." (a relay that fails to dot-stuff would end or alter DATA there)
 * and "From " (mbox stores rewrite it as ">From "). Escaping them costs
 * two octets and changes nothing for a conforming reader. */
static int qp_must_escape(const unsigned char *s, size_t i, size_t len, int at_start)
{
	unsigned char c = s[i];
	if (c == ' ' || c == '\t')
		return i + 1 == len || qp_break(s, i + 1, len) > 0;
	if (qp_escaped(c) || c == '\r')
		return 1;
	if (at_start && c == '.')
		return 1;
	return at_start && c == 'F' && len - i >= 5 && memcmp(s + i, "From ", 5) == 0;
}

/* Is s[i] the last octet before a hard break or the end? Then its line
 * may use all 76 columns, as no soft-break "=" has to follow it. */
static int qp_last(const unsigned char *s, size_t i, size_t len)
{
	return i + 1 == len || qp_break(s, i + 1, len) > 0;
}

static void qp_octet(struct qp *q, const unsigned char *s, size_t i, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	int esc = qp_must_escape(s, i, len, q->col == 0);
	size_t w = esc ? 3 : 1;
	size_t limit = qp_last(s, i, len) ? QP_LINE : QP_LINE - 1;
	if (q->col + w > limit) {
		qp_put(q, "=\r\n", 3);
		q->col = 0;
		esc = qp_must_escape(s, i, len, 1); /* now at a line start */
	}
	if (esc) {
		char e[3] = {'=', hex[s[i] >> 4], hex[s[i] & 15]};
		qp_put(q, e, 3);
	} else {
		qp_put(q, (const char *)s + i, 1);
	}
}

/* Encode s[i..) while i < upto, looking ahead at most QP_AHEAD octets
 * (a CRLF, "From "); returns where it stopped. With upto == len the whole
 * rest, end of text included. */
static size_t qp_run(struct qp *q, const unsigned char *s, size_t len, size_t upto)
{
	size_t i = 0;
	while (i < upto) {
		size_t br = qp_break(s, i, len);
		if (br) {
			qp_put(q, "\r\n", 2);
			q->col = 0;
			i += br;
			continue;
		}
		qp_octet(q, s, i, len);
		i++;
	}
	return i;
}

size_t core_qp_step(struct sc_buf *out, size_t *col, const char *data, size_t len, int final)
{
	struct qp q = {out, *col, 0};
	size_t upto = final ? len : len > QP_AHEAD ? len - QP_AHEAD : 0;
	size_t used = qp_run(&q, (const unsigned char *)data, len, upto);
	*col = q.col;
	return q.oom ? (size_t)-1 : used;
}

char *sc_qp_encode(const char *data, size_t len, size_t *outlen)
{
	struct sc_buf b = {0};
	size_t col = 0;
	if (sc_buf_add(&b, "", 0) || core_qp_step(&b, &col, data, len, 1) == (size_t)-1) {
		sc_buf_free(&b);
		return NULL;
	}
	if (outlen)
		*outlen = b.len;
	return sc_buf_take(&b);
}
