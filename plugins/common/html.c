/*
 * HTML detection, HTML-to-text rendering and sanitising (see html.h).
 *
 * Everything that reads markup goes through libxml2's HTML parser and
 * works on its tree, never on the raw text with patterns, so that the
 * sanitiser and the text renderer see the same structure the serialiser
 * writes. Tree walks are loops, not recursion, so a deep document cannot
 * exhaust the C stack whatever depth limit the libxml2 in use has.
 *
 * The sanitiser's rules (what sc_html_sanitize keeps and removes):
 *  1. Elements dropped with all their content: script, iframe, frame,
 *     frameset, object, applet, form, input, button, select,
 *     textarea, option, optgroup, datalist, base, link, svg, math,
 *     template, noscript, param, and style/meta elements failing 4./5.
 *  2. Elements kept: the formatting, structure, table, list, link and
 *     image elements in keep_elems[] (plus html, head, body, title).
 *     Any other element (unknown ones, embed, xmp, noembed, marquee,
 *     video...) is unwrapped: the tag goes, its content stays and is checked. So no
 *     element reaches the output that a browser parses differently from
 *     libxml2 (raw-text and foreign-content elements).
 *  3. Attributes of kept elements: on* handlers, formaction, srcdoc,
 *     srcset, imagesrcset, ping and http-equiv are dropped; a URL-valued
 *     attribute (url_attrs[]) is dropped unless url_class() allows it:
 *     relative URLs, #fragments, http, https, mailto, cid, tel, and
 *     data:image/(png|gif|jpeg|webp). The scheme is read after removing
 *     all controls and blanks (browsers drop tab/CR/LF inside URLs);
 *     character references were already decoded by the parser, so the
 *     value checked is the value the reader's client sees. A style
 *     attribute is dropped when css_safe() rejects it.
 *  4. style elements are kept when css_safe() accepts their text: no
 *     expression(, javascript:, vbscript:, @import, behavior,
 *     -moz-binding, "</", and every url(...) passes 3., all after CSS
 *     comments are removed and CSS escapes decoded.
 *  5. meta: charset and http-equiv=Content-Type are rewritten to UTF-8
 *     (the output is UTF-8 whatever the input declared); name=... keeps
 *     only name and content (viewport, color-scheme); any other meta
 *     (refresh, set-cookie...) is dropped.
 *  6. Comments, processing instructions and CDATA outside style are
 *     dropped (a browser ends a comment at "--!>"); the doctype is
 *     kept as "html" with its public/system ids only when they hold no
 *     quote or angle bracket (a browser ends a doctype at '>' even inside
 *     quotes).
 */
#include "html.h"

#include <smtp-connector/message.h>

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/HTMLparser.h>
#include <libxml/HTMLtree.h>
#include <libxml/xmlsave.h>

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */
/* ------------------------------------------------------------------ */

/* A growing byte string; `oom` latches so callers check once at the end. */
struct sbuf {
	char *p;
	size_t len, cap;
	int oom;
};

static int sb_reserve(struct sbuf *b, size_t more)
{
	if (b->oom)
		return -1;
	if (more < b->cap - b->len)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap - b->len <= more) {
		if (cap > SIZE_MAX / 2) {
			b->oom = 1;
			return -1;
		}
		cap *= 2;
	}
	char *p = realloc(b->p, cap);
	if (!p) {
		b->oom = 1;
		return -1;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (sb_reserve(b, n) == 0) {
		memcpy(b->p + b->len, s, n);
		b->len += n;
		b->p[b->len] = '\0';
	}
}

static void sb_putc(struct sbuf *b, char c)
{
	sb_put(b, &c, 1);
}

/* The NUL-terminated string (never NULL unless out of memory). */
static char *sb_finish(struct sbuf *b)
{
	if (sb_reserve(b, 0) < 0) {
		free(b->p);
		b->p = NULL;
		return NULL;
	}
	b->p[b->len] = '\0';
	char *p = b->p;
	b->p = NULL;
	return p;
}

static int lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

static int name_is(const xmlChar *name, const char *lit)
{
	return name && xmlStrcasecmp(name, (const xmlChar *)lit) == 0;
}

static int name_in(const xmlChar *name, const char *const *list)
{
	for (; *list; list++)
		if (name_is(name, *list))
			return 1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Parsing                                                              */
/* ------------------------------------------------------------------ */

/* sc_utf8_len (message.h), but 0 for a NUL too: libxml2 stops there. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	return s[0] ? sc_utf8_len(s, n) : 0;
}

/* libxml2 copies invalid UTF-8 through to its output; the MIME part says
 * UTF-8, so bad bytes (and NULs) become U+FFFD here, the way browsers
 * read them. Returns 0 and *out = NULL when the input is fine as it is,
 * -1 when out of memory. */
static int utf8_clean(const char *in, size_t len, char **out, size_t *outlen)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0, k;
	while (i < len && (k = utf8_len(s + i, len - i)) != 0)
		i += k;
	*out = NULL;
	if (i == len)
		return 0;
	struct sbuf b = {0};
	sb_put(&b, in, i);
	while (i < len) {
		k = utf8_len(s + i, len - i);
		if (k)
			sb_put(&b, in + i, k);
		else
			sb_put(&b, "\xEF\xBF\xBD", 3);
		i += k ? k : 1;
	}
	*outlen = b.len;
	*out = sb_finish(&b);
	return *out ? 0 : -1;
}

