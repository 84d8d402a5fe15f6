/* Node tree + JSON -> text. One walk with a context stack (the spec's),
 * an indentation for standalone partials (prepended to each line of
 * their template text, never to the lines of an interpolated value), the
 * partials compiled on first use (the template itself stays immutable,
 * so it can be shared between threads), and the override frames of
 * parent tags (~inheritance).
 *
 * Every render is bounded (template_int.h): nesting depth, bytes out, and
 * nodes visited, since a few bytes of template over a short list can
 * ask for more output or time than exists ({{#l}}{{#l}}...). */
#include "core.h"
#include "template_int.h"

#include <stdlib.h>
#include <string.h>

struct frame { /* a parent tag whose blocks override those it expands */
	const struct tnode *parent;
	const struct sc_template *t;
};

struct rstate {
	struct sc_buf out;
	enum sc_escape esc;
	const cJSON *partials;
	const struct tpl_limits *lim;
	struct sc_error *err;
	const cJSON **stack; /* lim->depth + 1 entries */
	size_t sdepth;
	unsigned depth;
	unsigned long steps;
	struct sc_buf indent;
	int bol; /* at the start of a template line: indent before more output */
	/* Inside a standalone block: its intrinsic indentation, stripped from
	 * the start of each of its lines (sol: at such a start). */
	const char *dedent;
	size_t dedent_n;
	int sol;
	struct tpl_pcache cache;
	struct frame *frames; /* lim->depth entries */
	size_t nframes;
	const char *partial; /* name of the partial being rendered, for messages */
};

static int nomem(struct rstate *rs)
{
	return sc_error_set(rs->err, SC_ENOMEM, "out of memory rendering a template");
}

static int check_output(struct rstate *rs)
{
	if (rs->out.len <= rs->lim->output)
		return SC_OK;
	return sc_error_set(rs->err, SC_EINPUT,
	                    "template output over %zu bytes: a section over a long list, or "
	                    "nested sections or partials, multiply it; simplify the template",
	                    rs->lim->output);
}

static int add(struct rstate *rs, const char *s, size_t n)
{
	if (sc_buf_add(&rs->out, s, n) != SC_OK)
		return nomem(rs);
	return check_output(rs);
}

static int add_indent(struct rstate *rs)
{
	int was = rs->bol;
	rs->bol = 0;
	return was && rs->indent.len ? add(rs, rs->indent.p, rs->indent.len) : SC_OK;
}

/* Template text: indentation after each of its line ends. */
static int emit_text(struct rstate *rs, const char *s, size_t n)
{
	while (n) {
		if (rs->sol) {
			rs->sol = 0;
			for (size_t k = 0; k < rs->dedent_n && n && *s == rs->dedent[k]; k++) {
				s++;
				n--;
			}
			if (!n)
				break;
		}
		int rc = add_indent(rs);
		const char *nl = memchr(s, '\n', n);
		size_t k = nl ? (size_t)(nl - s) + 1 : n;
		if (rc == SC_OK)
			rc = add(rs, s, k);
		if (rc != SC_OK)
			return rc;
		rs->bol = rs->sol = nl != NULL;
		s += k;
		n -= k;
	}
	return SC_OK;
}

static int emit_value(struct rstate *rs, const cJSON *v, enum sc_escape esc)
{
	size_t before = rs->out.len;
	int bol = rs->bol;
	int rc = add_indent(rs);
	size_t mark = rs->out.len;
	if (rc == SC_OK && tpl_append_value(&rs->out, v, esc) != SC_OK)
		rc = nomem(rs);
	if (rc == SC_OK && rs->out.len == mark && bol) {
		/* Nothing came out: the line has not started after all. */
		rs->out.len = before;
		if (rs->out.p)
			rs->out.p[before] = '\0';
		rs->bol = 1;
	} else if (rs->out.len != mark) {
		rs->sol = 0;
	}
	return rc == SC_OK ? check_output(rs) : rc;
}

static int too_deep(struct rstate *rs, const struct sc_template *t, const struct tnode *nd)
{
	unsigned line, col;
	tpl_position(t->src, nd->offset, &line, &col);
	sc_error_set(rs->err, SC_EINPUT,
	             "line %u, column %u: sections and partials nested deeper than %u "
	             "(a partial that includes itself without end?)",
	             line, col, rs->lim->depth);
	if (rs->partial) {
		char *shown = tpl_shown(rs->partial, strlen(rs->partial));
		sc_error_prefix(rs->err, "partial \"%s\"", shown ? shown : "");
		free(shown);
	}
	return SC_EINPUT;
}

static int too_costly(struct rstate *rs)
{
	return sc_error_set(rs->err, SC_EINPUT,
	                    "template too costly: over %lu steps (sections over long lists, "
	                    "nested, or partials that repeat themselves); simplify the template",
	                    rs->lim->steps);
}

