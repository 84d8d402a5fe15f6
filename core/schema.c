/* JSON Schema validation for the keywords our schemas use (see schema.h).
 * Messages are written for the person who typed the request: the field's
 * path, what is wrong, and what to write instead. */
#include "schema.h"

#include <ctype.h>
#include <math.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

static const char *const known_keywords[] = {
	"$schema", "$id", "$ref", "$defs", "$comment", "title", "description",
	"default", "examples", "type", "enum", "const", "properties", "required",
	"additionalProperties", "items", "minItems", "maxItems", "minimum",
	"maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength",
	"maxLength", "pattern", "anyOf", "oneOf", NULL
};

const char *core_json_type_name(const cJSON *v)
{
	if (!v || cJSON_IsNull(v)) return "null";
	if (cJSON_IsBool(v)) return "a boolean";
	if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;
		return (d == floor(d) && fabs(d) < 9e15) ? "an integer" : "a number";
	}
	if (cJSON_IsString(v)) return "a string";
	if (cJSON_IsArray(v)) return "a list";
	if (cJSON_IsObject(v)) return "an object";
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
			size_t cost = tolower((unsigned char)a[i - 1]) !=
				      tolower((unsigned char)b[j - 1]);
			size_t best = prev + cost;
			if (row[j] + 1 < best) best = row[j] + 1;
			if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
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
	cJSON_ArrayForEach(kw, schema) {
		size_t i;
		for (i = 0; known_keywords[i]; i++)
			if (strcmp(kw->string, known_keywords[i]) == 0)
				break;
		if (!known_keywords[i])
			return sc_error_set(err, SC_EINTERNAL,
					    "schema keyword \"%s\" is not implemented by the validator",
					    kw->string);
		int rc = SC_OK;
		if (!strcmp(kw->string, "properties") || !strcmp(kw->string, "$defs")) {
			const cJSON *p;
			cJSON_ArrayForEach(p, kw)
				if ((rc = core_schema_check(p, err)))
					return rc;
		} else if (!strcmp(kw->string, "items") ||
			   !strcmp(kw->string, "additionalProperties")) {
			rc = core_schema_check(kw, err);
		} else if (!strcmp(kw->string, "anyOf") || !strcmp(kw->string, "oneOf")) {
			const cJSON *p;
			cJSON_ArrayForEach(p, kw)
				if ((rc = core_schema_check(p, err)))
					return rc;
		} else if (!strcmp(kw->string, "pattern")) {
			regex_t re;
			if (!cJSON_IsString(kw) ||
			    regcomp(&re, kw->valuestring, REG_EXTENDED | REG_NOSUB))
				return sc_error_set(err, SC_EINTERNAL, "schema pattern does not compile");
			regfree(&re);
		}
		if (rc)
			return rc;
	}
	return SC_OK;
}

/* ------------------------------------------------------------------ */

struct vctx {
	core_schema_resolver resolve;
	void *arg;
	const cJSON *root;
	struct sc_error *err;
};

static int validate(struct vctx *v, const cJSON *schema, const cJSON *inst,
		    const char *path);

static char *child_path(const char *path, const char *key)
{
	/* Fields of the request itself read as "asset.port", not
	 * "request.asset.port". */
	if (strcmp(path, "request") == 0)
		return strdup(key);
	return core_asprintf("%s.%s", path, key);
}

static char *index_path(const char *path, int i)
{
	return core_asprintf("%s[%d]", path, i);
}

static int type_matches(const char *t, const cJSON *inst)
{
	if (!strcmp(t, "string")) return cJSON_IsString(inst);
	if (!strcmp(t, "boolean")) return cJSON_IsBool(inst);
	if (!strcmp(t, "object")) return cJSON_IsObject(inst);
	if (!strcmp(t, "array")) return cJSON_IsArray(inst);
	if (!strcmp(t, "null")) return cJSON_IsNull(inst);
	if (!strcmp(t, "number")) return cJSON_IsNumber(inst);
	if (!strcmp(t, "integer"))
		return cJSON_IsNumber(inst) && inst->valuedouble == floor(inst->valuedouble);
	return 0;
}