/* NODEFDTD: keep the author's doctype (or none) instead of libxml2's
 * HTML 4.0 one, which would change the client's rendering mode.
 * IGNORE_ENC: the text is UTF-8 by now whatever a meta tag claims. */
#define PARSE_OPTS                                                                                 \
	(HTML_PARSE_RECOVER | HTML_PARSE_NONET | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |       \
	 HTML_PARSE_NODEFDTD | HTML_PARSE_IGNORE_ENC)

/* The tree of a non-empty input, or NULL with err set. */
static htmlDocPtr html_parse(const char *html, size_t len, struct sc_error *err)
{
	char *clean;
	size_t cleanlen;
	if (utf8_clean(html, len, &clean, &cleanlen) < 0) {
		sc_error_set(err, SC_ENOMEM, "out of memory reading the HTML body");
		return NULL;
	}
	if (clean) {
		html = clean;
		len = cleanlen;
	}
	htmlDocPtr doc = NULL;
	if (len > INT_MAX)
		sc_error_set(err, SC_EINPUT, "the HTML body is %zu bytes; the limit is 2 GiB", len);
	else if (!(doc = htmlReadMemory(html, (int)len, NULL, "UTF-8", PARSE_OPTS)))
		sc_error_set(err, SC_EINPUT,
		             "the HTML body (%zu bytes) could not be parsed as HTML "
		             "(or memory ran out); check that it is HTML text",
		             len);
	free(clean);
	return doc;
}

static char *empty_string(struct sc_error *err)
{
	char *s = calloc(1, 1);
	if (!s)
		sc_error_set(err, SC_ENOMEM, "out of memory");
	return s;
}

/* libxml2 stores the text of style and script as CDATA nodes. */
static int is_text(xmlNodePtr n)
{
	return n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE;
}

static int is_doc(xmlNodePtr n)
{
	return n->type == XML_DOCUMENT_NODE || n->type == XML_HTML_DOCUMENT_NODE;
}

/* The node after `cur` in document order, skipping cur's subtree. */
static xmlNodePtr next_skip(xmlNodePtr cur)
{
	while (cur && !is_doc(cur)) {
		if (cur->next)
			return cur->next;
		cur = cur->parent;
	}
	return NULL;
}

/* Depth-first walk of a read-only tree: `enter` returns whether to go
 * into the node; `leave` is called for exactly the nodes entered. */
typedef int (*enter_fn)(xmlNodePtr, void *);
typedef void (*leave_fn)(xmlNodePtr, void *);

static void walk(xmlNodePtr cur, enter_fn enter, leave_fn leave, void *ctx)
{
	while (cur) {
		int down = enter(cur, ctx);
		if (down && cur->children) {
			cur = cur->children;
			continue;
		}
		if (down && leave)
			leave(cur, ctx);
		while (!cur->next) {
			cur = cur->parent;
			if (!cur || is_doc(cur))
				return;
			if (leave)
				leave(cur, ctx);
		}
		cur = cur->next;
	}
}

/* ------------------------------------------------------------------ */
/* URLs and CSS                                                         */
/* ------------------------------------------------------------------ */

enum url_kind { URL_BAD, URL_RELATIVE, URL_WEB, URL_CID, URL_DATA_IMAGE };

/* Lower-cased copy without any control character or blank: browsers drop
 * tab/CR/LF anywhere in a URL and controls/spaces at its ends, so this is
 * at least as strict as they are. NULL when out of memory. */
static char *url_squeeze(const char *v)
{
	char *s = malloc(strlen(v) + 1), *o = s;
	if (!s)
		return NULL;
	for (; *v; v++)
		if ((unsigned char)*v > 0x20 && *v != 0x7F)
			*o++ = (char)lower((unsigned char)*v);
	*o = '\0';
	return s;
}

static enum url_kind scheme_kind(const char *s, size_t n, const char *rest)
{
	static const char *const web[] = {"http", "https", "mailto", "tel", NULL};
	static const char *const images[] = {"image/png", "image/gif", "image/jpeg", "image/webp",
	                                     NULL};
	for (const char *const *w = web; *w; w++)
		if (strlen(*w) == n && memcmp(s, *w, n) == 0)
			return URL_WEB;
	if (n == 3 && memcmp(s, "cid", 3) == 0)
		return URL_CID;
	if (n != 4 || memcmp(s, "data", 4) != 0)
		return URL_BAD;
	for (const char *const *m = images; *m; m++) {
		size_t k = strlen(*m);
		if (strncmp(rest, *m, k) == 0 && (rest[k] == ';' || rest[k] == ','))
			return URL_DATA_IMAGE;
	}
	return URL_BAD;
}

