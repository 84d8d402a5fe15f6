/* Mustache name resolution over JSON (the spec's "context stack"): the
 * first part of a dotted name is looked for from the top of the stack
 * down; the rest only inside what the first part found, so that
 * {{a.b}} never picks up a `b` from an outer context. */
#include "core.h"
#include "template_int.h"

#include <string.h>

/* A member of an object, or an element of an array by its decimal index
 * ({{recipients.0}}: the data is JSON, and lists are common in it). */
static const cJSON *member(const cJSON *v, const char *s, size_t n)
{
	if (cJSON_IsObject(v)) {
		for (const cJSON *c = v->child; c; c = c->next)
			if (c->string && strlen(c->string) == n && memcmp(c->string, s, n) == 0)
				return c;
		return NULL;
	}
	if (!cJSON_IsArray(v) || n == 0 || n > 9)
		return NULL;
	int idx = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return NULL;
		idx = idx * 10 + (s[i] - '0');
	}
	if (n > 1 && s[0] == '0')
		return NULL;
	return cJSON_GetArrayItem(v, idx);
}

const cJSON *tpl_lookup(const cJSON *const *stack, size_t depth, const char *name, size_t n)
{
	if (depth == 0)
		return NULL;
	if (n == 1 && name[0] == '.')
		return stack[depth - 1];
	const char *dot = memchr(name, '.', n);
	size_t first = dot ? (size_t)(dot - name) : n;
	const cJSON *v = NULL;
	for (size_t i = depth; i-- > 0 && !v;)
		v = member(stack[i], name, first);
	while (v && dot) {
		const char *p = dot + 1;
		size_t left = n - (size_t)(p - name);
		dot = memchr(p, '.', left);
		v = member(v, p, dot ? (size_t)(dot - p) : left);
	}
	return v;
}

int tpl_truthy(const cJSON *v)
{
	if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v) || cJSON_IsInvalid(v))
		return 0;
	if (cJSON_IsString(v))
		return v->valuestring && v->valuestring[0];
	if (cJSON_IsNumber(v))
		return v->valuedouble != 0;
	if (cJSON_IsArray(v))
		return v->child != NULL;
	return 1;
}