static int render_list(struct rstate *rs, const struct sc_template *t, const struct tnode *v,
                       size_t n);

static int render_kids(struct rstate *rs, const struct sc_template *t, const struct tnode *nd,
                       const cJSON *ctx)
{
	if (rs->depth >= rs->lim->depth)
		return too_deep(rs, t, nd);
	rs->depth++;
	if (ctx)
		rs->stack[rs->sdepth++] = ctx;
	int rc = render_list(rs, t, nd->kids, nd->nkids);
	if (ctx)
		rs->sdepth--;
	rs->depth--;
	return rc;
}

static int render_section(struct rstate *rs, const struct sc_template *t, const struct tnode *nd)
{
	const cJSON *v = tpl_lookup(rs->stack, rs->sdepth, nd->s, nd->n);
	if ((nd->kind == TN_INVERTED) == tpl_truthy(v))
		return SC_OK;
	if (nd->kind == TN_INVERTED || !cJSON_IsArray(v))
		return render_kids(rs, t, nd, nd->kind == TN_INVERTED ? NULL : v);
	for (const cJSON *e = v->child; e; e = e->next) {
		if (++rs->steps > rs->lim->steps)
			return too_costly(rs);
		int rc = render_kids(rs, t, nd, e);
		if (rc != SC_OK)
			return rc;
	}
	return SC_OK;
}

/* The compiled partial a {{>name}} or {{<name}} tag names, or *out NULL
 * when there is none (the spec renders nothing then). */
static int get_partial(struct rstate *rs, const struct tnode *nd, const struct sc_template **out,
                       const char **pname)
{
	*out = NULL;
	const char *name = nd->s;
	size_t n = nd->n;
	if (nd->dynamic) {
		const cJSON *v = tpl_lookup(rs->stack, rs->sdepth, nd->s, nd->n);
		if (!cJSON_IsString(v) || !v->valuestring)
			return SC_OK;
		name = v->valuestring;
		n = strlen(name);
	}
	return tpl_pcache_get(&rs->cache, rs->partials, name, n, out, pname, rs->err);
}

/* {{>name}} and {{<name}}...{{/name}}: the partial against the current
 * context stack, indented when the tag stood alone on its line. */
static int render_partial(struct rstate *rs, const struct sc_template *t, const struct tnode *nd)
{
	const struct sc_template *p;
	const char *pname = NULL, *outer = rs->partial;
	int rc = get_partial(rs, nd, &p, &pname);
	if (rc != SC_OK || !p)
		return rc;
	if (rs->depth >= rs->lim->depth)
		return too_deep(rs, t, nd);
	size_t saved = rs->indent.len, dedent_n = rs->dedent_n;
	const char *dedent = rs->dedent;
	if (nd->standalone) {
		if (sc_buf_add(&rs->indent, nd->indent, nd->indent_n) != SC_OK)
			return nomem(rs);
		rs->bol = 1;
	}
	rs->dedent_n = 0; /* a partial's lines are its own */
	if (nd->kind == TN_PARENT) {
		rs->frames[rs->nframes].parent = nd;
		rs->frames[rs->nframes++].t = t;
	}
	rs->depth++;
	rs->partial = pname;
	rc = render_list(rs, p, p->kids, p->nkids);
	rs->partial = outer;
	rs->depth--;
	if (nd->kind == TN_PARENT)
		rs->nframes--;
	rs->indent.len = saved;
	rs->dedent = dedent;
	rs->dedent_n = dedent_n;
	return rc;
}

/* The block a {{$name}} tag expands to: the one of the outermost parent
 * tag that passes a block of that name (the spec's "top-level
 * substitutions take precedence"), else its own default. */
static const struct tnode *chosen_block(const struct rstate *rs, const struct tnode *nd,
                                        const struct sc_template **t)
{
	for (size_t i = 0; i < rs->nframes; i++) {
		const struct tnode *par = rs->frames[i].parent;
		for (size_t k = 0; k < par->nkids; k++) {
			const struct tnode *b = &par->kids[k];
			if (b->kind == TN_BLOCK && b->n == nd->n &&
			    memcmp(b->s, nd->s, nd->n) == 0) {
				*t = rs->frames[i].t;
				return b;
			}
		}
	}
	return nd;
}

/* {{$name}}default{{/name}}. Indentation, as the spec's examples have it:
 * a standalone block's content loses the indentation of its first line
 * where it is written, and gains, where it is expanded, that of the
 * expanding block's first line of default content (else of its tag),
 * relative to the block around it. */