/* What a URL attribute value is. The scheme is what precedes the first
 * ':' when no '/', '?' or '#' comes before it. A scheme-less value whose
 * first segment holds '&' and ';' is refused too: it can only be a
 * character reference left undecoded (&colon;), which a client that
 * decodes twice would turn into a scheme. */
static enum url_kind url_kind(const char *value)
{
	char *s = url_squeeze(value);
	if (!s)
		return URL_BAD;
	size_t zone = strcspn(s, ":/?#");
	enum url_kind k;
	if (s[zone] == ':')
		k = scheme_kind(s, zone, s + zone + 1);
	else if (memchr(s, '&', zone) && memchr(s, ';', zone))
		k = URL_BAD;
	else
		k = URL_RELATIVE;
	free(s);
	return k;
}

/* Copy of CSS with comments removed (a backslash escapes the next
 * character, as in the tokenizer, so backslash-slash-star starts no
 * comment). */
static void css_strip_comments(const char *css, struct sbuf *b)
{
	while (*css) {
		if (css[0] == '/' && css[1] == '*') {
			const char *e = strstr(css + 2, "*/");
			css = e ? e + 2 : css + strlen(css);
			continue;
		}
		if (css[0] == '\\' && css[1])
			sb_putc(b, *css++);
		sb_putc(b, *css++);
	}
}

