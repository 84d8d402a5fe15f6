/* Header encoding: RFC 2047 encoded words, RFC 5322 folding, phrases,
 * RFC 2231 MIME parameters, header-name checks and address formatting.
 *
 * libcurl 7.88.1 encodes none of this (peers-and-libcurl.md §3), so every
 * header value that leaves the connector goes through here.
 *
 * Limits used throughout, and why:
 *  - 78 columns per line (RFC 5322 §2.1.1 SHOULD): kept whenever the value
 *    can be broken; a single unbreakable ASCII word may pass it.
 *  - 998 octets per line (RFC 5322 MUST): never passed; an ASCII word too
 *    long for it is turned into encoded words, which can be split.
 *  - 75 characters per encoded word, and 76 per line that holds one
 *    (RFC 2047 §2).
 * Folding only ever inserts CRLF before existing whitespace (or before a
 * space placed between two encoded words, where whitespace carries no
 * meaning), so unfolding gives back exactly what the caller passed. */
#include "core.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LINE_SOFT 78   /* RFC 5322 SHOULD */
#define LINE_HARD 998  /* RFC 5322 MUST */
#define EW_MAX 75      /* RFC 2047 §2 */
#define EW_OVERHEAD 12 /* "=?utf-8?q?" + "?=" */
#define EW_LINE 76     /* RFC 2047 §2: a line holding an encoded word */
/* A whitespace run longer than this goes inside encoded words: folded
 * before it, it would leave a line that is mostly (or only) blanks. */
#define WS_MAX 32
/* An ASCII word longer than this cannot sit on a fold line (behind up to
 * WS_MAX blanks and the fold's own blank) within 998 octets. */
#define WORD_MAX (LINE_HARD - WS_MAX - 1)
/* Longest quoted string or atom a phrase keeps: it must fit a line of its
 * own after a fold (" " + unit <= 78); longer phrases use encoded words,
 * which split, rather than overlong lines. */
#define PHRASE_UNIT_MAX (LINE_SOFT - 1)

/* ---- growable output ------------------------------------------------ */

struct out {
	char *p;
	size_t len, cap;
	int oom;
	size_t col;  /* octets on the current line, header-name prefix included */
	int fold;    /* 0: build an unfolded string (phrases) */
	int ew_line; /* the current line holds an encoded word: 76, not 78 */
};

/* The longest the current line may grow: 76 once it carries an encoded
 * word (or is about to), else 78. */
static size_t line_max(const struct out *o, int ew)
{
	return ew || o->ew_line ? EW_LINE : LINE_SOFT;
}

static void put(struct out *o, const char *s, size_t n)
{
	if (o->oom)
		return;
	if (n >= SIZE_MAX / 2 - o->len) {
		o->oom = 1;
		return;
	}
	if (o->len + n + 1 > o->cap) {
		size_t cap = o->cap ? o->cap : 64;
		while (cap < o->len + n + 1)
			cap *= 2;
		char *p = realloc(o->p, cap);
		if (!p) {
			o->oom = 1;
			return;
		}
		o->p = p;
		o->cap = cap;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
	o->col += n;
}

static void putc_(struct out *o, char c)
{
	put(o, &c, 1);
}

/* Start a new line: a fold is CRLF followed by whitespace the caller
 * writes next, so the column restarts at 0. */
static void newline(struct out *o)
{
	put(o, "\r\n", 2);
	o->col = 0;
	o->ew_line = 0;
}

/* The finished string (possibly ""), or NULL after an allocation failure. */
static char *finish(struct out *o)
{
	if (!o->oom && !o->p)
		put(o, "", 0);
	if (o->oom) {
		free(o->p);
		return NULL;
	}
	return o->p;
}

/* ---- character classes ---------------------------------------------- */

static int is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* Controls other than HTAB cannot appear raw in any header (RFC 5322
 * VCHAR/WSP; RFC 6532 adds only UTF-8 >= 0x80). */
static int is_ctl(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* RFC 5322 atext, plus UTF-8 octets when SMTPUTF8 allows them (RFC 6532). */
static int is_atext(unsigned char c, int utf8_ok)
{
	if (c >= 0x80)
		return utf8_ok;
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* sc_utf8_len, or 1 for a byte that does not start a well-formed
 * sequence: keeps characters whole across encoded words without trusting
 * the input to be valid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t k = sc_utf8_len(p, n);
	return k ? k : 1;
}

/* Text that a decoder could take for an encoded word: "=?" and a later
 * "?=" anywhere in a word. RFC 2047 §5 only decodes whole words, but Python's email, many
 * webmails and Outlook also decode "x=?utf-8?q?CEO?=" inside a word. Such
 * text goes out as encoded words itself (Q escapes '=' and '?'), so the
 * reader sees exactly the characters the sender wrote, not what the
 * look-alike decodes to. */
static int looks_encoded(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i + 3 < n; i++)
		if (p[i] == '=' && p[i + 1] == '?')
			for (size_t j = i + 2; j + 1 < n; j++)
				if (p[j] == '?' && p[j + 1] == '=')
					return 1;
	return 0;
}

/* ---- RFC 2047 encoded words ----------------------------------------- */

/* Q is readable for mostly-ASCII text. In a phrase only the §5(3) set may
 * stay literal; in unstructured text (§5(1)) any printable but = ? _. */
static int q_literal(unsigned char c, int phrase)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	if (phrase)
		return c && strchr("!*+-/", c) != NULL;
	return c > 0x20 && c < 0x7f && c != '=' && c != '?' && c != '_';
}