static int render_block(struct rstate *rs, const struct sc_template *t, const struct tnode *nd)
{
	const struct sc_template *bt = t;
	const struct tnode *b = chosen_block(rs, nd, &bt);
	size_t saved = rs->indent.len, dedent_n = rs->dedent_n;
	const char *dedent = rs->dedent;
	if (nd->standalone) {
		const char *in = nd->body_indent_n ? nd->body_indent : nd->indent;
		size_t n = nd->body_indent_n ? nd->body_indent_n : nd->indent_n;
		if (dedent_n && dedent_n <= n && memcmp(in, dedent, dedent_n) == 0) {
			in += dedent_n;
			n -= dedent_n;
		}
		if (sc_buf_add(&rs->indent, in, n) != SC_OK)
			return nomem(rs);
		rs->bol = 1;
	}
	if (b->standalone) {
		rs->dedent = b->body_indent;
		rs->dedent_n = b->body_indent_n;
		rs->sol = 1;
	} else if (b != nd) {
		rs->dedent_n = 0;
	}
	int rc = render_kids(rs, bt, b, NULL);
	rs->indent.len = saved;
	rs->dedent = dedent;
	rs->dedent_n = dedent_n;
	return rc;
}

static int render_node(struct rstate *rs, const struct sc_template *t, const struct tnode *nd)
{
	if (++rs->steps > rs->lim->steps)
		return too_costly(rs);
	switch (nd->kind) {
	case TN_TEXT:
		return emit_text(rs, nd->s, nd->n);
	case TN_VAR:
	case TN_RAW:
		return emit_value(rs, tpl_lookup(rs->stack, rs->sdepth, nd->s, nd->n),
		                  nd->kind == TN_VAR ? rs->esc : SC_ESCAPE_NONE);
	case TN_SECTION:
	case TN_INVERTED:
		return render_section(rs, t, nd);
	case TN_PARTIAL:
	case TN_PARENT:
		return render_partial(rs, t, nd);
	case TN_BLOCK:
		return render_block(rs, t, nd);
	}
	return SC_OK;
}

static int render_list(struct rstate *rs, const struct sc_template *t, const struct tnode *v,
                       size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int rc = render_node(rs, t, &v[i]);
		if (rc != SC_OK)
			return rc;
	}
	return SC_OK;
}

static void rstate_free(struct rstate *rs)
{
	tpl_pcache_free(&rs->cache);
	free(rs->stack);
	free(rs->frames);
	sc_buf_free(&rs->indent);
	sc_buf_free(&rs->out);
}

int tpl_render(const struct sc_template *t, const cJSON *data, const cJSON *partials,
               enum sc_escape escape, const struct tpl_limits *lim, char **out, size_t *outlen,
               struct sc_error *err)
{
	*out = NULL;
	if (outlen)
		*outlen = 0;
	if (escape != SC_ESCAPE_HTML && escape != SC_ESCAPE_JSON && escape != SC_ESCAPE_NONE &&
	    escape != SC_ESCAPE_URL)
		return sc_error_set(err, SC_EINPUT, "unknown template escape mode %d", (int)escape);
	if (partials && !cJSON_IsObject(partials))
		return sc_error_set(err, SC_EINPUT,
		                    "template partials must be a JSON object of name: text");
	struct rstate rs = {.esc = escape, .partials = partials, .lim = lim, .err = err};
	rs.stack = calloc((size_t)lim->depth + 1, sizeof(*rs.stack));
	rs.frames = calloc((size_t)lim->depth + 1, sizeof(*rs.frames));
	int rc = rs.stack && rs.frames ? SC_OK : nomem(&rs);
	if (rc == SC_OK) {
		if (data)
			rs.stack[rs.sdepth++] = data;
		rs.sol = 1;
		rc = render_list(&rs, t, t->kids, t->nkids);
	}
	if (rc == SC_OK) {
		size_t len = rs.out.len;
		*out = sc_buf_take(&rs.out);
		if (!*out)
			rc = nomem(&rs);
		else if (outlen)
			*outlen = len;
	}
	rstate_free(&rs);
	return rc;
}

int sc_template_render(const struct sc_template *t, const cJSON *data, const cJSON *partials,
                       enum sc_escape escape, char **out, size_t *outlen, struct sc_error *err)
{
	static const struct tpl_limits lim = {TPL_MAX_DEPTH, TPL_MAX_OUTPUT, TPL_MAX_STEPS};
	return tpl_render(t, data, partials, escape, &lim, out, outlen, err);
}

int sc_template_expand(const char *text, const cJSON *data, enum sc_escape escape, char **out,
                       struct sc_error *err)
{
	struct sc_template *t;
	*out = NULL;
	int rc = sc_template_compile(text, strlen(text), &t, err);
	if (rc != SC_OK)
		return rc;
	rc = sc_template_render(t, data, NULL, escape, out, NULL, err);
	sc_template_free(t);
	return rc;
}
