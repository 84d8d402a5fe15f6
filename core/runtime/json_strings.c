/* Every string of a request checked against its JSON text (json_strings.h).
 *
 * Why against the text: cJSON decodes "\u0000" into a NUL byte and then
 * treats the string as a C string, so what follows the NUL is gone before
 * any later check can see it; and it copies raw control bytes into strings
 * as if they were JSON. Neither fact survives in the tree. The alternatives
 * were a second JSON parser of our own (two parsers that may disagree about
 * what a request says), or scanning the text for "\u0000" while tracking
 * the path (a second, partial parser again). Instead the text is walked in
 * lock-step with cJSON's own tree: cJSON keeps members and items in text
 * order, so the n-th member in the text is the n-th child. For each string
 * token the walk counts the bytes its escapes decode to and compares that
 * with the length cJSON kept; the path names come from cJSON's keys. So
 * the verdict is about exactly the values the runtime will read, and a
 * text that does not match its tree (which would be a bug) is refused.
 * UTF-8 is checked on the decoded string (escapes cannot produce bad
 * UTF-8: cJSON refuses lone surrogates), with the offset in decoded bytes,
 * the unit a user's "offset" means in the field's value. */
#include "json_strings.h"
#include "utf8.h"

#include <stdlib.h>
#include <string.h>

/* Where a value is: a chain on the stack, written out only for a message. */
struct spath {
	const struct spath *up; /* NULL: the root value */
	const char *key;        /* a member's name; the root's name; NULL: an item */
	int index;
};

struct walk {
	const char *text, *p, *end;
	int line, col; /* of text[0] */
	struct sc_error *err;
	const char *what; /* "the request", or "headers:" for a named value */
	int syntax;       /* the refusal is of the text's syntax, not of a string */
};

static char *path_text(const struct spath *p)
{
	if (!p->up)
		return strdup(p->key ? p->key : "request");
	char *up = path_text(p->up);
	if (!up)
		return NULL;
	char *s;
	if (!p->key)
		s = sc_asprintf("%s[%d]", up, p->index);
	else if (!p->up->up && !p->up->key)
		s = strdup(p->key); /* "asset.port", not "request.asset.port" */
	else
		s = sc_asprintf("%s.%s", up, p->key);
	free(up);
	return s;
}

static void position(const struct walk *w, const char *at, int *line, int *col)
{
	const char *q = w->text, *nl;
	*line = w->line;
	*col = w->col;
	while ((nl = memchr(q, '\n', (size_t)(at - q)))) {
		(*line)++;
		*col = 1;
		q = nl + 1;
	}
	*col += (int)(at - q);
}

/* "<path>: <what>", made valid UTF-8 (a key may not be). */
static int refuse(struct walk *w, const struct spath *at, const char *what)
{
	char *path = path_text(at);
	char *msg = path && what ? sc_asprintf("%s: %s", path, what) : NULL;
	char *clean = msg ? core_utf8_sanitize(msg, strlen(msg), NULL) : NULL;
	int rc = clean ? sc_error_set(w->err, SC_EINPUT, "%s", clean)
	               : sc_error_set(w->err, SC_ENOMEM, "out of memory checking the request");
	free(path);
	free(msg);
	free(clean);
	return rc;
}

static int mismatch(struct walk *w)
{
	int line, col;
	position(w, w->p, &line, &col);
	return sc_error_set(w->err, SC_EINTERNAL,
	                    "%s could not be checked (its text and its parse differ at line %d, "
	                    "column %d); nothing was sent; please report this",
	                    w->what, line, col);
}

static const char *control_name(unsigned char c)
{
	switch (c) {
	case 0x00:
		return "NUL";
	case 0x08:
		return "backspace";
	case 0x09:
		return "tab";
	case 0x0A:
		return "line feed";
	case 0x0C:
		return "form feed";
	case 0x0D:
		return "carriage return";
	case 0x1B:
		return "escape";
	default:
		return "control character";
	}
}

static const char *escape_for(unsigned char c)
{
	switch (c) {
	case 0x08:
		return "\\b";
	case 0x09:
		return "\\t";
	case 0x0A:
		return "\\n";
	case 0x0C:
		return "\\f";
	case 0x0D:
		return "\\r";
	default:
		return NULL;
	}
}