static size_t q_len(const unsigned char *s, size_t n, int phrase)
{
	size_t q = 0;
	for (size_t i = 0; i < n; i++)
		q += (s[i] == ' ' || q_literal(s[i], phrase)) ? 1 : 3;
	return q;
}

static void q_put(struct out *o, const unsigned char *s, size_t n, int phrase)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		if (s[i] == ' ') {
			putc_(o, '_'); /* §4.2(2): "_" is one octet for a space */
		} else if (q_literal(s[i], phrase)) {
			putc_(o, (char)s[i]);
		} else {
			char e[3] = {'=', hex[s[i] >> 4], hex[s[i] & 15]};
			put(o, e, 3);
		}
	}
}

static size_t b_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

static void b_put(struct out *o, const unsigned char *s, size_t n)
{
	unsigned char tmp[EW_MAX + 1]; /* one word's text: n <= 45 octets */
	int k = EVP_EncodeBlock(tmp, s, (int)n);
	put(o, (const char *)tmp, (size_t)k);
}

/* The encoded length of the character at s in the chosen encoding. */
static size_t char_cost(const unsigned char *s, size_t clen, int use_b, int phrase)
{
	return use_b ? b_len(clen) : q_len(s, clen, phrase);
}

/* Write one encoded word of at most `budget` characters, taking whole
 * characters from s[i..n); returns the index after the last one taken.
 * The caller guarantees room for at least one character. */
static size_t ew_one(struct out *o, const unsigned char *s, size_t i, size_t n, size_t budget,
                     int use_b, int phrase)
{
	size_t room = budget - EW_OVERHEAD, end = i, used = 0;
	while (end < n) {
		size_t c = utf8_len(s + end, n - end);
		size_t cost = use_b ? b_len(end + c - i) - used : q_len(s + end, c, phrase);
		if (used + cost > room && end > i)
			break;
		used += cost;
		end += c;
	}
	put(o, use_b ? "=?utf-8?b?" : "=?utf-8?q?", 10);
	if (use_b)
		b_put(o, s + i, end - i);
	else
		q_put(o, s + i, end - i, phrase);
	put(o, "?=", 2);
	o->ew_line = 1;
	return end;
}

/* Encode s[0..n) as encoded words separated by single spaces (whitespace
 * between encoded words is not part of the text, RFC 2047 §6.2). The
 * first word follows `sep` (the literal whitespace before the group, or
 * nothing at the start of the value). With o->fold, words are sized to
 * the room left on the line and a fold comes before a word that would
 * not fit. Q or B is chosen once per run: Q unless it is more than a
 * quarter longer than B. Mostly-Latin text stays readable in Q, and spam
 * filters score base64 for text that did not need it (SpamAssassin's
 * FROM_EXCESS_BASE64); CJK, emoji and the like are shorter in B. */
static void ew_run(struct out *o, const char *sep, size_t seplen, const unsigned char *s, size_t n,
                   int phrase)
{
	int use_b = q_len(s, n, phrase) * 4 > b_len(n) * 5;
	size_t i = 0;
	while (i < n) {
		size_t c = utf8_len(s + i, n - i);
		size_t need = EW_OVERHEAD + char_cost(s + i, c, use_b, phrase);
		if (o->fold && o->col + seplen + need > EW_LINE) {
			newline(o);
			if (!seplen) /* at the start of the value: add the blank */
				putc_(o, ' ');
		}
		put(o, sep, seplen);
		size_t budget = EW_MAX;
		if (o->fold && EW_LINE - o->col < budget)
			budget = EW_LINE - o->col;
		i = ew_one(o, s, i, n, budget, use_b, phrase);
		sep = " ";
		seplen = 1;
	}
}

