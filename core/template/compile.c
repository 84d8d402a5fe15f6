/* Mustache text -> node tree (template_int.h). Recursive descent over the
 * tags scan.c finds, one level per open section, bounded by
 * TPL_MAX_DEPTH so that a hostile template cannot exhaust the stack.
 * Errors name the line and column of the tag at fault. */
#include "core.h"
#include "scan.h"

#include <stdlib.h>
#include <string.h>

struct nvec {
	struct tnode *v;
	size_t n, cap;
};

struct cstate {
	struct tpl_scan sc;
	struct sc_error *err;
};

void tpl_position(const char *src, size_t offset, unsigned *line, unsigned *col)
{
	unsigned l = 1, c = 1;
	for (size_t i = 0; i < offset; i++) {
		if (src[i] == '\n') {
			l++;
			c = 1;
		} else if (((unsigned char)src[i] & 0xC0) != 0x80) {
			c++;
		}
	}
	*line = l;
	*col = c;
}

char *tpl_shown(const char *s, size_t n)
{
	enum { MAX = 60 };
	struct sc_buf b = {0};
	for (size_t i = 0; i < n && i < MAX; i++) {
		unsigned char c = (unsigned char)s[i];
		char ch = c < 0x20 || c >= 0x7f ? '?' : (char)c;
		if (sc_buf_add(&b, &ch, 1) != SC_OK)
			break;
	}
	if (n > MAX)
		sc_buf_str(&b, "...");
	return sc_buf_take(&b);
}

static int fail_at(struct cstate *c, size_t offset, const char *fmt, ...) SC_PRINTF(3, 4);

static int fail_at(struct cstate *c, size_t offset, const char *fmt, ...)
{
	unsigned line, col;
	tpl_position(c->sc.src, offset, &line, &col);
	va_list ap;
	va_start(ap, fmt);
	char *what = core_vasprintf(fmt, ap);
	va_end(ap);
	if (!what)
		return sc_error_set(c->err, SC_ENOMEM, "out of memory compiling a template");
	sc_error_set(c->err, SC_EINPUT, "line %u, column %u: %s", line, col, what);
	free(what);
	return SC_EINPUT;
}

static int push(struct nvec *v, const struct tnode *nd)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 8;
		struct tnode *p = realloc(v->v, cap * sizeof(*p));
		if (!p)
			return SC_ENOMEM;
		v->v = p;
		v->cap = cap;
	}
	v->v[v->n++] = *nd;
	return SC_OK;
}

static void free_nodes(struct tnode *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free_nodes(v[i].kids, v[i].nkids);
	free(v);
}

/* A name that looks a value up: "." is the current context; a leading
 * dot (Go templates: {{ .a.b }}) means the same as none; parts between
 * dots must not be empty. */
static int value_name(struct cstate *c, const struct tpl_tag *t, struct tnode *nd)
{
	nd->s = t->name;
	nd->n = t->n;
	if (nd->n > 1 && nd->s[0] == '.' && nd->s[1] != '.') {
		nd->s++;
		nd->n--;
	}
	if (nd->n == 1 && nd->s[0] == '.')
		return SC_OK;
	const char *p = nd->s, *end = nd->s + nd->n;
	for (;;) {
		const char *dot = memchr(p, '.', (size_t)(end - p));
		const char *stop = dot ? dot : end;
		if (stop == p) {
			char *shown = tpl_shown(t->name, t->n);
			int rc =
			    fail_at(c, t->start,
			            "bad name \"%s\": a dot must separate two names, as in {{a.b}}",
			            shown ? shown : "");
			free(shown);
			return rc;
		}
		if (!dot)
			return SC_OK;
		p = dot + 1;
	}
}

static int parse_list(struct cstate *c, unsigned depth, int opener, struct nvec *out,
                      struct tpl_tag *close, int *closed);

/* Whether the closing tag `cl` closes the section node `nd`. */
static int closes(const struct tnode *nd, const struct tpl_tag *cl)
{
	const char *s = cl->name;
	size_t n = cl->n;
	if (nd->dynamic) {
		if (n == 0 || s[0] != '*')
			return 0;
		s++;
		n--;
		while (n && (*s == ' ' || *s == '\t')) {
			s++;
			n--;
		}
	} else if ((nd->kind == TN_SECTION || nd->kind == TN_INVERTED) && n > 1 && s[0] == '.') {
		s++;
		n--;
	}
	return n == nd->n && memcmp(s, nd->s, n) == 0;
}

static int parse_section(struct cstate *c, unsigned depth, const struct tpl_tag *t,
                         struct tnode *nd)
{
	if (depth + 1 >= TPL_MAX_DEPTH)
		return fail_at(c, t->start, "sections nested deeper than %d: flatten the template",
		               TPL_MAX_DEPTH);
	struct nvec kids = {0};
	struct tpl_tag cl;
	int closed = 0;
	int rc = parse_list(c, depth + 1, (int)nd->kind, &kids, &cl, &closed);
	if (rc == SC_OK && (!closed || !closes(nd, &cl))) {
		char *want = tpl_shown(nd->s, nd->n);
		char *got = closed ? tpl_shown(cl.name, cl.n) : NULL;
		unsigned line, col;
		tpl_position(c->sc.src, t->start, &line, &col);
		if (!want || (closed && !got))
			rc = sc_error_set(c->err, SC_ENOMEM, "out of memory compiling a template");
		else if (!closed)
			rc = fail_at(c, t->start,
			             "unclosed section \"%s\": add its closing tag {{/%s}}", want,
			             want);
		else
			rc = fail_at(c, cl.start,
			             "closing tag \"%s\" does not match the open section \"%s\" "
			             "(line %u, column %u)",
			             got, want, line, col);
		free(want);
		free(got);
	}
	if (rc != SC_OK) {
		free_nodes(kids.v, kids.n);
		return rc;
	}
	nd->kids = kids.v;
	nd->nkids = kids.n;
	return SC_OK;
}

