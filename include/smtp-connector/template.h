/*
 * Mustache templates (https://mustache.github.io/mustache.5.html): the
 * engine of `serve --template` and of event mails. Part of the host API;
 * implemented in core/template/.
 *
 * Supported: interpolation ({{name}}, {{{name}}}, {{&name}}), dotted names
 * and the implicit iterator ({{.}}), sections, inverted sections,
 * comments, set delimiters and partials, as the official spec defines
 * them. Go-template style names with a leading dot ({{ .a.b }}, as
 * LimaCharlie's and smtp-pigeon's docs write them) mean the same as
 * {{a.b}}. Lambdas are not supported (data is JSON).
 *
 * Errors follow plugin.h's contract. Untrusted input: a template may
 * come from a request; compile and render bound their own recursion.
 */
#ifndef SMTP_CONNECTOR_TEMPLATE_H
#define SMTP_CONNECTOR_TEMPLATE_H

#include <stddef.h>
#include <smtp-connector/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/* How {{name}} escapes values ({{{name}}} and {{&name}} never do). */
enum sc_escape {
	SC_ESCAPE_HTML = 0, /* & < > " ' as the spec expects (text/html) */
	SC_ESCAPE_JSON,     /* JSON string escaping (application/json) */
	SC_ESCAPE_NONE      /* as is (text/plain, subjects) */
};

struct sc_template; /* compiled template; immutable, shareable across threads */

/* Compile `len` bytes of `text`. SC_OK with *out set (free with
 * sc_template_free), or SC_EINPUT with a message naming the line, column
 * and problem (unclosed section, mismatched close, bad delimiters), or
 * SC_ENOMEM. */
int sc_template_compile(const char *text, size_t len, struct sc_template **out,
			struct sc_error *err);

/* Render against `data` (any JSON value: the context stack's bottom).
 * `partials` is a JSON object of name -> template text, or NULL; partials
 * are compiled as they are first met (their errors are SC_EINPUT naming
 * the partial). On SC_OK *out is an allocated, NUL-terminated string and
 * *outlen its length (outlen may be NULL). Errors: SC_EINPUT, SC_ENOMEM. */
int sc_template_render(const struct sc_template *t, const cJSON *data,
		       const cJSON *partials, enum sc_escape escape, char **out,
		       size_t *outlen, struct sc_error *err);

/* Compile and render in one go. Same codes as the two above. */
int sc_template_expand(const char *text, const cJSON *data, enum sc_escape escape,
		       char **out, struct sc_error *err);

void sc_template_free(struct sc_template *t);

#ifdef __cplusplus
}
#endif
#endif