/* ---- unstructured values -------------------------------------------- */

/* The value split into alternating runs of whitespace and words; `enc`
 * marks the runs that must go inside encoded words. */
struct tok {
	size_t off, len;
	int ws, enc;
};

static struct tok *tokenize(const char *v, size_t n, size_t *ntok)
{
	size_t cnt = 0;
	for (size_t i = 0; i < n; i++)
		if (i == 0 || is_wsp((unsigned char)v[i]) != is_wsp((unsigned char)v[i - 1]))
			cnt++;
	struct tok *t = calloc(cnt ? cnt : 1, sizeof(*t));
	if (!t)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		int ws = is_wsp((unsigned char)v[i]);
		if (i == 0 || ws != t[k - 1].ws)
			t[k++] = (struct tok){.off = i, .ws = ws};
		t[k - 1].len++;
	}
	*ntok = cnt;
	return t;
}

static int word_needs_ew(const unsigned char *p, size_t n, int utf8_ok)
{
	if (n > WORD_MAX || looks_encoded(p, n))
		return 1;
	for (size_t i = 0; i < n; i++)
		if (is_ctl(p[i]) || (p[i] >= 0x80 && !utf8_ok))
			return 1;
	return 0;
}

/* A long blank run drags its neighbouring words into the encoded text
 * with it: an encoded word may not touch a plain word without a blank. */
static void mark_tokens(const char *v, struct tok *t, size_t nt, int utf8_ok)
{
	for (size_t i = 0; i < nt; i++)
		t[i].enc =
		    t[i].ws ? t[i].len > WS_MAX
		            : word_needs_ew((const unsigned char *)v + t[i].off, t[i].len, utf8_ok);
	for (size_t i = 0; i < nt; i++) {
		if (!t[i].ws || !t[i].enc)
			continue;
		if (i > 0)
			t[i - 1].enc = 1;
		if (i + 1 < nt)
			t[i + 1].enc = 1;
	}
}

/* End (exclusive) of the encoded group starting at token i: blanks
 * between two encoded words join the group, because blanks between
 * encoded words vanish on decoding; a trailing blank run joins too so it
 * survives. */
static size_t group_end(const struct tok *t, size_t nt, size_t i)
{
	size_t j = i + 1;
	for (;;) {
		if (j < nt && t[j].enc)
			j++;
		else if (j + 1 < nt && t[j].ws && t[j + 1].enc)
			j += 2;
		else
			break;
	}
	if (j + 1 == nt && t[j].ws)
		j++;
	return j;
}

/* A plain word with the blanks before it (and, for the last word, after
 * it): folded before the blanks when the line would pass 78 columns. At
 * the start of the value only a 998-octet overflow forces a fold, so a
 * short ASCII value comes back unchanged. */
static void plain_chunk(struct out *o, const char *sep, size_t k, const char *w, size_t len)
{
	size_t total = k + len;
	int fold;
	if (o->len > 0 || k > 0)
		fold = o->col + total > line_max(o, 0);
	else
		fold = o->col + total > LINE_HARD;
	if (fold) {
		newline(o);
		if (!k)
			putc_(o, ' ');
	}
	put(o, sep, k);
	put(o, w, len);
}

static void emit_tokens(struct out *o, const char *v, const struct tok *t, size_t nt)
{
	const char *sep = "";
	size_t k = 0, i = 0;
	while (i < nt) {
		int lead = i == 0 && t[0].ws && nt > 1 && t[1].enc;
		if (t[i].enc || lead) {
			size_t j = group_end(t, nt, i);
			size_t end = t[j - 1].off + t[j - 1].len;
			ew_run(o, sep, k, (const unsigned char *)v + t[i].off, end - t[i].off, 0);
			i = j;
		} else if (t[i].ws && nt > 1) {
			sep = v + t[i].off;
			k = t[i].len;
			i++;
			continue;
		} else {
			size_t off = t[i].off, len = t[i].len;
			if (i + 2 == nt && t[i + 1].ws)
				len += t[++i].len; /* the last word takes the tail */
			plain_chunk(o, sep, k, v + off, len);
			i++;
		}
		sep = "";
		k = 0;
	}
}

int sc_header_name_valid(const char *name)
{
	if (!name || !*name)
		return 0;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 33 || *p > 126 || *p == ':')
			return 0;
	return 1;
}