static int hexval(int c)
{
	c = lower(c);
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decode one CSS escape at s (just after the backslash) into *c (ASCII,
 * or '?' for anything else); returns the characters consumed. */
static size_t css_unescape(const char *s, char *c)
{
	unsigned long cp = 0;
	size_t i = 0;
	while (i < 6 && hexval((unsigned char)s[i]) >= 0)
		cp = cp * 16 + (unsigned long)hexval((unsigned char)s[i++]);
	if (i == 0) {
		*c = *s;
		return *s ? 1 : 0;
	}
	*c = (cp > 0 && cp < 0x80) ? (char)cp : '?';
	if (s[i] == '\r' && s[i + 1] == '\n')
		return i + 2;
	return i + (sc_html_is_space((unsigned char)s[i]) ? 1 : 0);
}

/* CSS as a browser would see its keywords: no comments, escapes decoded,
 * no blanks or controls, lower case; so exp\72 ession, "expression (" and
 * expression with a comment inside all read "expression(". NULL when out
 * of memory. */
static char *css_normalise(const char *css)
{
	struct sbuf raw = {0}, out = {0};
	css_strip_comments(css, &raw);
	char *r = sb_finish(&raw);
	if (!r)
		return NULL;
	for (const char *s = r; *s;) {
		char c = *s++;
		if (c == '\\')
			s += css_unescape(s, &c);
		if ((unsigned char)c > 0x20 && c != 0x7F)
			sb_putc(&out, (char)lower((unsigned char)c));
	}
	free(r);
	return sb_finish(&out);
}

/* Every url(...) in normalised CSS passes the attribute URL rule. */
static int css_urls_ok(const char *n)
{
	for (const char *u = strstr(n, "url("); u; u = strstr(u + 4, "url(")) {
		const char *a = u + 4, *e = strchr(a, ')');
		size_t len = e ? (size_t)(e - a) : strlen(a);
		if (len && (*a == '"' || *a == '\'')) {
			a++;
			len -= (len >= 2 && (a[len - 2] == '"' || a[len - 2] == '\'')) ? 2 : 1;
		}
		char *url = malloc(len + 1);
		if (url) {
			memcpy(url, a, len);
			url[len] = '\0';
		}
		enum url_kind k = url ? url_kind(url) : URL_BAD;
		free(url);
		if (k == URL_BAD)
			return 0;
	}
	return 1;
}

/* True when CSS (a style element's text or a style attribute) holds
 * nothing that runs script or loads from a refused scheme. */
static int css_safe(const char *css)
{
	static const char *const bad[] = {"expression(", "javascript:",  "vbscript:", "@import",
	                                  "behavior",    "-moz-binding", "</",        NULL};
	char *n = css_normalise(css);
	if (!n)
		return 0;
	int ok = css_urls_ok(n);
	for (const char *const *b = bad; ok && *b; b++)
		if (strstr(n, *b))
			ok = 0;
	free(n);
	return ok;
}

/* ------------------------------------------------------------------ */
/* HTML to text                                                         */
/* ------------------------------------------------------------------ */

/* Rendering state. Breaks, blanks, cell separators and list markers are
 * owed, not written, until visible text follows, so empty elements leave
 * no trace and runs of breaks merge. */
struct txt {
	struct sbuf b;
	int nl_want;     /* line breaks owed: 1 = new line, 2 = blank line */
	int space_want;  /* collapsed white space owed */
	const char *sep; /* table-cell separator owed */
	int marker;      /* list depth whose "- " is owed, 0 if none */
	int list_depth, pre_depth, pre_fresh;
	size_t *marks; /* b.len when each open element was entered */
	size_t nmarks, capmarks;
};

static const char *const skip_elems[] = {"head",     "title",  "script", "style",  "template",
                                         "noscript", "svg",    "math",   "select", "iframe",
                                         "object",   "applet", NULL};
static const char *const para_elems[] = {"p",  "h1",  "h2",         "h3",     "h4",       "h5",
                                         "h6", "pre", "blockquote", "table",  "ul",       "ol",
                                         "dl", "hr",  "address",    "figure", "fieldset", NULL};
static const char *const line_elems[] = {"div",     "section", "article", "header",     "footer",
                                         "nav",     "aside",   "main",    "li",         "tr",
                                         "dt",      "dd",      "caption", "figcaption", "form",
                                         "details", "summary", "center",  "hgroup",     "legend",
                                         "body",    "thead",   "tbody",   "tfoot",      NULL};

/* Breaks an element makes before and after it: 2, 1, or 0 (inline).
 * Inside a list item, paragraphs and lists only start a new line, so a
 * list stays compact. */
static int block_gap(xmlNodePtr el)
{
	if (name_in(el->name, para_elems))
		return el->parent && name_is(el->parent->name, "li") ? 1 : 2;
	return name_in(el->name, line_elems);
}

static char last_char(const struct txt *t)
{
	return t->b.len ? t->b.p[t->b.len - 1] : '\n';
}

static void want_break(struct txt *t, int n)
{
	if (!t->marker && n > t->nl_want) /* a marker takes its item's breaks */
		t->nl_want = n;
}

static void flush_breaks(struct txt *t)
{
	size_t have = 0, i = t->b.len;
	while (i > 0 && have < 2 && strchr("\n \t", t->b.p[i - 1]))
		have += t->b.p[--i] == '\n';
	for (; t->b.len && have < (size_t)t->nl_want; have++)
		sb_putc(&t->b, '\n');
	t->nl_want = t->space_want = 0;
	t->sep = NULL;
}

/* Write what is owed before a visible character. */
static void flush(struct txt *t)
{
	if (t->nl_want)
		flush_breaks(t);
	if (t->marker) {
		if (last_char(t) != '\n')
			sb_putc(&t->b, '\n');
		for (int i = 1; i < t->marker; i++)
			sb_put(&t->b, "  ", 2);
		sb_put(&t->b, "- ", 2);
		t->marker = t->space_want = 0;
		t->sep = NULL;
	}
	if (t->sep && last_char(t) != '\n')
		sb_put(&t->b, t->sep, strlen(t->sep));
	if (t->space_want && !strchr(" \n\t", last_char(t)))
		sb_putc(&t->b, ' ');
	t->sep = NULL;
	t->space_want = 0;
}

/* Length of the character at s to drop or fold in collapsed text:
 * returns 0 for an ordinary byte, else sets *blank for white space. */
static size_t special_char(const unsigned char *s, int *blank)
{
	*blank = 1;
	if (sc_html_is_space(*s))
		return 1;
	if (s[0] == 0xC2 && s[1] == 0xA0) /* no-break space */
		return 2;
	*blank = 0;
	if (*s < 0x20 || *s == 0x7F)
		return 1;
	if (s[0] == 0xC2 && s[1] == 0xAD) /* soft hyphen */
		return 2;
	if ((s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF) ||
	    (s[0] == 0xE2 && s[1] == 0x80 && s[2] == 0x8B)) /* BOM, ZWSP */
		return 3;
	return 0;
}

static void put_collapsed(struct txt *t, const char *text)
{
	const unsigned char *s = (const unsigned char *)text;
	while (*s) {
		int blank;
		size_t k = special_char(s, &blank);
		if (k) {
			t->space_want |= blank;
			s += k;
			continue;
		}
		flush(t);
		sb_putc(&t->b, (char)*s++);
	}
}

/* pre text: every character counts; CR LF and lone CR become LF. The
 * first LF right after <pre> is not content (HTML drops it too). */
static void put_pre(struct txt *t, const char *s)
{
	if (t->pre_fresh && *s == '\n')
		s++;
	else if (t->pre_fresh && s[0] == '\r')
		s += s[1] == '\n' ? 2 : 1;
	t->pre_fresh = 0;
	for (; *s; s++) {
		if (*s == '\r' && s[1] == '\n')
			continue;
		flush(t);
		sb_putc(&t->b, *s == '\r' ? '\n' : *s);
	}
}

static int push_mark(struct txt *t)
{
	if (t->nmarks == t->capmarks) {
		size_t cap = t->capmarks ? t->capmarks * 2 : 64;
		size_t *m = realloc(t->marks, cap * sizeof(*m));
		if (!m) {
			t->b.oom = 1;
			return -1;
		}
		t->marks = m;
		t->capmarks = cap;
	}
	t->marks[t->nmarks++] = t->b.len;
	return 0;
}

static void put_attr_text(struct txt *t, xmlNodePtr el, const char *attr)
{
	xmlChar *v = xmlGetProp(el, (const xmlChar *)attr);
	if (v)
		put_collapsed(t, (const char *)v);
	xmlFree(v);
}

/* A table cell after a cell that showed something gets a separator. */
static void cell_start(struct txt *t, xmlNodePtr el)
{
	if (el->parent && name_is(el->parent->name, "tr") && t->nmarks &&
	    t->b.len > t->marks[t->nmarks - 1])
		t->sep = " | ";
}

static int txt_enter(xmlNodePtr n, void *ctx)
{
	struct txt *t = ctx;
	if (is_text(n)) {
		if (n->content)
			(t->pre_depth ? put_pre : put_collapsed)(t, (const char *)n->content);
		return 0;
	}
	if (n->type != XML_ELEMENT_NODE || name_in(n->name, skip_elems))
		return 0;
	if (name_is(n->name, "br")) {
		flush(t);
		sb_putc(&t->b, '\n');
		return 0;
	}
	if (name_is(n->name, "img")) {
		put_attr_text(t, n, "alt");
		return 0;
	}
	t->pre_fresh = 0; /* only a newline directly after <pre> is dropped */
	if (name_is(n->name, "td") || name_is(n->name, "th"))
		cell_start(t, n);
	want_break(t, block_gap(n));
	if (name_is(n->name, "ul") || name_is(n->name, "ol"))
		t->list_depth++;
	if (name_is(n->name, "li"))
		t->marker = t->list_depth > 0 ? t->list_depth : 1;
	if (name_is(n->name, "pre")) {
		t->pre_depth++;
		t->pre_fresh = 1;
	}
	return push_mark(t) == 0;
}

static int texts_equal(const char *a, size_t alen, const char *b)
{
	return strlen(b) == alen && memcmp(a, b, alen) == 0;
}

/* After a link's text: " <url>", or the URL alone when there was no
 * text, or nothing when the text already says it. */
static void link_end(struct txt *t, xmlNodePtr a, size_t start)
{
	xmlChar *href = xmlGetProp(a, (const xmlChar *)"href");
	char *u = (char *)href;
	while (u && sc_html_is_space((unsigned char)*u))
		u++;
	for (size_t n = u ? strlen(u) : 0; n && sc_html_is_space((unsigned char)u[n - 1]);)
		u[--n] = '\0';
	enum url_kind k = u && *u && *u != '#' ? url_kind(u) : URL_BAD;
	if (k == URL_RELATIVE || k == URL_WEB) {
		const char *text = t->b.p ? t->b.p + start : "";
		size_t len = t->b.len - start;
		while (len && sc_html_is_space((unsigned char)*text))
			text++, len--;
		while (len && sc_html_is_space((unsigned char)text[len - 1]))
			len--;
		int same =
		    texts_equal(text, len, u) || (sc_html_starts_ci(u, u + strlen(u), "mailto:") &&
		                                  texts_equal(text, len, u + 7));
		if (!same) {
			t->space_want = len > 0;
			put_collapsed(t, "<");
			put_collapsed(t, u);
			put_collapsed(t, ">");
		}
	}
	xmlFree(href);
}

static void txt_leave(xmlNodePtr n, void *ctx)
{
	struct txt *t = ctx;
	size_t start = t->nmarks ? t->marks[--t->nmarks] : 0;
	if (name_is(n->name, "a"))
		link_end(t, n, start);
	if (name_is(n->name, "ul") || name_is(n->name, "ol"))
		t->list_depth--;
	if (name_is(n->name, "li"))
		t->marker = 0; /* an empty item shows no marker */
	if (name_is(n->name, "pre"))
		t->pre_depth--;
	want_break(t, block_gap(n));
}

/* Final layout: no trailing blanks on a line, at most one blank line in
 * a row, none at either end, no final newline. */
static char *txt_layout(const char *s)
{
	struct sbuf o = {0};
	int blank = 0;
	while (*s) {
		size_t n = strcspn(s, "\n"), k = n;
		while (k && (s[k - 1] == ' ' || s[k - 1] == '\t'))
			k--;
		if (k == 0) {
			blank = 1;
		} else {
			if (o.len)
				sb_put(&o, "\n\n", blank ? 2 : 1);
			sb_put(&o, s, k);
			blank = 0;
		}
		s += n + (s[n] == '\n');
	}
	return sb_finish(&o);
}

char *sc_html_to_text(const char *html, size_t len, struct sc_error *err)
{
	if (!html || len == 0)
		return empty_string(err);
	htmlDocPtr doc = html_parse(html, len, err);
	if (!doc)
		return NULL;
	struct txt t = {0};
	walk(doc->children, txt_enter, txt_leave, &t);
	xmlFreeDoc(doc);
	free(t.marks);
	char *raw = sb_finish(&t.b);
	char *out = raw ? txt_layout(raw) : NULL;
	free(raw);
	if (!out)
		sc_error_set(err, SC_ENOMEM, "out of memory rendering the HTML body as text");
	return out;
}

/* ------------------------------------------------------------------ */
/* Sanitising (rules at the top of this file)                           */
/* ------------------------------------------------------------------ */

/* embed is not here but unwrapped (rule 2): browsers treat it as void,
 * libxml2 as a container, so what libxml2 puts inside an unclosed embed
 * is really the content after it. */
static const char *const drop_elems[] = {
    "script", "iframe", "frame",    "frameset", "object",   "applet",   "form", "input",
    "button", "select", "textarea", "option",   "optgroup", "datalist", "base", "link",
    "svg",    "math",   "template", "noscript", "param",    NULL};
static const char *const keep_elems[] = {
    "html",     "head",       "body",   "title",   "style",  "meta",   "a",     "abbr",
    "acronym",  "address",    "area",   "article", "aside",  "b",      "bdi",   "bdo",
    "big",      "blockquote", "br",     "caption", "center", "cite",   "code",  "col",
    "colgroup", "dd",         "del",    "details", "dfn",    "div",    "dl",    "dt",
    "em",       "figcaption", "figure", "font",    "footer", "h1",     "h2",    "h3",
    "h4",       "h5",         "h6",     "header",  "hgroup", "hr",     "i",     "img",
    "ins",      "kbd",        "label",  "li",      "main",   "map",    "mark",  "nav",
    "ol",       "p",          "pre",    "q",       "rp",     "rt",     "ruby",  "s",
    "samp",     "section",    "small",  "span",    "strike", "strong", "sub",   "summary",
    "sup",      "table",      "tbody",  "td",      "tfoot",  "th",     "thead", "time",
    "tr",       "tt",         "u",      "ul",      "var",    "wbr",    NULL};
static const char *const url_attrs[] = {"href",    "src",      "action",  "background", "poster",
                                        "cite",    "longdesc", "lowsrc",  "dynsrc",     "codebase",
                                        "classid", "data",     "profile", "usemap",     "manifest",
                                        "icon",    "archive",  "datasrc", "itemtype",   NULL};
/* srcset: a comma-separated URL list whose data: URLs hold commas too,
 * so it cannot be checked reliably; mail clients mostly ignore it. */
static const char *const bad_attrs[] = {"formaction", "srcdoc",     "srcset", "imagesrcset",
                                        "ping",       "http-equiv", NULL};

enum verdict { KEEP, UNWRAP, DROP };

static int is_url_attr(const xmlChar *name)
{
	const xmlChar *colon = xmlStrchr(name, ':');
	return name_in(name, url_attrs) || (colon && name_is(colon + 1, "href"));
}

static int attr_ok(xmlAttrPtr a)
{
	if (xmlStrncasecmp(a->name, (const xmlChar *)"on", 2) == 0 || name_in(a->name, bad_attrs))
		return 0;
	int url = is_url_attr(a->name), style = name_is(a->name, "style");
	if (!url && !style)
		return 1;
	xmlChar *v = xmlNodeGetContent((xmlNodePtr)a);
	int ok = !v || (url ? url_kind((const char *)v) != URL_BAD : css_safe((const char *)v));
	xmlFree(v);
	return ok;
}

/* Browsers ignore blanks around a URL; libxml2 would write trailing
 * ones as %20 and break the link. */
static void url_trim(xmlNodePtr el, xmlAttrPtr a)
{
	xmlChar *v = xmlNodeGetContent((xmlNodePtr)a);
	size_t n = v ? (size_t)xmlStrlen(v) : 0;
	if (n && sc_html_is_space(v[n - 1])) {
		while (n && sc_html_is_space(v[n - 1]))
			v[--n] = '\0';
		xmlSetProp(el, a->name, v);
	}
	xmlFree(v);
}

static void clean_attrs(xmlNodePtr el)
{
	xmlAttrPtr a = el->properties, next;
	for (; a; a = next) {
		next = a->next;
		if (!attr_ok(a))
			xmlRemoveProp(a);
		else if (is_url_attr(a->name))
			url_trim(el, a);
	}
}

static int set_attr(xmlNodePtr el, const char *name, const xmlChar *value)
{
	return xmlSetProp(el, (const xmlChar *)name, value) != NULL;
}

/* Rule 5; returns whether to keep the rewritten meta element. */
static int meta_clean(xmlNodePtr m)
{
	xmlChar *cs = xmlGetProp(m, (const xmlChar *)"charset");
	xmlChar *he = xmlGetProp(m, (const xmlChar *)"http-equiv");
	xmlChar *name = xmlGetProp(m, (const xmlChar *)"name");
	xmlChar *content = xmlGetProp(m, (const xmlChar *)"content");
	int keep = 0;
	while (m->properties)
		xmlRemoveProp(m->properties);
	if (cs)
		keep = set_attr(m, "charset", (const xmlChar *)"utf-8");
	else if (he && name_is(he, "content-type"))
		keep = set_attr(m, "http-equiv", (const xmlChar *)"Content-Type") &&
		       set_attr(m, "content", (const xmlChar *)"text/html; charset=utf-8");
	else if (name && !he)
		keep = set_attr(m, "name", name) && (!content || set_attr(m, "content", content));
	xmlFree(cs);
	xmlFree(he);
	xmlFree(name);
	xmlFree(content);
	return keep;
}

/* Rule 4: a style element holds only text, and safe CSS. */
static int style_ok(xmlNodePtr el)
{
	for (xmlNodePtr c = el->children; c; c = c->next)
		if (!is_text(c))
			return 0;
	xmlChar *css = xmlNodeGetContent(el);
	int ok = !css || css_safe((const char *)css);
	xmlFree(css);
	return ok;
}

static enum verdict element_verdict(xmlNodePtr el)
{
	if (name_in(el->name, drop_elems))
		return DROP;
	if (!name_in(el->name, keep_elems))
		return UNWRAP;
	if (name_is(el->name, "meta"))
		return meta_clean(el) ? KEEP : DROP;
	if (name_is(el->name, "style") && !style_ok(el))
		return DROP;
	clean_attrs(el);
	return KEEP;
}

/* Replace `el` by its children; returns the next node to check (its
 * first child, which may have merged into a preceding text node). */
static xmlNodePtr unwrap(xmlNodePtr el)
{
	xmlNodePtr first = NULL, after = next_skip(el);
	while (el->children) {
		xmlNodePtr c = el->children;
		xmlUnlinkNode(c);
		xmlNodePtr at = xmlAddPrevSibling(el, c);
		if (!at)
			xmlFreeNode(c);
		else if (!first)
			first = at;
	}
	xmlUnlinkNode(el);
	xmlFreeNode(el);
	return first ? first : after;
}

static void sanitize_tree(htmlDocPtr doc)
{
	xmlNodePtr cur = doc->children;
	while (cur) {
		enum verdict v = DROP;
		if (cur->type == XML_TEXT_NODE || cur->type == XML_DTD_NODE ||
		    (is_text(cur) && name_is(cur->parent->name, "style")))
			v = KEEP;
		else if (cur->type == XML_ELEMENT_NODE)
			v = element_verdict(cur);
		if (v == UNWRAP) {
			cur = unwrap(cur);
		} else if (v == DROP) {
			xmlNodePtr next = next_skip(cur);
			xmlUnlinkNode(cur);
			xmlFreeNode(cur);
			cur = next;
		} else if (cur->type == XML_ELEMENT_NODE && cur->children) {
			cur = cur->children;
		} else {
			cur = next_skip(cur);
		}
	}
}

static int doctype_id_safe(const xmlChar *s)
{
	for (; s && *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr(" -./:_+,;=?#()%!*@$", *s)))
			return 0;
	return 1;
}

