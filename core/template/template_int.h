/* Internal header of the Mustache engine (core/template/): the compiled
 * node tree shared by compile.c (text -> tree), render.c (tree + JSON ->
 * text), lookup.c (names -> JSON values) and escape.c (values -> bytes).
 *
 * A compiled template owns one copy of its source; every name, text run
 * and indentation in the tree points into that copy, so a node is a few
 * words and the tree is freed with one walk. */
#ifndef SC_TEMPLATE_INT_H
#define SC_TEMPLATE_INT_H

#include <stddef.h>

#include <smtp-connector/template.h>

/* Bounds for untrusted templates and data (doc/templates.md, "Limits"). */
#define TPL_MAX_DEPTH 64                       /* nested sections, partials, parents */
#define TPL_MAX_OUTPUT ((size_t)64 << 20)      /* bytes of rendered output */
#define TPL_MAX_STEPS ((unsigned long)1 << 24) /* nodes visited by one render */

enum tnode_kind {
	TN_TEXT,     /* literal bytes */
	TN_VAR,      /* {{name}}: escaped */
	TN_RAW,      /* {{{name}}} and {{&name}}: not escaped */
	TN_SECTION,  /* {{#name}}...{{/name}} */
	TN_INVERTED, /* {{^name}}...{{/name}} */
	TN_PARTIAL,  /* {{>name}}, {{>*name}} */
	TN_PARENT,   /* {{<name}}...{{/name}} (~inheritance) */
	TN_BLOCK     /* {{$name}}...{{/name}} (~inheritance) */
};

struct tnode {
	enum tnode_kind kind;
	const char *s; /* TEXT: the bytes; else the name (leading '.' dropped) */
	size_t n;
	/* PARTIAL, PARENT, BLOCK when standalone: the whitespace before the
	 * tag, prepended to every line the partial or block renders. */
	const char *indent;
	size_t indent_n;
	int standalone;
	/* BLOCK when standalone: the leading whitespace of its first line of
	 * content, removed from each line at the site of definition (the
	 * spec's "block reindentation"). */
	const char *body_indent;
	size_t body_indent_n;
	int dynamic;        /* PARTIAL, PARENT: {{>*name}} names the partial by a value */
	size_t offset;      /* the tag's byte offset in the source, for messages */
	struct tnode *kids; /* SECTION, INVERTED, PARENT, BLOCK */
	size_t nkids;
};

struct sc_template {
	char *src; /* NUL-terminated copy of the text; nodes point into it */
	size_t len;
	struct tnode *kids;
	size_t nkids;
};

/* Bounds of one render; the public functions use the TPL_MAX_* values,
 * the fuzz target smaller ones so that it explores instead of waiting. */
struct tpl_limits {
	unsigned depth;
	size_t output;
	unsigned long steps;
};

/* render.c: sc_template_render with explicit bounds. */
int tpl_render(const struct sc_template *t, const cJSON *data, const cJSON *partials,
               enum sc_escape escape, const struct tpl_limits *lim, char **out, size_t *outlen,
               struct sc_error *err);

/* partials.c: the partials of one render, by name (zero-initialise). */
struct tpl_pcache {
	struct pentry *v;
	size_t cap, used;
};
/* The compiled partial `name` of `partials` (*t NULL when there is none)
 * and its name as a string that lives as long as `partials` (*pname,
 * untouched when none). SC_OK, or SC_EINPUT (not a string, does not
 * compile: the message names it) or SC_ENOMEM. */
int tpl_pcache_get(struct tpl_pcache *c, const cJSON *partials, const char *name, size_t n,
                   const struct sc_template **t, const char **pname, struct sc_error *err);
void tpl_pcache_free(struct tpl_pcache *c);

/* compile.c: 1-based line and column (in characters) of byte `offset`. */
void tpl_position(const char *src, size_t offset, unsigned *line, unsigned *col);

/* compile.c: an allocated, printable excerpt of a name from a template
 * (at most 60 bytes, control and non-ASCII bytes as '?'), for messages;
 * NULL when out of memory. */
char *tpl_shown(const char *s, size_t n);

/* lookup.c: resolve a name (already without its leading '.') against the
 * context stack `stack[0..depth)` (top last). NULL when missing. */
const cJSON *tpl_lookup(const cJSON *const *stack, size_t depth, const char *name, size_t n);
/* Whether a section over `v` renders (JavaScript truthiness, as
 * mustache.js: missing, null, false, "", 0 and [] do not). */
int tpl_truthy(const cJSON *v);

/* escape.c: append `v` interpolated (strings as they are, numbers as JSON
 * prints them, booleans, null as nothing, objects and arrays as compact
 * JSON) with `escape` applied. SC_OK or SC_ENOMEM. */
int tpl_append_value(struct sc_buf *b, const cJSON *v, enum sc_escape escape);
/* Append n bytes escaped for `escape`. SC_OK or SC_ENOMEM. */
int tpl_escape(struct sc_buf *b, const char *s, size_t n, enum sc_escape escape);

#endif