/* JSON whitespace only: cJSON also skips every byte up to 0x20. */
static int skip_space(struct walk *w)
{
	while (w->p < w->end) {
		unsigned char c = (unsigned char)*w->p;
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			w->p++;
			continue;
		}
		if (c >= 0x20)
			return SC_OK;
		int line, col;
		position(w, w->p, &line, &col);
		w->syntax = 1;
		return sc_error_set(
		    w->err, SC_EINPUT,
		    "%s is not valid JSON at line %d, column %d: a raw control "
		    "byte 0x%02X (%s) between values; only spaces, tabs and line breaks "
		    "may separate JSON values (RFC 8259 §2); remove it",
		    w->what, line, col, c, control_name(c));
	}
	return SC_OK;
}

static int raw_control(struct walk *w, const struct spath *at, int key, unsigned char c)
{
	int line, col;
	position(w, w->p, &line, &col);
	const char *esc = escape_for(c);
	char *what;
	if (c == 0)
		what =
		    sc_asprintf("%s a raw NUL byte at line %d, column %d; remove it (JSON strings "
		                "cannot hold raw control characters, RFC 8259 §7)",
		                key ? "its name contains" : "contains", line, col);
	else if (esc)
		what = sc_asprintf(
		    "%s a raw %s (byte 0x%02X) at line %d, column %d, which JSON does "
		    "not allow inside a string (RFC 8259 §7); write it escaped as %s",
		    key ? "its name contains" : "contains", control_name(c), c, line, col, esc);
	else
		what = sc_asprintf(
		    "%s a raw %s (byte 0x%02X) at line %d, column %d, which JSON does "
		    "not allow inside a string (RFC 8259 §7); write it escaped as \\u%04X",
		    key ? "its name contains" : "contains", control_name(c), c, line, col, c);
	int rc = refuse(w, at, what);
	free(what);
	return rc;
}

static int hex4(const char *p, const char *end, unsigned *v)
{
	*v = 0;
	if (end - p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		int d = c >= '0' && c <= '9'   ? c - '0'
		        : c >= 'a' && c <= 'f' ? c - 'a' + 10
		        : c >= 'A' && c <= 'F' ? c - 'A' + 10
		                               : -1;
		if (d < 0)
			return -1;
		*v = *v << 4 | (unsigned)d;
	}
	return 0;
}

/* The escape after a backslash at w->p: moves past it, adds the bytes it
 * decodes to to *n; 1 when it is \u0000; 2 when \u is not followed by
 * four hex digits (cJSON decodes "\u00G1" and "\uZZZZ" to U+0000). */
static int escape(struct walk *w, size_t *n)
{
	unsigned cp, lo;
	w->p++; /* the backslash */
	if (w->p >= w->end)
		return -1;
	if (*w->p != 'u') {
		w->p++;
		(*n)++;
		return 0;
	}
	if (hex4(w->p + 1, w->end, &cp))
		return 2;
	w->p += 5;
	if (cp == 0)
		return 1;
	if (cp >= 0xD800 && cp <= 0xDBFF && w->end - w->p >= 6 && w->p[0] == '\\' &&
	    w->p[1] == 'u' && !hex4(w->p + 2, w->end, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
		w->p += 6;
		*n += 4;
	} else {
		*n += cp < 0x80 ? 1 : cp < 0x800 ? 2 : 3;
	}
	return 0;
}

/* The string token at w->p, whose value cJSON decoded to `got`. */
static int string(struct walk *w, const char *got, const struct spath *at, int key)
{
	if (w->p >= w->end || *w->p != '"' || !got)
		return mismatch(w);
	w->p++;
	size_t n = 0; /* decoded bytes so far */
	while (w->p < w->end && *w->p != '"') {
		unsigned char c = (unsigned char)*w->p;
		if (c < 0x20)
			return raw_control(w, at, key, c);
		if (c != '\\') {
			w->p++;
			n++;
			continue;
		}
		const char *at_escape = w->p;
		int nul = escape(w, &n);
		if (nul < 0)
			return mismatch(w);
		if (nul == 2) {
			int line, col;
			position(w, at_escape, &line, &col);
			char *what =
			    sc_asprintf("%s an invalid escape at line %d, column %d: \\u must be "
			                "followed by four hexadecimal digits (RFC 8259 §7)",
			                key ? "its name contains" : "contains", line, col);
			int rc = refuse(w, at, what);
			free(what);
			return rc;
		}
		if (nul) {
			char *what =
			    sc_asprintf("%s a NUL character (\\u0000) at offset %zu; remove it",
			                key ? "its name contains" : "contains", n);
			int rc = refuse(w, at, what);
			free(what);
			return rc;
		}
	}
	if (w->p >= w->end)
		return mismatch(w);
	w->p++; /* the closing quote */
	size_t len = strlen(got), bad;
	if (len != n)
		return mismatch(w);
	if (core_utf8_valid(got, len, &bad))
		return SC_OK;
	char *what =
	    sc_asprintf("%s not valid UTF-8: byte 0x%02X at offset %zu does not begin a "
	                "valid UTF-8 sequence; send the text as UTF-8 (JSON text is UTF-8, "
	                "RFC 8259 §8.1)",
	                key ? "its name is" : "is", (unsigned char)got[bad], bad);
	int rc = refuse(w, at, what);
	free(what);
	return rc;
}

static int expect(struct walk *w, char c)
{
	int rc = skip_space(w);
	if (rc)
		return rc;
	if (w->p >= w->end || *w->p != c)
		return mismatch(w);
	w->p++;
	return SC_OK;
}

static int value(struct walk *w, const cJSON *v, const struct spath *at);

/* The members of an object or the items of an array, after its bracket. */
static int children(struct walk *w, const cJSON *v, const struct spath *at, int obj)
{
	int i = 0, rc;
	const cJSON *c;
	cJSON_ArrayForEach(c, v)
	{
		if (i > 0 && (rc = expect(w, ',')))
			return rc;
		struct spath cp = {at, obj ? c->string : NULL, i++};
		if (obj && ((rc = skip_space(w)) || (rc = string(w, c->string, &cp, 1)) ||
		            (rc = expect(w, ':'))))
			return rc;
		if ((rc = value(w, c, &cp)))
			return rc;
	}
	return expect(w, obj ? '}' : ']');
}

static int value(struct walk *w, const cJSON *v, const struct spath *at)
{
	int rc = skip_space(w);
	if (rc)
		return rc;
	if (cJSON_IsString(v))
		return string(w, v->valuestring, at, 0);
	if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
		int obj = cJSON_IsObject(v);
		if (w->p >= w->end || *w->p != (obj ? '{' : '['))
			return mismatch(w);
		w->p++;
		return children(w, v, at, obj);
	}
	/* a number or a literal: cJSON checked its spelling */
	const char *start = w->p;
	while (w->p < w->end && (unsigned char)*w->p > 0x20 && !strchr(",]}\"", *w->p))
		w->p++;
	return w->p > start ? SC_OK : mismatch(w);
}