/* A standalone block's intrinsic indentation: that of its first line. */
static void block_indent(struct tnode *nd)
{
	if (!nd->standalone || nd->nkids == 0)
		return;
	const struct tnode *k = &nd->kids[0];
	if (k->kind == TN_TEXT) {
		size_t i = 0;
		while (i < k->n && (k->s[i] == ' ' || k->s[i] == '\t'))
			i++;
		nd->body_indent = k->s;
		nd->body_indent_n = i;
	} else if (k->standalone) {
		nd->body_indent = k->indent;
		nd->body_indent_n = k->indent_n;
	}
}

static int tag_node(struct cstate *c, unsigned depth, const struct tpl_tag *t, struct tnode *nd)
{
	memset(nd, 0, sizeof(*nd));
	nd->offset = t->start;
	nd->standalone = t->standalone;
	nd->indent = t->indent;
	nd->indent_n = t->indent_n;
	nd->dynamic = t->dynamic;
	nd->s = t->name;
	nd->n = t->n;
	switch (t->type) {
	case 0:
		nd->kind = TN_VAR;
		return value_name(c, t, nd);
	case '{':
	case '&':
		nd->kind = TN_RAW;
		return value_name(c, t, nd);
	case '>':
		nd->kind = TN_PARTIAL;
		return nd->dynamic ? value_name(c, t, nd) : SC_OK;
	case '#':
	case '^':
		nd->kind = t->type == '#' ? TN_SECTION : TN_INVERTED;
		if (value_name(c, t, nd) != SC_OK)
			return SC_EINPUT;
		return parse_section(c, depth, t, nd);
	case '<':
		nd->kind = TN_PARENT;
		if (nd->dynamic && value_name(c, t, nd) != SC_OK)
			return SC_EINPUT;
		return parse_section(c, depth, t, nd);
	default: { /* '$' */
		nd->kind = TN_BLOCK;
		int rc = parse_section(c, depth, t, nd);
		if (rc == SC_OK)
			block_indent(nd);
		return rc;
	}
	}
}

/* Nodes until a closing tag (then *closed = 1 and *close is that tag) or
 * the end of the text. */
static int parse_list(struct cstate *c, unsigned depth, int opener, struct nvec *out,
                      struct tpl_tag *close, int *closed)
{
	*closed = 0;
	for (;;) {
		size_t ts, te;
		struct tpl_tag t;
		int rc = tpl_scan_next(&c->sc, &ts, &te, &t, c->err);
		if (rc >= 0)
			return rc;
		if (rc == TPL_SCAN_TAG && t.type == '<')
			tpl_scan_pair(&c->sc, ts, &t, "/$", 0, &te);
		else if (rc == TPL_SCAN_TAG && t.type == '$')
			tpl_scan_pair(&c->sc, ts, &t, "/", 1, &te);
		else if (rc == TPL_SCAN_TAG && t.type == '/' && opener == TN_BLOCK)
			tpl_scan_pair(&c->sc, ts, &t, "/", 0, &te);
		if (te > ts) {
			struct tnode text = {
			    .kind = TN_TEXT, .s = c->sc.src + ts, .n = te - ts, .offset = ts};
			if (push(out, &text) != SC_OK)
				return sc_error_set(c->err, SC_ENOMEM, "out of memory");
		}
		if (rc == TPL_SCAN_END)
			return SC_OK;
		if (t.type == '!' || t.type == '=')
			continue;
		if (t.type == '/') {
			*close = t;
			*closed = 1;
			return SC_OK;
		}
		struct tnode nd;
		rc = tag_node(c, depth, &t, &nd);
		if (rc == SC_OK && push(out, &nd) != SC_OK) {
			free_nodes(nd.kids, nd.nkids);
			rc = sc_error_set(c->err, SC_ENOMEM, "out of memory");
		}
		if (rc != SC_OK)
			return rc;
	}
}

int sc_template_compile(const char *text, size_t len, struct sc_template **out,
                        struct sc_error *err)
{
	*out = NULL;
	struct sc_template *t = calloc(1, sizeof(*t));
	char *src = malloc(len + 1);
	if (!t || !src) {
		free(t);
		free(src);
		return sc_error_set(err, SC_ENOMEM, "out of memory compiling a template");
	}
	if (len)
		memcpy(src, text, len);
	src[len] = '\0';
	t->src = src;
	t->len = len;
	struct cstate c = {.err = err};
	tpl_scan_init(&c.sc, src, len);
	struct nvec top = {0};
	struct tpl_tag cl;
	int closed = 0;
	int rc = parse_list(&c, 0, -1, &top, &cl, &closed);
	if (rc == SC_OK && closed) {
		char *shown = tpl_shown(cl.name, cl.n);
		rc = shown ? fail_at(&c, cl.start,
		                     "closing tag \"%s\" without an open section: remove it or "
		                     "open one",
		                     shown)
		           : sc_error_set(err, SC_ENOMEM, "out of memory compiling a template");
		free(shown);
	}
	t->kids = top.v;
	t->nkids = top.n;
	if (rc != SC_OK) {
		if (rc == SC_ENOMEM && (!err || !err->message))
			sc_error_set(err, SC_ENOMEM, "out of memory compiling a template");
		sc_template_free(t);
		return rc;
	}
	*out = t;
	return SC_OK;
}

void sc_template_free(struct sc_template *t)
{
	if (!t)
		return;
	free_nodes(t->kids, t->nkids);
	free(t->src);
	free(t);
}