/* Rule 6: the serialiser writes the doctype's name and ids unescaped. */
static int doctype_clean(htmlDocPtr doc)
{
	xmlDtdPtr d = doc->intSubset;
	if (!d)
		return 0;
	xmlChar *ext = doctype_id_safe(d->ExternalID) ? xmlStrdup(d->ExternalID) : NULL;
	xmlChar *sys = doctype_id_safe(d->SystemID) ? xmlStrdup(d->SystemID) : NULL;
	xmlUnlinkNode((xmlNodePtr)d);
	xmlFreeDtd(d);
	int ok = xmlCreateIntSubset(doc, (const xmlChar *)"html", ext, sys) != NULL;
	xmlFree(ext);
	xmlFree(sys);
	return ok ? 0 : -1;
}

/* The document as UTF-8 HTML. An output buffer without an encoder keeps
 * UTF-8 as is; htmlDocDumpMemory would re-encode to what a meta tag
 * says, or to ASCII with entities. */
static char *serialise(htmlDocPtr doc, struct sc_error *err)
{
	xmlOutputBufferPtr out = xmlAllocOutputBuffer(NULL);
	char *s = NULL;
	if (out) {
		htmlDocContentDumpFormatOutput(out, doc, NULL, 0);
		size_t n = xmlOutputBufferGetSize(out);
		if (!out->error && (s = malloc(n + 1))) {
			memcpy(s, xmlOutputBufferGetContent(out), n);
			s[n] = '\0';
		}
		xmlOutputBufferClose(out);
	}
	if (!s)
		sc_error_set(err, SC_ENOMEM, "out of memory writing the sanitised HTML");
	return s;
}

