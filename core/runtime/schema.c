/* JSON Schema validation for the keywords our schemas use (see schema.h).
 * Messages are written for the person who typed the request: the field's
 * path, what is wrong, and what to write instead. */
#include "schema.h"

#include <ctype.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const known_keywords[] = {"$schema",
                                             "$id",
                                             "$ref",
                                             "$defs",
                                             "$comment",
                                             "title",
                                             "description",
                                             "default",
                                             "examples",
                                             "type",
                                             "enum",
                                             "const",
                                             "properties",
                                             "required",
                                             "additionalProperties",
                                             "items",
                                             "minItems",
                                             "maxItems",
                                             "minimum",
                                             "maximum",
                                             "exclusiveMinimum",
                                             "exclusiveMaximum",
                                             "minLength",
                                             "maxLength",
                                             "pattern",
                                             "anyOf",
                                             "oneOf",
                                             "writeOnly",
                                             NULL};

const char *core_json_type_name(const cJSON *v)
{
	if (!v || cJSON_IsNull(v))
		return "null";
	if (cJSON_IsBool(v))
		return "a boolean";
	if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;
		return (d == floor(d) && fabs(d) < 9e15) ? "an integer" : "a number";
	}
	if (cJSON_IsString(v))
		return "a string";
	if (cJSON_IsArray(v))
		return "a list";
	if (cJSON_IsObject(v))
		return "an object";
	return "an unknown value";
}

size_t core_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return 99;
	size_t row[65];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t prev = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t cur = row[j];
			size_t cost =
			    tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
			size_t best = prev + cost;
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			prev = cur;
		}
	}
	return row[lb];
}

int core_schema_check(const cJSON *schema, struct sc_error *err)
{
	if (cJSON_IsBool(schema))
		return SC_OK;
	if (!cJSON_IsObject(schema))
		return sc_error_set(err, SC_EINTERNAL, "schema node is not an object");
	const cJSON *kw;
	cJSON_ArrayForEach(kw, schema)
	{
		size_t i;
		for (i = 0; known_keywords[i]; i++)
			if (strcmp(kw->string, known_keywords[i]) == 0)
				break;
		if (!known_keywords[i])
			return sc_error_set(
			    err, SC_EINTERNAL,
			    "schema keyword \"%s\" is not implemented by the validator",
			    kw->string);
		int rc = SC_OK;
		if (!strcmp(kw->string, "properties") || !strcmp(kw->string, "$defs")) {
			const cJSON *p;
			cJSON_ArrayForEach(p, kw) if ((rc = core_schema_check(p, err))) return rc;
		} else if (!strcmp(kw->string, "items") ||
		           !strcmp(kw->string, "additionalProperties")) {
			rc = core_schema_check(kw, err);
		} else if (!strcmp(kw->string, "anyOf") || !strcmp(kw->string, "oneOf")) {
			const cJSON *p;
			cJSON_ArrayForEach(p, kw) if ((rc = core_schema_check(p, err))) return rc;
		} else if (!strcmp(kw->string, "pattern")) {
			regex_t re;
			if (!cJSON_IsString(kw) ||
			    regcomp(&re, kw->valuestring, REG_EXTENDED | REG_NOSUB))
				return sc_error_set(err, SC_EINTERNAL,
				                    "schema pattern does not compile");
			regfree(&re);
		}
		if (rc)
			return rc;
	}
	return SC_OK;
}

/* ------------------------------------------------------------------ */

/* Where a node is, as a chain on the stack: the path string
 * ("parameters[0].to") is only written out for an error message. */
struct vpath {
	const struct vpath *up; /* NULL: the root */
	const char *key;        /* a member; the root's name; NULL: an item */
	int index;              /* the item's index */
	int secret;             /* inside a "writeOnly" schema: never show the value */
};

/* err NULL: only whether the instance is valid (no messages are built). */
struct vctx {
	core_schema_resolver resolve;
	void *arg;
	const cJSON *root;
	struct sc_error *err;
};

/* The keywords of one schema node, found in one pass over its members
 * (the first of a name wins, as with cJSON_GetObjectItemCaseSensitive). */
struct kw {
	const cJSON *ref, *type, *en, *cnst, *desc, *any, *one, *wo;
	const cJSON *min, *max, *xmin, *xmax; /* numbers */
	const cJSON *minl, *maxl, *pat;       /* strings */
	const cJSON *props, *req, *addl;      /* objects */
	const cJSON *mini, *maxi, *items;     /* arrays */
};

