/* The canonical forms a signature is computed over (doc/signatures.md):
 * the body hash, the header section of a message read as a stream, a
 * header value unfolded, and the tags of the signature header. All of
 * it reads untrusted mail (verify, serve): lengths travel with pointers,
 * any byte may come, memory is bounded (tests/fuzz/fuzz_verify.c). */
#include "signature.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the body --------------------------------------------------------- */

int sig_body_init(struct sig_body *b)
{
	memset(b, 0, sizeof *b);
	b->md = EVP_MD_CTX_new();
	if (!b->md || EVP_DigestInit_ex(b->md, EVP_sha256(), NULL) != 1) {
		sig_body_free(b);
		return -1;
	}
	return 0;
}

static void hash(struct sig_body *b, const char *p, size_t n)
{
	if (n && !b->failed && EVP_DigestUpdate(b->md, p, n) != 1)
		b->failed = 1;
}

/* The CRLFs held back: a line other than an empty one followed them, so
 * they were not trailing. */
static void release(struct sig_body *b)
{
	static const char crlfs[] = "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n";
	while (b->held) {
		size_t k = b->held < 8 ? b->held : 8;
		hash(b, crlfs, 2 * k);
		b->held -= k;
	}
}

void sig_body_update(struct sig_body *b, const char *p, size_t n)
{
	size_t run = 0; /* p[i - run .. i): ordinary octets not hashed yet */
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (c != '\r' && c != '\n' && !b->cr) {
			if (!run)
				release(b);
			run++;
			continue;
		}
		hash(b, p + i - run, run);
		run = 0;
		if (c == '\n') { /* after a CR or bare: one line end */
			b->cr = 0;
			b->held++;
			continue;
		}
		if (b->cr) { /* the CR before was not followed by LF */
			release(b);
			hash(b, "\r", 1);
		}
		b->cr = 0;
		if (c == '\r') {
			b->cr = 1;
		} else {
			release(b);
			run = 1;
		}
	}
	hash(b, p + n - run, run);
}

int sig_body_final(struct sig_body *b, unsigned char out[32])
{
	if (b->cr) {
		release(b);
		hash(b, "\r", 1);
	}
	hash(b, "\r\n", 2); /* the last line's end; trailing empty lines gone */
	unsigned int n = 0;
	int ok = b->md && !b->failed && EVP_DigestFinal_ex(b->md, out, &n) == 1 && n == 32;
	sig_body_free(b);
	return ok ? 0 : -1;
}

void sig_body_free(struct sig_body *b)
{
	EVP_MD_CTX_free(b->md);
	b->md = NULL;
}

/* ---- a message as a stream ------------------------------------------- */

int sig_reader_init(struct sig_reader *r)
{
	memset(r, 0, sizeof *r);
	return sig_body_init(&r->body);
}

void sig_reader_free(struct sig_reader *r)
{
	sc_buf_free(&r->head);
	sig_body_free(&r->body);
}

/* The header section ends at its first empty line: the head is CRLF
 * alone, or ends with CRLF CRLF. */
static int head_done(const struct sc_buf *h)
{
	return (h->len == 2 && !memcmp(h->p, "\r\n", 2)) ||
	       (h->len >= 4 && !memcmp(h->p + h->len - 4, "\r\n\r\n", 4));
}

void sig_reader_feed(struct sig_reader *r, const char *p, size_t n)
{
	size_t i = 0;
	while (i < n && !r->in_body) {
		if (r->too_big) {
			i++; /* still looking for the end of the header section */
			continue;
		}
		/* a bare LF is CRLF, as in the body */
		int bare = p[i] == '\n' && !(r->head.len && r->head.p[r->head.len - 1] == '\r');
		if (r->head.len + 2 > SIG_HEADERS_MAX) {
			r->too_big = 1;
			continue;
		}
		if (sc_buf_add(&r->head, bare ? "\r\n" : p + i, bare ? 2 : 1)) {
			r->too_big = 1; /* out of memory: reported as unreadable */
			continue;
		}
		i++;
		if (p[i - 1] == '\n' && head_done(&r->head))
			r->in_body = 1;
	}
	if (i < n)
		sig_body_update(&r->body, p + i, n - i);
}

/* ---- header fields --------------------------------------------------- */

/* One field of head[at..len): its name's length, where its value starts
 * and where the field ends (past its last line's CRLF). 0: not a field
 * (a line with no ':' or starting with a blank). */