static const char *type_phrase(const char *t)
{
	if (!strcmp(t, "string")) return "a string (in double quotes)";
	if (!strcmp(t, "boolean")) return "true or false (no quotes)";
	if (!strcmp(t, "object")) return "a JSON object";
	if (!strcmp(t, "array")) return "a JSON list";
	if (!strcmp(t, "integer")) return "a whole number (no quotes)";
	if (!strcmp(t, "number")) return "a number (no quotes)";
	return t;
}

/* A short rendering of a value for messages: strings quoted and cut. */
static char *show(const cJSON *inst)
{
	if (cJSON_IsString(inst)) {
		size_t n = strlen(inst->valuestring);
		return core_asprintf("\"%.*s%s\"", n > 40 ? 40 : (int)n,
				     inst->valuestring, n > 40 ? "..." : "");
	}
	if (cJSON_IsNumber(inst))
		return core_asprintf("%g", inst->valuedouble);
	if (cJSON_IsBool(inst))
		return core_asprintf("%s", cJSON_IsTrue(inst) ? "true" : "false");
	return core_asprintf("%s", core_json_type_name(inst));
}

static int check_type(struct vctx *v, const cJSON *type, const cJSON *inst,
		      const char *path)
{
	if (cJSON_IsString(type)) {
		if (type_matches(type->valuestring, inst))
			return SC_OK;
		char *s = show(inst);
		sc_error_set(v->err, SC_EINPUT, "%s: must be %s, got %s %s",
			     path, type_phrase(type->valuestring),
			     core_json_type_name(inst), s ? s : "");
		free(s);
		return SC_EINPUT;
	}
	const cJSON *t;
	cJSON_ArrayForEach(t, type)
		if (cJSON_IsString(t) && type_matches(t->valuestring, inst))
			return SC_OK;
	return sc_error_set(v->err, SC_EINPUT, "%s: %s is not allowed here; use %s",
			    path, core_json_type_name(inst),
			    cJSON_GetArraySize(type) == 2
				    ? "a string or a JSON object/list as documented"
				    : "one of the documented types");
}

static int check_enum(struct vctx *v, const cJSON *en, const cJSON *inst,
		      const char *path)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, en)
		if (cJSON_Compare(e, inst, 1))
			return SC_OK;
	char *list = NULL, *s = show(inst);
	const cJSON *hint = NULL;
	cJSON_ArrayForEach(e, en) {
		char *item = show(e);
		char *n = core_asprintf("%s%s%s", list ? list : "", list ? ", " : "",
					item ? item : "");
		free(item);
		free(list);
		list = n;
		if (cJSON_IsString(e) && cJSON_IsString(inst) &&
		    core_edit_distance(e->valuestring, inst->valuestring) <= 2)
			hint = e;
	}
	if (hint)
		sc_error_set(v->err, SC_EINPUT, "%s: %s is not allowed; did you mean \"%s\"? (one of %s)",
			     path, s ? s : "", hint->valuestring, list ? list : "");
	else
		sc_error_set(v->err, SC_EINPUT, "%s: %s is not allowed; use one of %s",
			     path, s ? s : "", list ? list : "");
	free(s);
	free(list);
	return SC_EINPUT;
}

static int check_number(struct vctx *v, const cJSON *schema, const cJSON *inst,
			const char *path)
{
	if (!cJSON_IsNumber(inst))
		return SC_OK;
	double d = inst->valuedouble;
	const cJSON *min = cJSON_GetObjectItemCaseSensitive(schema, "minimum");
	const cJSON *max = cJSON_GetObjectItemCaseSensitive(schema, "maximum");
	const cJSON *xmin = cJSON_GetObjectItemCaseSensitive(schema, "exclusiveMinimum");
	const cJSON *xmax = cJSON_GetObjectItemCaseSensitive(schema, "exclusiveMaximum");
	int bad = (min && d < min->valuedouble) || (max && d > max->valuedouble) ||
		  (xmin && d <= xmin->valuedouble) || (xmax && d >= xmax->valuedouble);
	if (!bad)
		return SC_OK;
	char lo[64] = "", hi[64] = "";
	if (min) snprintf(lo, sizeof lo, "at least %g", min->valuedouble);
	if (xmin) snprintf(lo, sizeof lo, "more than %g", xmin->valuedouble);
	if (max) snprintf(hi, sizeof hi, "at most %g", max->valuedouble);
	if (xmax) snprintf(hi, sizeof hi, "less than %g", xmax->valuedouble);
	return sc_error_set(v->err, SC_EINPUT, "%s: %g is out of range; use a value %s%s%s",
			    path, d, lo, (*lo && *hi) ? " and " : "", hi);
}

