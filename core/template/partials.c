/* The partials of one render: name -> compiled template, compiled on
 * first use and found again by hash, since a template may expand the
 * same partials millions of times before its step budget runs out.
 * Names that are not in `partials` are remembered too (as NULL). */
#include "core.h"
#include "template_int.h"

#include <stdlib.h>
#include <string.h>

struct pentry {
	const char *name; /* points into the template or the data; NULL: free slot */
	size_t n;
	const cJSON *item;     /* the member of `partials`, NULL when there is none */
	struct sc_template *t; /* compiled; NULL when there is none */
};

static size_t hash(const char *s, size_t n)
{
	size_t h = 1469598103934665603u; /* FNV-1a */
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211u;
	return h;
}

static struct pentry *slot(struct pentry *v, size_t cap, const char *s, size_t n)
{
	for (size_t i = hash(s, n) & (cap - 1);; i = (i + 1) & (cap - 1))
		if (!v[i].name || (v[i].n == n && memcmp(v[i].name, s, n) == 0))
			return &v[i];
}

static int grow(struct tpl_pcache *c)
{
	size_t cap = c->cap ? c->cap * 2 : 16;
	struct pentry *v = calloc(cap, sizeof(*v));
	if (!v)
		return SC_ENOMEM;
	for (size_t i = 0; i < c->cap; i++)
		if (c->v[i].name)
			*slot(v, cap, c->v[i].name, c->v[i].n) = c->v[i];
	free(c->v);
	c->v = v;
	c->cap = cap;
	return SC_OK;
}

static const cJSON *member(const cJSON *partials, const char *s, size_t n)
{
	if (!partials)
		return NULL;
	for (const cJSON *c = partials->child; c; c = c->next)
		if (c->string && strlen(c->string) == n && memcmp(c->string, s, n) == 0)
			return c;
	return NULL;
}

static int compile(const cJSON *item, struct sc_template **out, struct sc_error *err)
{
	char *shown = tpl_shown(item->string, strlen(item->string));
	if (!shown)
		return sc_error_set(err, SC_ENOMEM, "out of memory rendering a template");
	int rc;
	if (!cJSON_IsString(item) || !item->valuestring) {
		rc = sc_error_set(err, SC_EINPUT,
		                  "partial \"%s\" is not a string: partials map names to "
		                  "template text",
		                  shown);
	} else {
		rc = sc_template_compile(item->valuestring, strlen(item->valuestring), out, err);
		if (rc != SC_OK)
			sc_error_prefix(err, "partial \"%s\"", shown);
	}
	free(shown);
	return rc;
}

int tpl_pcache_get(struct tpl_pcache *c, const cJSON *partials, const char *name, size_t n,
                   const struct sc_template **t, const char **pname, struct sc_error *err)
{
	*t = NULL;
	if ((c->used + 1) * 2 > c->cap && grow(c) != SC_OK)
		return sc_error_set(err, SC_ENOMEM, "out of memory rendering a template");
	struct pentry *e = slot(c->v, c->cap, name, n);
	if (!e->name) {
		const cJSON *item = member(partials, name, n);
		struct sc_template *compiled = NULL;
		if (item) {
			int rc = compile(item, &compiled, err);
			if (rc != SC_OK)
				return rc;
			name = item->string; /* outlives the template tag or value */
		}
		*e = (struct pentry){name, n, item, compiled};
		c->used++;
	}
	*t = e->t;
	if (e->item)
		*pname = e->item->string;
	return SC_OK;
}

void tpl_pcache_free(struct tpl_pcache *c)
{
	for (size_t i = 0; i < c->cap; i++)
		sc_template_free(c->v[i].t);
	free(c->v);
	c->v = NULL;
	c->cap = c->used = 0;
}