char *sc_header_encode_unstructured(const char *name, const char *value, int utf8_ok)
{
	if (!value)
		value = "";
	size_t n = strlen(value), nt = 0;
	struct out o = {.fold = 1, .col = (name ? strlen(name) : 0) + 2};
	struct tok *t = tokenize(value, n, &nt);
	if (!t)
		return NULL;
	mark_tokens(value, t, nt, utf8_ok);
	emit_tokens(&o, value, t, nt);
	free(t);
	return finish(&o);
}

/* ---- phrases (display names) ---------------------------------------- */

/* Atoms separated by single spaces, each short enough to fold around:
 * written bare. Anything else (specials, leading, trailing or doubled
 * blanks) needs a quoted string to keep its exact text. */
static int bare_ok(const char *s, size_t n, int utf8_ok)
{
	size_t word = 0;
	if (!n || s[0] == ' ' || s[n - 1] == ' ')
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == ' ' && s[i - 1] != ' ') {
			word = 0;
		} else if (!is_atext((unsigned char)s[i], utf8_ok) || ++word > PHRASE_UNIT_MAX) {
			return 0;
		}
	}
	return 1;
}

static size_t quoted_len(const char *s, size_t n)
{
	size_t q = n + 2;
	for (size_t i = 0; i < n; i++)
		q += s[i] == '"' || s[i] == '\\';
	return q;
}

static void put_quoted(struct out *o, const char *s, size_t n)
{
	putc_(o, '"');
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"' || s[i] == '\\')
			putc_(o, '\\');
		putc_(o, s[i]);
	}
	putc_(o, '"');
}

static int phrase_needs_ew(const char *s, size_t n, int utf8_ok)
{
	if (looks_encoded((const unsigned char *)s, n))
		return 1; /* even in a quoted string: decoders look there too */
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (is_ctl(c) || (c >= 0x80 && !utf8_ok))
			return 1;
	}
	return 0;
}

char *sc_header_encode_phrase(const char *phrase, int utf8_ok)
{
	if (!phrase)
		phrase = "";
	size_t n = strlen(phrase);
	struct out o = {.fold = 0};
	if (phrase_needs_ew(phrase, n, utf8_ok))
		ew_run(&o, "", 0, (const unsigned char *)phrase, n, 1);
	else if (bare_ok(phrase, n, utf8_ok))
		put(&o, phrase, n);
	else if (quoted_len(phrase, n) <= PHRASE_UNIT_MAX)
		put_quoted(&o, phrase, n);
	else /* too long to quote on one line: encoded words split */
		ew_run(&o, "", 0, (const unsigned char *)phrase, n, 1);
	return finish(&o);
}

/* ---- addresses -------------------------------------------------------- */

char *sc_address_format(const struct sc_address *a, int utf8_ok)
{
	if (!a || !a->addr)
		return NULL;
	if (!a->display || !*a->display)
		return sc_asprintf("%s", a->addr);
	char *ph = sc_header_encode_phrase(a->display, utf8_ok);
	if (!ph)
		return NULL;
	char *s = sc_asprintf("%s <%s>", ph, a->addr);
	free(ph);
	return s;
}

/* One fold unit of an address list; `comma` is glued to it so that a
 * fold never starts a line with ",". A unit that does not fit after the
 * header name moves to a line of its own (" " + unit). */
static void put_unit(struct out *o, const char *s, size_t n, int comma)
{
	size_t w = n + (comma ? 1 : 0);
	size_t max = line_max(o, looks_encoded((const unsigned char *)s, n));
	if (!o->len) {
		if (o->col + w > max && 1 + w <= max) {
			newline(o);
			putc_(o, ' ');
		}
	} else if (o->col + 1 + w > max) {
		newline(o);
		putc_(o, ' ');
	} else {
		putc_(o, ' ');
	}
	put(o, s, n);
	if (looks_encoded((const unsigned char *)s, n))
		o->ew_line = 1;
	if (comma)
		putc_(o, ',');
}

/* Split a formatted address at blanks outside quoted strings: those are
 * the places RFC 5322 allows folding without changing the meaning. */
static void put_units(struct out *o, const char *s, size_t n, int comma)
{
	size_t start = 0;
	int inq = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && inq && s[i] == '\\' && i + 1 < n) {
			i++;
			continue;
		}
		if (i < n && s[i] == '"')
			inq = !inq;
		if (i < n && (inq || s[i] != ' '))
			continue;
		if (i > start)
			put_unit(o, s + start, i - start, comma && i == n);
		else if (i == n && comma && o->len)
			putc_(o, ','); /* trailing blank: keep the separator */
		start = i + 1;
	}
}