static size_t field_at(const char *h, size_t len, size_t at, size_t *value, size_t *end)
{
	size_t e = at;
	for (;;) { /* the field's lines: the first, then continuations */
		while (e < len && h[e] != '\n')
			e++;
		if (e < len)
			e++;
		if (e >= len || (h[e] != ' ' && h[e] != '\t'))
			break;
	}
	*end = e;
	const char *lf = memchr(h + at, '\n', e - at);
	const char *colon = memchr(h + at, ':', lf ? (size_t)(lf - (h + at)) : e - at);
	if (!colon || h[at] == ' ' || h[at] == '\t' || h[at] == '\r')
		return 0;
	size_t nlen = (size_t)(colon - (h + at));
	*value = nlen + 1 + at;
	while (nlen && (h[at + nlen - 1] == ' ' || h[at + nlen - 1] == '\t'))
		nlen--; /* "Subject :" (RFC 5322 obsolete syntax) */
	return nlen;
}

size_t sig_unfold_trim(char *v, size_t n)
{
	size_t w = 0;
	for (size_t r = 0; r < n; r++)
		if (v[r] != '\r' && v[r] != '\n')
			v[w++] = v[r];
	while (w && (v[w - 1] == ' ' || v[w - 1] == '\t'))
		w--;
	size_t lead = 0;
	while (lead < w && (v[lead] == ' ' || v[lead] == '\t'))
		lead++;
	memmove(v, v + lead, w - lead);
	v[w - lead] = '\0';
	return w - lead;
}

char *sig_header_value(const char *head, size_t len, const char *name, size_t *count, size_t *vlen)
{
	size_t want = strlen(name), at = 0, value = 0, end = 0;
	char *out = NULL;
	*count = 0;
	while (at < len) {
		size_t nlen = field_at(head, len, at, &value, &end);
		if (nlen == want && !strncasecmp(head + at, name, want) && ++*count == 1) {
			out = malloc(end - value + 1);
			if (!out)
				return NULL;
			memcpy(out, head + value, end - value);
			*vlen = sig_unfold_trim(out, end - value);
		}
		at = end;
	}
	return out;
}

int sig_header_line(struct sc_buf *out, const char *name, const char *value, size_t vlen)
{
	return sc_buf_str(out, name) || sc_buf_add(out, ":", 1) || sc_buf_add(out, value, vlen) ||
	       sc_buf_add(out, "\r\n", 2);
}

/* ---- tags ------------------------------------------------------------ */

void sig_tags_free(struct sig_tags *t)
{
	free(t->copy);
	memset(t, 0, sizeof *t);
}

static int blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Printable for a message: at most 20 octets, others as '?'. */
static void quote(char *dst, size_t cap, const char *s, size_t n)
{
	size_t w = 0;
	for (size_t i = 0; i < n && w + 1 < cap && i < 20; i++)
		dst[w++] = s[i] > 0x20 && s[i] < 0x7f ? s[i] : '?';
	dst[w] = '\0';
}

int sig_tags_parse(const char *value, size_t len, struct sig_tags *t, char *why, size_t whylen)
{
	static const char *const names[] = {"v", "a", "t", "bh", "h", "hh", "b"};
	memset(t, 0, sizeof *t);
	t->copy = malloc(len + 1);
	if (!t->copy) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	/* Blanks are not part of any value (folds may fall inside b= and
	 * bh=, as in DKIM): drop them all, then split at ';'. */
	size_t w = 0;
	for (size_t i = 0; i < len; i++) {
		if (value[i] == '\0') {
			snprintf(why, whylen, "malformed tag list: it holds a NUL byte");
			sig_tags_free(t);
			return -1;
		}
		if (!blank(value[i]))
			t->copy[w++] = value[i];
	}
	t->copy[w] = '\0';
	const char **slot[] = {&t->v, &t->a, &t->t, &t->bh, &t->h, &t->hh, &t->b};
	char *p = t->copy;
	while (*p) {
		char *semi = strchr(p, ';');
		if (semi)
			*semi = '\0';
		if (*p) {
			char *eq = strchr(p, '=');
			char q[24];
			if (!eq || eq == p) {
				quote(q, sizeof q, p, strlen(p));
				snprintf(why, whylen, "malformed tag \"%s\": expected name=value",
				         q);
				sig_tags_free(t);
				return -1;
			}
			*eq = '\0';
			size_t k = 0;
			while (k < sizeof names / sizeof names[0] && strcmp(p, names[k]))
				k++;
			quote(q, sizeof q, p, strlen(p));
			if (k == sizeof names / sizeof names[0]) {
				snprintf(why, whylen,
				         "malformed tag \"%s\": not a tag of this signature", q);
				sig_tags_free(t);
				return -1;
			}
			if (*slot[k]) {
				snprintf(why, whylen, "malformed tag \"%s\": it appears twice", q);
				sig_tags_free(t);
				return -1;
			}
			*slot[k] = eq + 1;
		}
		if (!semi)
			break;
		p = semi + 1;
	}
	return 0;
}