static int check_string(struct vctx *v, const cJSON *schema, const cJSON *inst,
			const char *path)
{
	if (!cJSON_IsString(inst))
		return SC_OK;
	size_t n = strlen(inst->valuestring);
	const cJSON *minl = cJSON_GetObjectItemCaseSensitive(schema, "minLength");
	const cJSON *maxl = cJSON_GetObjectItemCaseSensitive(schema, "maxLength");
	const cJSON *pat = cJSON_GetObjectItemCaseSensitive(schema, "pattern");
	const cJSON *desc = cJSON_GetObjectItemCaseSensitive(schema, "description");
	if (minl && (double)n < minl->valuedouble)
		return sc_error_set(v->err, SC_EINPUT, "%s: must not be empty%s%s", path,
				    desc ? "; give " : "", desc ? desc->valuestring : "");
	if (maxl && (double)n > maxl->valuedouble)
		return sc_error_set(v->err, SC_EINPUT, "%s: is %zu characters long; at most %g are allowed",
				    path, n, maxl->valuedouble);
	if (pat) {
		regex_t re;
		if (regcomp(&re, pat->valuestring, REG_EXTENDED | REG_NOSUB))
			return sc_error_set(v->err, SC_EINTERNAL, "%s: schema pattern does not compile", path);
		int m = regexec(&re, inst->valuestring, 0, NULL, 0);
		regfree(&re);
		if (m) {
			char *s = show(inst);
			sc_error_set(v->err, SC_EINPUT, "%s: %s has a form that is not allowed here%s%s%s",
				     path, s ? s : "", desc ? " (expected: " : "", desc ? desc->valuestring : "",
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
	cJSON_ArrayForEach(p, props) {
		size_t d = core_edit_distance(p->string, key);
		if (d < bestd) {
			bestd = d;
			best = p;
		}
	}
	return best ? best->string : NULL;
}

static int check_object(struct vctx *v, const cJSON *schema, const cJSON *inst,
			const char *path)
{
	if (!cJSON_IsObject(inst))
		return SC_OK;
	const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
	const cJSON *req = cJSON_GetObjectItemCaseSensitive(schema, "required");
	const cJSON *addl = cJSON_GetObjectItemCaseSensitive(schema, "additionalProperties");
	const cJSON *r;
	cJSON_ArrayForEach(r, req) {
		if (cJSON_GetObjectItemCaseSensitive(inst, r->valuestring))
			continue;
		const cJSON *ps = props ? cJSON_GetObjectItemCaseSensitive(props, r->valuestring) : NULL;
		const cJSON *d = ps ? cJSON_GetObjectItemCaseSensitive(ps, "description") : NULL;
		return sc_error_set(v->err, SC_EINPUT, "%s: \"%s\" is required%s%s%s", path,
				    r->valuestring, d ? " (" : "", d ? d->valuestring : "", d ? ")" : "");
	}
	const cJSON *m;
	cJSON_ArrayForEach(m, inst) {
		const cJSON *ps = props ? cJSON_GetObjectItemCaseSensitive(props, m->string) : NULL;
		char *cp = child_path(path, m->string);
		if (!cp)
			return sc_error_set(v->err, SC_ENOMEM, "out of memory");
		int rc = SC_OK;
		if (ps) {
			rc = validate(v, ps, m, cp);
		} else if (cJSON_IsFalse(addl)) {
			const char *near = props ? closest_key(props, m->string) : NULL;
			if (near)
				rc = sc_error_set(v->err, SC_EINPUT,
						  "%s: unknown key \"%s\"; did you mean \"%s\"? Fix or remove it",
						  path, m->string, near);
			else
				rc = sc_error_set(v->err, SC_EINPUT,
						  "%s: unknown key \"%s\"; remove it (see the schema for the keys allowed here)",
						  path, m->string);
		} else if (cJSON_IsObject(addl)) {
			rc = validate(v, addl, m, cp);
		}
		free(cp);
		if (rc)
			return rc;
	}
	return SC_OK;
}

static int check_array(struct vctx *v, const cJSON *schema, const cJSON *inst,
		       const char *path)
{
	if (!cJSON_IsArray(inst))
		return SC_OK;
	int n = cJSON_GetArraySize(inst);
	const cJSON *mi = cJSON_GetObjectItemCaseSensitive(schema, "minItems");
	const cJSON *ma = cJSON_GetObjectItemCaseSensitive(schema, "maxItems");
	if (mi && n < mi->valuedouble)
		return sc_error_set(v->err, SC_EINPUT, "%s: needs at least %g item(s)", path, mi->valuedouble);
	if (ma && n > ma->valuedouble)
		return sc_error_set(v->err, SC_EINPUT, "%s: allows at most %g item(s)", path, ma->valuedouble);
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(schema, "items");
	if (!items)
		return SC_OK;
	int i = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, inst) {
		char *ip = index_path(path, i++);
		int rc = ip ? validate(v, items, e, ip) : SC_ENOMEM;
		free(ip);
		if (rc)
			return rc;
	}
	return SC_OK;
}

static int check_alternatives(struct vctx *v, const cJSON *alts, int one,
			      const cJSON *inst, const char *path, const cJSON *schema)
{
	int matched = 0;
	const cJSON *a;
	struct sc_error first = SC_ERROR_INIT;
	cJSON_ArrayForEach(a, alts) {
		struct sc_error e = SC_ERROR_INIT;
		struct vctx sub = *v;
		sub.err = &e;
		if (validate(&sub, a, inst, path) == SC_OK)
			matched++;
		else if (!first.message)
			first = e;
		else
			sc_error_clear(&e);
	}
	int ok = one ? matched == 1 : matched >= 1;
	if (ok) {
		sc_error_clear(&first);
		return SC_OK;
	}
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(schema, "description");
	if (d)
		sc_error_set(v->err, SC_EINPUT, "%s: must be %s", path, d->valuestring);
	else
		sc_error_set(v->err, SC_EINPUT, "%s", first.message ? first.message : "invalid value");
	sc_error_clear(&first);
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
		    const char *path)
{
	if (cJSON_IsTrue(schema))
		return SC_OK;
	if (cJSON_IsFalse(schema))
		return sc_error_set(v->err, SC_EINPUT, "%s: is not allowed here", path);
	const cJSON *ref = cJSON_GetObjectItemCaseSensitive(schema, "$ref");
	if (ref) {
		const cJSON *target = resolve_ref(v, ref->valuestring);
		if (!target)
			return sc_error_set(v->err, SC_EINTERNAL, "%s: schema $ref \"%s\" unresolved",
					    path, ref->valuestring);
		struct vctx sub = *v;
		if (ref->valuestring[0] != '#')
			sub.root = target;
		int rc = validate(&sub, target, inst, path);
		if (rc)
			return rc;
	}
	const cJSON *k;
	int rc;
	if ((k = cJSON_GetObjectItemCaseSensitive(schema, "type")) &&
	    (rc = check_type(v, k, inst, path)))
		return rc;
	if ((k = cJSON_GetObjectItemCaseSensitive(schema, "enum")) &&
	    (rc = check_enum(v, k, inst, path)))
		return rc;
	if ((k = cJSON_GetObjectItemCaseSensitive(schema, "const")) && !cJSON_Compare(k, inst, 1))
		return sc_error_set(v->err, SC_EINPUT, "%s: has the wrong value", path);
	if ((rc = check_number(v, schema, inst, path)) ||
	    (rc = check_string(v, schema, inst, path)) ||
	    (rc = check_object(v, schema, inst, path)) ||
	    (rc = check_array(v, schema, inst, path)))
		return rc;
	if ((k = cJSON_GetObjectItemCaseSensitive(schema, "anyOf")) &&
	    (rc = check_alternatives(v, k, 0, inst, path, schema)))
		return rc;
	if ((k = cJSON_GetObjectItemCaseSensitive(schema, "oneOf")) &&
	    (rc = check_alternatives(v, k, 1, inst, path, schema)))
		return rc;
	return SC_OK;
}

int core_schema_validate(const cJSON *schema, const cJSON *inst, const char *path,
			 core_schema_resolver resolve, void *arg, struct sc_error *err)
{
	struct vctx v = { resolve, arg, schema, err };
	return validate(&v, schema, inst, path);
}