static void keywords(const cJSON *schema, struct kw *k)
{
	memset(k, 0, sizeof *k);
	const cJSON *c;
	cJSON_ArrayForEach(c, schema)
	{
		const char *s = c->string;
		const cJSON **slot = NULL;
		if (!s)
			continue;
		switch (s[0]) {
		case '$':
			if (!strcmp(s, "$ref"))
				slot = &k->ref;
			break;
		case 't':
			if (!strcmp(s, "type"))
				slot = &k->type;
			break;
		case 'c':
			if (!strcmp(s, "const"))
				slot = &k->cnst;
			break;
		case 'd':
			if (!strcmp(s, "description"))
				slot = &k->desc;
			break;
		case 'o':
			if (!strcmp(s, "oneOf"))
				slot = &k->one;
			break;
		case 'r':
			if (!strcmp(s, "required"))
				slot = &k->req;
			break;
		case 'i':
			if (!strcmp(s, "items"))
				slot = &k->items;
			break;
		case 'w':
			if (!strcmp(s, "writeOnly"))
				slot = &k->wo;
			break;
		case 'a':
			if (!strcmp(s, "anyOf"))
				slot = &k->any;
			else if (!strcmp(s, "additionalProperties"))
				slot = &k->addl;
			break;
		case 'p':
			if (!strcmp(s, "properties"))
				slot = &k->props;
			else if (!strcmp(s, "pattern"))
				slot = &k->pat;
			break;
		case 'e':
			if (!strcmp(s, "enum"))
				slot = &k->en;
			else if (!strcmp(s, "exclusiveMinimum"))
				slot = &k->xmin;
			else if (!strcmp(s, "exclusiveMaximum"))
				slot = &k->xmax;
			break;
		case 'm':
			if (!strcmp(s, "minimum"))
				slot = &k->min;
			else if (!strcmp(s, "maximum"))
				slot = &k->max;
			else if (!strcmp(s, "minLength"))
				slot = &k->minl;
			else if (!strcmp(s, "maxLength"))
				slot = &k->maxl;
			else if (!strcmp(s, "minItems"))
				slot = &k->mini;
			else if (!strcmp(s, "maxItems"))
				slot = &k->maxi;
			break;
		default:
			break;
		}
		if (slot && !*slot)
			*slot = c;
	}
}

static int validate(struct vctx *v, const cJSON *schema, const cJSON *inst,
                    const struct vpath *path);

static char *path_text(const struct vpath *p)
{
	if (!p->up)
		return strdup(p->key);
	char *up = path_text(p->up);
	if (!up)
		return NULL;
	char *s;
	if (!p->key)
		s = sc_asprintf("%s[%d]", up, p->index);
	else if (strcmp(up, "request") == 0)
		s = strdup(p->key); /* "asset.port", not "request.asset.port" */
	else
		s = sc_asprintf("%s.%s", up, p->key);
	free(up);
	return s;
}

/* Set "<path>: <message>" (unless quiet) and return code. */
static int fail(struct vctx *v, int code, const struct vpath *at, const char *fmt, ...)
    SC_PRINTF(4, 5);
static int fail(struct vctx *v, int code, const struct vpath *at, const char *fmt, ...)
{
	if (!v->err)
		return code;
	va_list ap;
	va_start(ap, fmt);
	char *what = core_vasprintf(fmt, ap);
	va_end(ap);
	char *path = path_text(at);
	if (what && path)
		sc_error_set(v->err, code, "%s: %s", path, what);
	else
		code = sc_error_set(v->err, SC_ENOMEM, "out of memory");
	free(what);
	free(path);
	return code;
}

static int type_matches(const char *t, const cJSON *inst)
{
	if (!strcmp(t, "string"))
		return cJSON_IsString(inst);
	if (!strcmp(t, "boolean"))
		return cJSON_IsBool(inst);
	if (!strcmp(t, "object"))
		return cJSON_IsObject(inst);
	if (!strcmp(t, "array"))
		return cJSON_IsArray(inst);
	if (!strcmp(t, "null"))
		return cJSON_IsNull(inst);
	if (!strcmp(t, "number"))
		return cJSON_IsNumber(inst);
	if (!strcmp(t, "integer"))
		return cJSON_IsNumber(inst) && inst->valuedouble == floor(inst->valuedouble);
	return 0;
}