int core_json_strings_check_named(const char *text, size_t len, const cJSON *json, const char *root,
                                  int line, int col, int *syntax, struct sc_error *err)
{
	char *what = root ? sc_asprintf("%s:", root) : strdup("the request");
	if (!what)
		return sc_error_set(err, SC_ENOMEM, "out of memory checking the request");
	struct walk w = {text, text, text + len, line, col, err, what, 0};
	struct spath top = {NULL, root, 0};
	int rc = value(&w, json, &top);
	if (!rc)
		rc = skip_space(&w);
	free(what);
	if (syntax)
		*syntax = rc && w.syntax;
	return rc;
}

int core_json_strings_check(const char *text, size_t len, const cJSON *json, int line, int col,
                            struct sc_error *err)
{
	return core_json_strings_check_named(text, len, json, NULL, line, col, NULL, err);
}

cJSON *sc_json_parse(const char *text, size_t len, const char *what, struct sc_error *err)
{
	return sc_json_parse_fault(text, len, what, NULL, err);
}

cJSON *sc_json_parse_fault(const char *text, size_t len, const char *what, enum sc_json_fault *why,
                           struct sc_error *err)
{
	const char *stop = NULL;
	cJSON *j = text ? cJSON_ParseWithLengthOpts(text, len, &stop, 0) : NULL;
	if (why)
		*why = j ? SC_JSON_OK : SC_JSON_SYNTAX;
	if (!j) {
		sc_error_set(err, SC_EINPUT, "%s: is not valid JSON", what);
		return NULL;
	}
	/* cJSON stops after the first value: anything but whitespace after
	 * it is the text's, and must not be dropped unseen */
	size_t used = stop && stop >= text && stop <= text + len ? (size_t)(stop - text) : len;
	int syntax = 0;
	int rc = core_json_strings_check_named(text, used, j, what, 1, 1, &syntax, err);
	for (size_t i = used; !rc && i < len; i++)
		if (!strchr(" \t\r\n", text[i]) || !text[i]) {
			syntax = 1;
			rc = sc_error_set(err, SC_EINPUT,
			                  "%s: is not valid JSON: more text after "
			                  "the value at offset %zu",
			                  what, i);
		}
	if (rc && why)
		*why = syntax ? SC_JSON_SYNTAX : SC_JSON_STRING;
	if (rc) {
		cJSON_Delete(j);
		return NULL;
	}
	return j;
}
