/*
 * Mustache templates (https://mustache.github.io/mustache.5.html): the
 * engine of `serve --template` and of event mails. Part of the host API;
 * implemented in core/template/.
 *
 * Supported: interpolation ({{name}}, {{{name}}}, {{&name}}), dotted names
 * and the implicit iterator ({{.}}), sections, inverted sections,
 * comments, set delimiters and partials, as the official spec defines
 * them, and its optional modules ~dynamic-names ({{>*name}}) and
 * ~inheritance ({{<parent}}{{$block}}...{{/block}}{{/parent}}): every case
 * of every spec file passes (tests/unit/test_mustache). Go-template style
 * names with a leading dot ({{ .a.b }}, as LimaCharlie's and
 * smtp-pigeon's docs write them) mean the same as {{a.b}}; {{ . }} is the
 * whole current context. {{list.0}} is an array element. Lambdas (the
 * optional ~lambdas module) are not supported: data is JSON.
 *
 * Values: strings as they are, numbers as JSON prints them (1.0 is "1"),
 * true/false, null and missing names as nothing, objects and arrays as
 * compact JSON (then escaped like any value). Sections skip missing
 * names, null, false, "", 0 and [] (JavaScript truthiness, as
 * mustache.js) and repeat over the elements of other arrays.
 *
 * Errors follow plugin.h's contract. Untrusted input: a template may
 * come from a request, so compile and render are bounded (sections
 * nested 63 deep in a template, 64 levels of sections and partials while
 * rendering, 64 MiB of output, 2^24 steps); past a bound is SC_EINPUT
 * saying which. doc/templates.md has the details.
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
	SC_ESCAPE_HTML = 0, /* & < > " as the spec expects, and ' as &#39; (text/html) */
	SC_ESCAPE_JSON,     /* JSON string escaping without the quotes, non-UTF-8
	                     * bytes as U+FFFD: "{{x}}" is always a valid JSON
	                     * string (application/json) */
	SC_ESCAPE_NONE,     /* as is (text/plain, subjects); CR and LF stay, so a
	                     * caller writing a protocol line (an HTTP header)
	                     * must refuse or replace them itself */
	SC_ESCAPE_URL       /* RFC 3986 percent-encoding of all but the unreserved
	                     * A-Z a-z 0-9 - . _ ~ (a value in a URL's path or
	                     * query: --url https://h/x?s={{subject}}) */
};

struct sc_template; /* compiled template; immutable, shareable across threads */

/* Compile `len` bytes of `text` (copied: the caller keeps it). SC_OK with
 * *out set (free with sc_template_free), or SC_EINPUT with a message
 * naming the line, column and problem ("line 3, column 5: unclosed
 * section \"items\": ..."; also mismatched or stray closing tags,
 * unclosed tags, bad delimiters, empty or bad names, nesting too deep),
 * or SC_ENOMEM; *out is NULL on failure. */
int sc_template_compile(const char *text, size_t len, struct sc_template **out,
                        struct sc_error *err);

/* Render against `data` (any JSON value: the context stack's bottom; NULL
 * renders every name as missing). `partials` is a JSON object of name ->
 * template text, or NULL; partials are compiled as they are first met,
 * for this render only (their errors are SC_EINPUT naming the partial;
 * a missing partial renders as nothing, as the spec says). On SC_OK *out
 * is an allocated, NUL-terminated string (the caller's, to free) and
 * *outlen its length (outlen may be NULL; the template's own text may
 * hold NUL bytes). Errors: SC_EINPUT (a bound, a bad partial, partials
 * not an object, an unknown escape), SC_ENOMEM; *out is NULL then. */
int sc_template_render(const struct sc_template *t, const cJSON *data, const cJSON *partials,
                       enum sc_escape escape, char **out, size_t *outlen, struct sc_error *err);

/* Compile the NUL-terminated `text` and render it without partials in
 * one go. Same codes and ownership as the two above. */
int sc_template_expand(const char *text, const cJSON *data, enum sc_escape escape, char **out,
                       struct sc_error *err);

/* NULL is fine. */
void sc_template_free(struct sc_template *t);

#ifdef __cplusplus
}
#endif
#endif