static const char *type_phrase(const char *t)
{
	if (!strcmp(t, "string"))
		return "a string (in double quotes)";
	if (!strcmp(t, "boolean"))
		return "true or false (no quotes)";
	if (!strcmp(t, "object"))
		return "a JSON object";
	if (!strcmp(t, "array"))
		return "a JSON list";
	if (!strcmp(t, "integer"))
		return "a whole number (no quotes)";
	if (!strcmp(t, "number"))
		return "a number (no quotes)";
	return t;
}

/* A short rendering of a value for messages: strings quoted and cut;
 * nothing of a secret's value, whatever its type. */
static char *show(const cJSON *inst, const struct vpath *at)
{
	if (at && at->secret)
		return strdup("(the value is not shown: the field is secret)");
	if (cJSON_IsString(inst)) {
		const char *s = inst->valuestring;
		size_t n = strlen(s), cut = n > 40 ? 40 : n;
		while (cut > 0 && cut < n && ((unsigned char)s[cut] & 0xC0) == 0x80)
			cut--; /* not inside a UTF-8 character */
		return sc_asprintf("\"%.*s%s\"", (int)cut, s, cut < n ? "..." : "");
	}
	if (cJSON_IsNumber(inst))
		return sc_asprintf("%g", inst->valuedouble);
	if (cJSON_IsBool(inst))
		return sc_asprintf("%s", cJSON_IsTrue(inst) ? "true" : "false");
	return sc_asprintf("%s", core_json_type_name(inst));
}

static int check_type(struct vctx *v, const cJSON *type, const cJSON *inst,
                      const struct vpath *path)
{
	if (cJSON_IsString(type)) {
		if (type_matches(type->valuestring, inst))
			return SC_OK;
		if (!v->err)
			return SC_EINPUT;
		char *s = show(inst, path);
		fail(v, SC_EINPUT, path, "must be %s, got %s %s", type_phrase(type->valuestring),
		     core_json_type_name(inst), s ? s : "");
		free(s);
		return SC_EINPUT;
	}
	const cJSON *t;
	cJSON_ArrayForEach(t, type) if (cJSON_IsString(t) &&
	                                type_matches(t->valuestring, inst)) return SC_OK;
	return fail(v, SC_EINPUT, path, "%s is not allowed here; use %s", core_json_type_name(inst),
	            cJSON_GetArraySize(type) == 2 ? "a string or a JSON object/list as documented"
	                                          : "one of the documented types");
}

static int check_enum(struct vctx *v, const cJSON *en, const cJSON *inst, const struct vpath *path)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, en) if (cJSON_Compare(e, inst, 1)) return SC_OK;
	if (!v->err)
		return SC_EINPUT;
	char *list = NULL, *s = show(inst, path);
	const cJSON *hint = NULL;
	cJSON_ArrayForEach(e, en)
	{
		char *item = show(e, NULL);
		char *n =
		    sc_asprintf("%s%s%s", list ? list : "", list ? ", " : "", item ? item : "");
		free(item);
		free(list);
		list = n;
		if (cJSON_IsString(e) && cJSON_IsString(inst) && !path->secret &&
		    core_edit_distance(e->valuestring, inst->valuestring) <= 2)
			hint = e;
	}
	if (hint)
		fail(v, SC_EINPUT, path, "%s is not allowed; did you mean \"%s\"? (one of %s)",
		     s ? s : "", hint->valuestring, list ? list : "");
	else
		fail(v, SC_EINPUT, path, "%s is not allowed; use one of %s", s ? s : "",
		     list ? list : "");
	free(s);
	free(list);
	return SC_EINPUT;
}

static int check_number(struct vctx *v, const struct kw *k, const cJSON *inst,
                        const struct vpath *path)
{
	if (!cJSON_IsNumber(inst))
		return SC_OK;
	double d = inst->valuedouble;
	const cJSON *min = k->min, *max = k->max, *xmin = k->xmin, *xmax = k->xmax;
	int bad = (min && d < min->valuedouble) || (max && d > max->valuedouble) ||
	          (xmin && d <= xmin->valuedouble) || (xmax && d >= xmax->valuedouble);
	if (!bad)
		return SC_OK;
	char lo[64] = "", hi[64] = "";
	if (min)
		snprintf(lo, sizeof lo, "at least %g", min->valuedouble);
	if (xmin)
		snprintf(lo, sizeof lo, "more than %g", xmin->valuedouble);
	if (max)
		snprintf(hi, sizeof hi, "at most %g", max->valuedouble);
	if (xmax)
		snprintf(hi, sizeof hi, "less than %g", xmax->valuedouble);
	if (path->secret)
		return fail(v, SC_EINPUT, path, "is out of range; use a value %s%s%s", lo,
		            (*lo && *hi) ? " and " : "", hi);
	return fail(v, SC_EINPUT, path, "%g is out of range; use a value %s%s%s", d, lo,
	            (*lo && *hi) ? " and " : "", hi);
}

