/* The Mustache tokenizer: finds the next tag under the current
 * delimiters, says what kind it is, and applies the spec's standalone
 * rule (a line holding only whitespace and one section, inverted,
 * closing, comment, partial, delimiter, parent or block tag is removed
 * whole: its indentation and its line end). Set-delimiter tags are
 * applied here, so compile.c never sees delimiters. */
#include "core.h"
#include "scan.h"

#include <stdlib.h>
#include <string.h>

static const char DEFAULT_OPEN[] = "{{", DEFAULT_CLOSE[] = "}}";

void tpl_scan_init(struct tpl_scan *s, const char *src, size_t len)
{
	s->src = src;
	s->len = len;
	s->pos = 0;
	s->open = DEFAULT_OPEN;
	s->open_n = 2;
	s->close = DEFAULT_CLOSE;
	s->close_n = 2;
	s->pair_at = (size_t)-1;
}

static const char *find(const char *hay, size_t n, const char *needle, size_t m)
{
	/* memmem is not in C11 or POSIX. */
	if (m == 0)
		return NULL;
	while (n >= m) {
		const char *p = memchr(hay, needle[0], n - m + 1);
		if (!p)
			return NULL;
		if (memcmp(p, needle, m) == 0)
			return p;
		n -= (size_t)(p - hay) + 1;
		hay = p + 1;
	}
	return NULL;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

static void trim(const char **s, size_t *n)
{
	while (*n && is_space(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n && is_space((*s)[*n - 1]))
		(*n)--;
}

static int err_at(struct tpl_scan *s, size_t offset, struct sc_error *err, const char *what)
{
	unsigned line, col;
	tpl_position(s->src, offset, &line, &col);
	return sc_error_set(err, SC_EINPUT, "line %u, column %u: %s", line, col, what);
}

/* The closing delimiter of a tag whose content starts at p, preceded by
 * `pre` for {{{x}}} and {{=a b=}}. Offset of the content's end, or -1. */
static int find_close(const struct tpl_scan *s, size_t p, char pre, size_t *content_end,
                      size_t *tag_end)
{
	size_t from = p;
	for (;;) {
		const char *q = find(s->src + from, s->len - from, s->close, s->close_n);
		if (!q)
			return -1;
		size_t at = (size_t)(q - s->src);
		if (!pre) {
			*content_end = at;
			*tag_end = at + s->close_n;
			return 0;
		}
		if (at > p && s->src[at - 1] == pre) {
			*content_end = at - 1;
			*tag_end = at + s->close_n;
			return 0;
		}
		from = at + 1;
	}
}

/* {{=<% %>=}}: two markers, no whitespace or '=' inside either. */
static int set_delimiters(struct tpl_scan *s, const char *c, size_t n, size_t at,
                          struct sc_error *err)
{
	trim(&c, &n);
	size_t a = 0;
	while (a < n && !is_space(c[a]))
		a++;
	size_t b = a;
	while (b < n && is_space(c[b]))
		b++;
	if (a == 0 || b == a || b == n || memchr(c, '=', n))
		return err_at(s, at, err,
		              "bad set-delimiters tag: write two markers with a space between, "
		              "neither holding spaces or '=', as {{=<% %>=}}");
	for (size_t i = b; i < n; i++)
		if (is_space(c[i]))
			return err_at(s, at, err,
			              "bad set-delimiters tag: write exactly two markers, "
			              "as {{=<% %>=}}");
	s->open = c;
	s->open_n = a;
	s->close = c + b;
	s->close_n = n - b;
	return SC_OK;
}

/* Whether the tag [start, end) stands alone on its line; if so, where
 * its line starts and where the next line starts. */
static int standalone(const struct tpl_scan *s, size_t from, size_t start, size_t end,
                      size_t *line_start, size_t *next_line)
{
	size_t ls = start;
	while (ls > from && is_blank(s->src[ls - 1]))
		ls--;
	if (ls > 0 && s->src[ls - 1] != '\n')
		return 0;
	size_t e = end;
	while (e < s->len && is_blank(s->src[e]))
		e++;
	if (e < s->len && s->src[e] == '\n')
		e++;
	else if (e + 1 < s->len && s->src[e] == '\r' && s->src[e + 1] == '\n')
		e += 2;
	else if (e < s->len)
		return 0;
	*line_start = ls;
	*next_line = e;
	return 1;
}

static int parse_content(struct tpl_scan *s, struct tpl_tag *t, size_t p, struct sc_error *err)
{
	char c = p < s->len ? s->src[p] : '\0';
	char pre = 0;
	t->type = 0;
	if (c && strchr("{&#^/!>=$<", c)) {
		t->type = c;
		p++;
		pre = c == '{' ? '}' : c == '=' ? '=' : 0;
	}
	size_t cend, tend;
	if (find_close(s, p, pre, &cend, &tend) != 0) {
		char *what = sc_asprintf("unclosed tag: no \"%s%.*s\" after this \"%.*s\"",
		                         pre == '}'   ? "}"
		                         : pre == '=' ? "="
		                                      : "",
		                         (int)s->close_n, s->close, (int)s->open_n, s->open);
		int rc = err_at(s, t->start, err, what ? what : "unclosed tag");
		free(what);
		return rc;
	}
	t->end = tend;
	t->name = s->src + p;
	t->n = cend - p;
	if (t->type == '!')
		return SC_OK;
	if (t->type == '=')
		return set_delimiters(s, t->name, t->n, t->start, err);
	trim(&t->name, &t->n);
	t->dynamic = 0;
	if ((t->type == '>' || t->type == '<') && t->n && t->name[0] == '*') {
		t->dynamic = 1;
		t->name++;
		t->n--;
		trim(&t->name, &t->n);
	}
	if (t->n == 0)
		return err_at(s, t->start, err, "empty tag: write a name between the delimiters");
	return SC_OK;
}

int tpl_scan_next(struct tpl_scan *s, size_t *text_start, size_t *text_end, struct tpl_tag *t,
                  struct sc_error *err)
{
	*text_start = s->pos;
	const char *o = find(s->src + s->pos, s->len - s->pos, s->open, s->open_n);
	if (!o) {
		*text_end = s->len;
		s->pos = s->len;
		return TPL_SCAN_END;
	}
	memset(t, 0, sizeof(*t));
	t->start = (size_t)(o - s->src);
	/* The delimiters in force for the tag itself (a set-delimiters tag
	 * changes them for what follows). */
	int rc = parse_content(s, t, t->start + s->open_n, err);
	if (rc != SC_OK)
		return rc;
	size_t ls, next;
	if (s->pair_at == t->start) {
		/* The second of a pair (tpl_scan_pair): its line is gone. */
		s->pair_at = (size_t)-1;
		t->standalone = 1;
		t->indent = s->src + t->start;
		*text_end = t->start;
		s->pos = s->pair_next;
	} else if (t->type && strchr("#^/!>=$<", t->type) &&
	           standalone(s, s->pos, t->start, t->end, &ls, &next)) {
		t->standalone = 1;
		t->indent = s->src + ls;
		t->indent_n = t->start - ls;
		*text_end = ls;
		s->pos = next;
	} else {
		*text_end = t->start;
		s->pos = t->end;
	}
	return TPL_SCAN_TAG;
}

int tpl_scan_pair(struct tpl_scan *s, size_t text_start, struct tpl_tag *t, const char *types,
                  int keep_line_end, size_t *text_end)
{
	size_t p = t->end;
	if (t->standalone || t->type == '=' || s->len - p < s->open_n + 1 ||
	    memcmp(s->src + p, s->open, s->open_n) != 0)
		return 0;
	char c = s->src[p + s->open_n];
	if (!c || !strchr(types, c))
		return 0;
	size_t from = p + s->open_n + 1;
	const char *q = find(s->src + from, s->len - from, s->close, s->close_n);
	size_t ls, next;
	if (!q ||
	    !standalone(s, text_start, t->start, (size_t)(q - s->src) + s->close_n, &ls, &next))
		return 0;
	t->standalone = 1;
	t->indent = s->src + ls;
	t->indent_n = t->start - ls;
	*text_end = ls;
	s->pair_at = p;
	s->pair_next = keep_line_end ? (size_t)(q - s->src) + s->close_n : next;
	return 1;
}