char *sc_html_sanitize(const char *html, size_t len, struct sc_error *err)
{
	if (!html || len == 0)
		return empty_string(err);
	htmlDocPtr doc = html_parse(html, len, err);
	if (!doc)
		return NULL;
	char *out = NULL;
	if (doctype_clean(doc) < 0) {
		sc_error_set(err, SC_ENOMEM, "out of memory sanitising the HTML");
	} else {
		sanitize_tree(doc);
		out = serialise(doc, err);
	}
	xmlFreeDoc(doc);
	return out;
}

/* ------------------------------------------------------------------ */
/* Content-id references                                                */
/* ------------------------------------------------------------------ */

struct cidref {
	const char *cid; /* trimmed of blanks and <> */
	size_t len;
};

struct cidrefs {
	const struct cidref *ref;
	int *found;
	size_t n, left; /* left: how many are still not found */
};

static const char *find_ci(const char *hay, const char *needle)
{
	for (; *hay; hay++)
		if (sc_html_starts_ci(hay, hay + strlen(needle), needle))
			return hay;
	return NULL;
}

/* Whether "cid:<id>" (the id %-decoded) starts at p. */
static int cid_at(const char *p, const struct cidref *r)
{
	size_t i = 0;
	while (i < r->len && *p) {
		int c = (unsigned char)*p, step = 1;
		if (c == '%' && hexval((unsigned char)p[1]) >= 0 &&
		    hexval((unsigned char)p[2]) >= 0) {
			c = hexval((unsigned char)p[1]) * 16 + hexval((unsigned char)p[2]);
			step = 3;
		}
		if (c != (unsigned char)r->cid[i])
			return 0;
		i++;
		p += step;
	}
	return i == r->len && (!*p || strchr(" \t\r\n\f)'\";,", *p));
}