static int check_string(struct vctx *v, const struct kw *k, const cJSON *inst,
                        const struct vpath *path)
{
	if (!cJSON_IsString(inst))
		return SC_OK;
	size_t n = strlen(inst->valuestring);
	const cJSON *minl = k->minl, *maxl = k->maxl, *pat = k->pat, *desc = k->desc;
	if (minl && (double)n < minl->valuedouble)
		return fail(v, SC_EINPUT, path, "must not be empty%s%s", desc ? "; give " : "",
		            desc ? desc->valuestring : "");
	if (maxl && (double)n > maxl->valuedouble && path->secret)
		return fail(v, SC_EINPUT, path, "is too long; at most %g characters are allowed",
		            maxl->valuedouble);
	if (maxl && (double)n > maxl->valuedouble)
		return fail(v, SC_EINPUT, path, "is %zu characters long; at most %g are allowed", n,
		            maxl->valuedouble);
	if (pat) {
		regex_t re;
		if (regcomp(&re, pat->valuestring, REG_EXTENDED | REG_NOSUB))
			return fail(v, SC_EINTERNAL, path, "schema pattern does not compile");
		int m = regexec(&re, inst->valuestring, 0, NULL, 0);
		regfree(&re);
		if (m) {
			if (!v->err)
				return SC_EINPUT;
			char *s = show(inst, path);
			fail(v, SC_EINPUT, path, "%s has a form that is not allowed here%s%s%s",
			     s ? s : "", desc ? " (expected: " : "", desc ? desc->valuestring : "",
			     desc ? ")" : "");
			free(s);
			return SC_EINPUT;
		}
	}
	return SC_OK;
}

static const char *closest_key(const cJSON *props, const char *key)
{
	const cJSON *p, *best = NULL;
	size_t bestd = 3;
	cJSON_ArrayForEach(p, props)
	{
		size_t d = core_edit_distance(p->string, key);
		if (d < bestd) {
			bestd = d;
			best = p;
		}
	}
	return best ? best->string : NULL;
}

static int check_object(struct vctx *v, const struct kw *k, const cJSON *inst,
                        const struct vpath *path)
{
	if (!cJSON_IsObject(inst))
		return SC_OK;
	const cJSON *props = k->props, *req = k->req, *addl = k->addl;
	const cJSON *r;
	cJSON_ArrayForEach(r, req)
	{
		if (cJSON_GetObjectItemCaseSensitive(inst, r->valuestring))
			continue;
		if (!v->err)
			return SC_EINPUT;
		const cJSON *ps =
		    props ? cJSON_GetObjectItemCaseSensitive(props, r->valuestring) : NULL;
		const cJSON *d = ps ? cJSON_GetObjectItemCaseSensitive(ps, "description") : NULL;
		return fail(v, SC_EINPUT, path, "\"%s\" is required%s%s%s", r->valuestring,
		            d ? " (" : "", d ? d->valuestring : "", d ? ")" : "");
	}
	const cJSON *m;
	cJSON_ArrayForEach(m, inst)
	{
		const cJSON *ps = props ? cJSON_GetObjectItemCaseSensitive(props, m->string) : NULL;
		struct vpath cp = {path, m->string, 0, path->secret};
		int rc = SC_OK;
		if (ps) {
			rc = validate(v, ps, m, &cp);
		} else if (cJSON_IsFalse(addl)) {
			const char *near = props && v->err ? closest_key(props, m->string) : NULL;
			if (near)
				rc = fail(
				    v, SC_EINPUT, path,
				    "unknown key \"%s\"; did you mean \"%s\"? Fix or remove it",
				    m->string, near);
			else
				rc = fail(v, SC_EINPUT, path,
				          "unknown key \"%s\"; remove it (see the schema for the "
				          "keys allowed here)",
				          m->string);
		} else if (cJSON_IsObject(addl)) {
			rc = validate(v, addl, m, &cp);
		}
		if (rc)
			return rc;
	}
	return SC_OK;
}