char *sc_address_list_format(const char *name, const struct sc_address_list *l, int utf8_ok)
{
	struct out o = {.fold = 1, .col = (name ? strlen(name) : 0) + 2};
	for (size_t i = 0; l && i < l->n; i++) {
		char *one = sc_address_format(&l->v[i], utf8_ok);
		if (!one) {
			o.oom = 1;
			break;
		}
		put_units(&o, one, strlen(one), i + 1 < l->n);
		free(one);
	}
	return finish(&o);
}

/* ---- RFC 2231 MIME parameters ---------------------------------------- */

/* RFC 2231 attribute-char: the octets an extended value may carry as is. */
static int attr_char(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c && strchr("!#$&+-.^_`|~", c) != NULL;
}

/* Length and text of the next unit of a parameter value that must not be
 * split across continuations: a quoted-string character with its
 * backslash, or a whole UTF-8 character as %XX triplets (decoders that
 * decode each section on its own would otherwise break the character). */
static size_t unit_len(const unsigned char *s, size_t n, int ext, size_t *in)
{
	if (!ext) {
		*in = 1;
		return (s[0] == '"' || s[0] == '\\') ? 2 : 1;
	}
	*in = utf8_len(s, n);
	size_t w = 0;
	for (size_t k = 0; k < *in; k++)
		w += attr_char(s[k]) ? 1 : 3;
	return w;
}

static void put_units_value(struct out *o, const unsigned char *s, size_t n, int ext)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		if (!ext) {
			if (s[i] == '"' || s[i] == '\\')
				putc_(o, '\\');
			putc_(o, (char)s[i]);
		} else if (attr_char(s[i])) {
			putc_(o, (char)s[i]);
		} else {
			char e[3] = {'%', hex[s[i] >> 4], hex[s[i] & 15]};
			put(o, e, 3);
		}
	}
}

/* One section: "param*N*=" (extended) or "param*N=\"...\"" (quoted),
 * with as many whole units as fit a line that starts with the fold's
 * blank and ends with ";". Returns the input consumed. */
static size_t put_section(struct out *o, const char *param, unsigned idx, const unsigned char *s,
                          size_t n, int ext)
{
	char *head = sc_asprintf("%s*%u%s%s", param, idx, ext ? "*=" : "=\"",
	                         ext && idx == 0 ? "utf-8''" : "");
	if (!head) {
		o->oom = 1;
		return n;
	}
	size_t fixed = 1 + strlen(head) + (ext ? 0 : 1) + 1, used = 0, i = 0;
	size_t room = fixed < LINE_SOFT ? LINE_SOFT - fixed : 0;
	while (i < n) {
		size_t in, w = unit_len(s + i, n - i, ext, &in);
		if (used + w > room && i > 0)
			break;
		used += w;
		i += in;
	}
	put(o, head, strlen(head));
	free(head);
	put_units_value(o, s, i, ext);
	if (!ext)
		putc_(o, '"');
	return i;
}

static int value_plain(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return 0;
	return 1;
}

/* The whole value's width in the chosen form. */
static size_t value_width(const unsigned char *s, size_t n, int ext)
{
	size_t w = 0, in;
	for (size_t i = 0; i < n; i += in)
		w += unit_len(s + i, n - i, ext, &in);
	return w;
}

/* `param="value"` when it is printable ASCII (without "=?"), else the RFC 2231 form
 * `param*=utf-8''%..`. A value too long for one line becomes numbered
 * sections joined by ";" CRLF SP. Widths assume the parameter starts a
 * line of its own after a fold (";" CRLF SP param=...), as a MIME header
 * with a parameter this long will put it. */
char *sc_mime_param_encode(const char *param, const char *value)
{
	if (!param || !value)
		return NULL;
	const unsigned char *s = (const unsigned char *)value;
	size_t n = strlen(value), plen = strlen(param);
	/* "=?" in a quoted value is decoded as RFC 2047 by Outlook and
	 * Python's email: the RFC 2231 form shows it literally. */
	int ext = !value_plain(s, n) || looks_encoded(s, n);
	struct out o = {.fold = 0};
	size_t single = 1 + plen + (ext ? 9 : 3) + value_width(s, n, ext);
	if (single <= LINE_SOFT) {
		put(&o, param, plen);
		put(&o, ext ? "*=utf-8''" : "=\"", ext ? 9 : 2);
		put_units_value(&o, s, n, ext);
		if (!ext)
			putc_(&o, '"');
		return finish(&o);
	}
	size_t i = 0;
	for (unsigned idx = 0; i < n && !o.oom; idx++) {
		if (idx)
			put(&o, ";\r\n ", 4);
		i += put_section(&o, param, idx, s + i, n - i, ext);
	}
	return finish(&o);
}