/* Mark every id still unfound that `v` refers to: a whole attribute
 * value "cid:x", or url(cid:x) inside CSS. */
static void refs_cids(const char *v, struct cidrefs *r)
{
	for (const char *p = v; r->left && (p = find_ci(p, "cid:")); p += 4) {
		if (p != v && !strchr(" \t\r\n\f('\",", p[-1]))
			continue;
		for (size_t i = 0; i < r->n; i++)
			if (!r->found[i] && r->ref[i].len && cid_at(p + 4, &r->ref[i])) {
				r->found[i] = 1;
				r->left--;
			}
	}
}

static int cid_enter(xmlNodePtr n, void *ctx)
{
	struct cidrefs *r = ctx;
	if (is_text(n) && n->content && n->parent && name_is(n->parent->name, "style"))
		refs_cids((const char *)n->content, r);
	if (n->type != XML_ELEMENT_NODE)
		return 0;
	for (xmlAttrPtr a = n->properties; a && r->left; a = a->next) {
		xmlChar *v = xmlNodeGetContent((xmlNodePtr)a);
		if (v)
			refs_cids((const char *)v, r);
		xmlFree(v);
	}
	return r->left > 0;
}

/* `cid` without surrounding blanks and <>. */
static struct cidref cid_trim(const char *cid)
{
	while (sc_html_is_space((unsigned char)*cid) || *cid == '<')
		cid++;
	struct cidref r = {cid, strlen(cid)};
	while (r.len && (sc_html_is_space((unsigned char)cid[r.len - 1]) || cid[r.len - 1] == '>'))
		r.len--;
	return r;
}

void sc_html_find_cids(const char *html, size_t len, const char *const *cids, size_t n, int *found)
{
	struct cidref *ref = n ? calloc(n, sizeof *ref) : NULL;
	struct cidrefs r = {ref, found, n, 0};
	for (size_t i = 0; i < n; i++) {
		found[i] = 0;
		if (ref && cids[i])
			ref[i] = cid_trim(cids[i]);
		r.left += ref && ref[i].len > 0;
	}
	struct sc_error err = SC_ERROR_INIT;
	htmlDocPtr doc = r.left && html && len ? html_parse(html, len, &err) : NULL;
	sc_error_clear(&err);
	if (doc) {
		walk(doc->children, cid_enter, NULL, &r);
		xmlFreeDoc(doc);
	}
	free(ref);
}

int sc_html_references_cid(const char *html, size_t len, const char *cid)
{
	int found = 0;
	sc_html_find_cids(html, len, &cid, 1, &found);
	return found;
}