static int check_array(struct vctx *v, const struct kw *k, const cJSON *inst,
                       const struct vpath *path)
{
	if (!cJSON_IsArray(inst))
		return SC_OK;
	int n = cJSON_GetArraySize(inst);
	const cJSON *mi = k->mini, *ma = k->maxi;
	if (mi && n < mi->valuedouble)
		return fail(v, SC_EINPUT, path, "needs at least %g item(s)", mi->valuedouble);
	if (ma && n > ma->valuedouble)
		return fail(v, SC_EINPUT, path, "allows at most %g item(s)", ma->valuedouble);
	const cJSON *items = k->items;
	if (!items)
		return SC_OK;
	int i = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, inst)
	{
		struct vpath ip = {path, NULL, i++, path->secret};
		int rc = validate(v, items, e, &ip);
		if (rc)
			return rc;
	}
	return SC_OK;
}

/* anyOf / oneOf. The alternatives are tried without messages; only when
 * none fits is the first failing one run again for its message. */
static int check_alternatives(struct vctx *v, const cJSON *alts, int one, const cJSON *inst,
                              const struct vpath *path, const cJSON *d)
{
	int matched = 0;
	const cJSON *a, *first = NULL;
	struct vctx quiet = *v;
	quiet.err = NULL;
	cJSON_ArrayForEach(a, alts)
	{
		if (validate(&quiet, a, inst, path) == SC_OK) {
			if (++matched == 1 && !one)
				return SC_OK;
		} else if (!first) {
			first = a;
		}
	}
	if (one && matched == 1)
		return SC_OK;
	if (!v->err)
		return SC_EINPUT;
	if (d)
		return fail(v, SC_EINPUT, path, "must be %s", d->valuestring);
	struct sc_error e = SC_ERROR_INIT;
	if (first) {
		struct vctx sub = *v;
		sub.err = &e;
		validate(&sub, first, inst, path);
	}
	sc_error_set(v->err, SC_EINPUT, "%s", e.message ? e.message : "invalid value");
	sc_error_clear(&e);
	return SC_EINPUT;
}

static const cJSON *resolve_ref(struct vctx *v, const char *ref)
{
	if (strncmp(ref, "#/$defs/", 8) == 0) {
		const cJSON *defs = cJSON_GetObjectItemCaseSensitive(v->root, "$defs");
		return defs ? cJSON_GetObjectItemCaseSensitive(defs, ref + 8) : NULL;
	}
	return v->resolve ? v->resolve(ref, v->arg) : NULL;
}

static int validate(struct vctx *v, const cJSON *schema, const cJSON *inst,
                    const struct vpath *path)
{
	if (cJSON_IsTrue(schema))
		return SC_OK;
	if (cJSON_IsFalse(schema))
		return fail(v, SC_EINPUT, path, "is not allowed here");
	struct kw k;
	keywords(schema, &k);
	int rc;
	/* "writeOnly": true (JSON Schema's annotation for a value that is
	 * sent, never shown back) marks a secret: a password, a client
	 * secret, a key. Its value, and anything inside it, is never quoted,
	 * whatever its type: a secret typed as a number is still a secret. */
	struct vpath secret;
	if (cJSON_IsTrue(k.wo) && !path->secret) {
		secret = *path;
		secret.secret = 1;
		path = &secret;
	}
	if (k.ref) {
		const cJSON *target = resolve_ref(v, k.ref->valuestring);
		if (!target)
			return fail(v, SC_EINTERNAL, path, "schema $ref \"%s\" unresolved",
			            k.ref->valuestring);
		struct vctx sub = *v;
		if (k.ref->valuestring[0] != '#')
			sub.root = target;
		if ((rc = validate(&sub, target, inst, path)))
			return rc;
	}
	if (k.type && (rc = check_type(v, k.type, inst, path)))
		return rc;
	if (k.en && (rc = check_enum(v, k.en, inst, path)))
		return rc;
	if (k.cnst && !cJSON_Compare(k.cnst, inst, 1))
		return fail(v, SC_EINPUT, path, "has the wrong value");
	if ((rc = check_number(v, &k, inst, path)) || (rc = check_string(v, &k, inst, path)) ||
	    (rc = check_object(v, &k, inst, path)) || (rc = check_array(v, &k, inst, path)))
		return rc;
	if (k.any && (rc = check_alternatives(v, k.any, 0, inst, path, k.desc)))
		return rc;
	if (k.one && (rc = check_alternatives(v, k.one, 1, inst, path, k.desc)))
		return rc;
	return SC_OK;
}

int core_schema_validate(const cJSON *schema, const cJSON *inst, const char *path,
                         core_schema_resolver resolve, void *arg, struct sc_error *err)
{
	struct vctx v = {resolve, arg, schema, err};
	struct vpath root = {NULL, path, 0, 0};
	return validate(&v, schema, inst, &root);
}
