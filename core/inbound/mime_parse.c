/* Header sections of a received message and the MIME fields the walk
 * needs: unfolding, Content-Type / Content-Disposition parameters
 * (quoted strings, comments, RFC 2231 charset, language and
 * continuations), Content-Transfer-Encoding, boundary lines. Lenient
 * like the mail readers people use: whatever cannot be parsed falls
 * back to the RFC 2045 defaults instead of failing. */
#include "inbound.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

int inb_is_field_start(const char *line, size_t n)
{
	size_t i = 0;
	while (i < n && (unsigned char)line[i] > 32 && (unsigned char)line[i] < 127 &&
	       line[i] != ':')
		i++;
	if (i == 0)
		return 0;
	while (i < n && is_blank(line[i])) /* obsolete "Name :" (RFC 5322 §4.5) */
		i++;
	return i < n && line[i] == ':';
}

/* Blanks after the colon go; trailing ones stay (they are part of an
 * unstructured value, and Python's email keeps them too), except a CR
 * left by a bare-CR line end. */
static void trim(const char **s, size_t *n)
{
	while (*n && is_blank(**s))
		(*s)++, (*n)--;
	while (*n && (*s)[*n - 1] == '\r')
		(*n)--;
}

int inb_fields_split(char *sec, size_t len, size_t max, struct inb_field **fields, size_t *n,
                     int *cut)
{
	size_t cap = 0, w = 0, r = 0;
	struct inb_field *f = NULL, *cur = NULL;

	*fields = NULL;
	*n = 0;
	while (r < len) {
		char *nl = memchr(sec + r, '\n', len - r);
		size_t ll = nl ? (size_t)(nl - (sec + r)) : len - r;
		const char *line = sec + r;
		if (ll && is_blank(line[0]) && cur) {
			/* A fold: the line break goes, the blank stays. */
			memmove(sec + w, line, ll);
			cur->vlen += ll;
			w += ll;
		} else if (inb_is_field_start(line, ll)) {
			if (*n == max) {
				*cut = 1;
				break;
			}
			if (*n == cap) {
				size_t nc = cap ? cap * 2 : 16;
				struct inb_field *nf = realloc(f, nc * sizeof *f);
				if (!nf) {
					free(f);
					return SC_ENOMEM;
				}
				f = nf;
				cap = nc;
			}
			memmove(sec + w, line, ll);
			const char *colon = memchr(sec + w, ':', ll);
			cur = &f[(*n)++];
			cur->name = sec + w;
			cur->nlen = (size_t)(colon - (sec + w));
			while (cur->nlen && is_blank(cur->name[cur->nlen - 1]))
				cur->nlen--;
			cur->value = colon + 1;
			cur->vlen = ll - (size_t)(colon + 1 - (sec + w));
			w += ll;
		} else {
			cur = NULL; /* junk line: dropped, and nothing folds into it */
		}
		r += ll + (nl ? 1 : 0);
	}
	for (size_t i = 0; i < *n; i++)
		trim(&f[i].value, &f[i].vlen);
	*fields = f;
	return SC_OK;
}

/* ---- parameters -------------------------------------------------------- */

struct param {
	char *attr; /* lower case, as written: "filename*0*" */
	char *val;  /* unquoted */
	size_t vlen;
};

struct params {
	struct param *v;
	size_t n, cap;
};

static void params_free(struct params *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->v[i].attr);
		free(p->v[i].val);
	}
	free(p->v);
	memset(p, 0, sizeof *p);
}

/* Blanks and (nested) comments. */
static size_t skip_cfws(const char *s, size_t n, size_t i)
{
	for (;;) {
		while (i < n && (is_blank(s[i]) || s[i] == '\r' || s[i] == '\n'))
			i++;
		if (i >= n || s[i] != '(')
			return i;
		int depth = 0;
		for (; i < n; i++) {
			if (s[i] == '\\' && i + 1 < n)
				i++;
			else if (s[i] == '(')
				depth++;
			else if (s[i] == ')' && --depth == 0) {
				i++;
				break;
			}
		}
	}
}

static int param_push(struct params *p, const char *a, size_t alen, struct sc_buf *val)
{
	if (p->n == p->cap) {
		size_t nc = p->cap ? p->cap * 2 : 8;
		struct param *nv = realloc(p->v, nc * sizeof *nv);
		if (!nv)
			return SC_ENOMEM;
		p->v = nv;
		p->cap = nc;
	}
	char *attr = strndup(a, alen);
	if (!attr)
		return SC_ENOMEM;
	for (char *c = attr; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c + 32);
	size_t vlen = val->len;
	char *v = sc_buf_take(val);
	if (!v) {
		free(attr);
		return SC_ENOMEM;
	}
	p->v[p->n++] = (struct param){attr, v, vlen};
	return SC_OK;
}

/* Parameters after the first ";" of s: `attr=value` or `attr="quoted"`;
 * an unquoted value runs to the next ";" (trailing blanks dropped), as
 * lenient readers take `name=my file.pdf`. */
static int params_parse(const char *s, size_t n, struct params *p)
{
	const char *semi = memchr(s, ';', n);
	size_t i = semi ? (size_t)(semi - s) : n;
	struct sc_buf val = {0};

	while (i < n) {
		i = skip_cfws(s, n, i + 1); /* past ";" */
		size_t a = i;
		while (i < n && s[i] != '=' && s[i] != ';' && !is_blank(s[i]) && s[i] != '(')
			i++;
		size_t alen = i - a;
		i = skip_cfws(s, n, i);
		if (i >= n || s[i] != '=') {
			while (i < n && s[i] != ';')
				i++;
			continue;
		}
		i = skip_cfws(s, n, i + 1);
		val.len = 0;
		if (i < n && s[i] == '"') {
			for (i++; i < n && s[i] != '"'; i++) {
				if (s[i] == '\\' && i + 1 < n)
					i++;
				if (sc_buf_add(&val, s + i, 1))
					goto nomem;
			}
			while (i < n && s[i] != ';')
				i++;
		} else {
			size_t v = i;
			while (i < n && s[i] != ';')
				i++;
			size_t e = i;
			while (e > v && (is_blank(s[e - 1]) || s[e - 1] == '\r'))
				e--;
			if (sc_buf_add(&val, s + v, e - v))
				goto nomem;
		}
		if (alen && sc_buf_add(&val, "", 0) == SC_OK && param_push(p, s + a, alen, &val))
			goto nomem;
	}
	sc_buf_free(&val);
	return SC_OK;
nomem:
	sc_buf_free(&val);
	return SC_ENOMEM;
}

static const struct param *param_find(const struct params *p, const char *attr)
{
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->v[i].attr, attr))
			return &p->v[i];
	return NULL;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int pct_decode(const char *s, size_t n, struct sc_buf *out)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		}
		if (sc_buf_add(out, &c, 1))
			return SC_ENOMEM;
	}
	return SC_OK;
}

/* "charset'language'" in front of an extended value: split it off. */
static void split_charset(const char **v, size_t *vl, const char **cs, size_t *cslen)
{
	const char *q1 = memchr(*v, '\'', *vl);
	const char *q2 = q1 ? memchr(q1 + 1, '\'', *vl - (size_t)(q1 + 1 - *v)) : NULL;
	if (!q2)
		return;
	*cs = *v;
	*cslen = (size_t)(q1 - *v);
	*vl -= (size_t)(q2 + 1 - *v);
	*v = q2 + 1;
}

/* The RFC 2231 forms of parameter `base`: sections base*0, base*1*, ...
 * (sec[k], up to 1000) and the single extended base* (*single). */
static int sections_of(const struct params *p, const char *base, const struct param ***sec,
                       size_t *nsec, const struct param **single)
{
	size_t bl = strlen(base);
	for (size_t i = 0; i < p->n; i++) {
		const char *a = p->v[i].attr;
		if (strncmp(a, base, bl) || a[bl] != '*')
			continue;
		if (a[bl + 1] == '\0') {
			*single = &p->v[i];
			continue;
		}
		char *end;
		unsigned long k = strtoul(a + bl + 1, &end, 10);
		if (a[bl + 1] < '0' || a[bl + 1] > '9' || (*end && strcmp(end, "*")) || k >= 1000)
			continue;
		if (!*sec && !(*sec = calloc(1000, sizeof **sec)))
			return SC_ENOMEM;
		if (!(*sec)[k])
			(*sec)[k] = &p->v[i];
		*nsec = k + 1 > *nsec ? k + 1 : *nsec;
	}
	return SC_OK;
}

/* The value of parameter `base` from its RFC 2231 forms, as UTF-8:
 * sections in order up to the first gap, percent-decoding the extended
 * ones, in the charset named by the first; else the single base*; NULL
 * when neither is present (or out of memory). */
static char *param_2231(const struct params *p, const char *base)
{
	const struct param **sec = NULL, *single = NULL;
	size_t nsec = 0, cslen = 0;
	const char *cs = NULL;
	struct sc_buf raw = {0}, out = {0};
	int ok = sections_of(p, base, &sec, &nsec, &single) == SC_OK;

	if (ok && sec && sec[0]) {
		for (size_t k = 0; k < nsec && sec[k] && ok; k++) {
			const char *v = sec[k]->val;
			size_t vl = sec[k]->vlen;
			int ext = sec[k]->attr[strlen(sec[k]->attr) - 1] == '*';
			if (ext && k == 0)
				split_charset(&v, &vl, &cs, &cslen);
			ok = (ext ? pct_decode(v, vl, &raw) : sc_buf_add(&raw, v, vl)) == SC_OK;
		}
	} else if (ok && single) {
		const char *v = single->val;
		size_t vl = single->vlen;
		split_charset(&v, &vl, &cs, &cslen);
		ok = pct_decode(v, vl, &raw) == SC_OK;
	} else {
		ok = 0;
	}
	free(sec);
	if (ok)
		ok = inb_conv_append(cs, cslen, raw.p, raw.len, &out) == SC_OK &&
		     sc_buf_add(&out, "", 0) == SC_OK;
	sc_buf_free(&raw);
	if (!ok) {
		sc_buf_free(&out);
		return NULL;
	}
	return sc_buf_take(&out);
}

/* A name-like parameter as UTF-8: RFC 2231 forms first; else the plain
 * value with RFC 2047 words decoded, as many clients write
 * filename="=?UTF-8?B?...?=" and every reader accepts it. */
static char *param_text(const struct params *p, const char *base)
{
	char *v = param_2231(p, base);
	if (v)
		return v;
	const struct param *s = param_find(p, base);
	if (!s)
		return NULL;
	struct sc_buf out = {0};
	if (inb_rfc2047_decode(s->val, s->vlen, &out) || sc_buf_add(&out, "", 0)) {
		sc_buf_free(&out);
		return NULL;
	}
	return sc_buf_take(&out);
}

/* ---- the fields -------------------------------------------------------- */

static int is_token(char c)
{
	return (unsigned char)c > 32 && (unsigned char)c < 127 && !strchr("()<>@,;:\\\"/[]?=", c);
}

/* "type/subtype" at the start of v, lower case; NULL when malformed. */
static char *media_type(const char *v, size_t n)
{
	size_t i = skip_cfws(v, n, 0), a = i;
	while (i < n && is_token(v[i]))
		i++;
	if (i == a || i >= n || v[i] != '/')
		return NULL;
	size_t slash = i++;
	while (i < n && is_token(v[i]))
		i++;
	if (i == slash + 1)
		return NULL;
	char *t = strndup(v + a, i - a);
	if (t)
		for (char *c = t; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c + 32);
	return t;
}

static int field_is(const struct inb_field *f, const char *name)
{
	return f->nlen == strlen(name) && !strncasecmp(f->name, name, f->nlen);
}

static enum inb_cte cte_of(const char *v, size_t n)
{
	size_t i = skip_cfws(v, n, 0), a = i;
	while (i < n && is_token(v[i]))
		i++;
	if (i - a == 16 && !strncasecmp(v + a, "quoted-printable", 16))
		return INB_CTE_QP;
	if (i - a == 6 && !strncasecmp(v + a, "base64", 6))
		return INB_CTE_BASE64;
	return INB_CTE_IDENTITY; /* 7bit, 8bit, binary and the unknown */
}

static int content_type(const struct inb_field *f, struct inb_mime *m)
{
	struct params p = {0};
	char *t = media_type(f->value, f->vlen);
	if (!t)
		return SC_OK; /* RFC 2045 §5.2: as if absent */
	free(m->type);
	m->type = t;
	if (params_parse(f->value, f->vlen, &p)) {
		params_free(&p);
		return SC_ENOMEM;
	}
	const struct param *cs = param_find(&p, "charset");
	const struct param *b = param_find(&p, "boundary");
	if (cs && !(m->charset = strdup(cs->val)))
		goto nomem;
	if (b && !strncmp(t, "multipart/", 10)) {
		size_t bl = b->vlen;
		while (bl && is_blank(b->val[bl - 1]))
			bl--;
		if (bl && bl <= INB_BOUNDARY_MAX) {
			/* memcpy, not strndup: the value may hold a NUL. */
			if (!(m->boundary = malloc(bl + 1)))
				goto nomem;
			memcpy(m->boundary, b->val, bl);
			m->boundary[bl] = '\0';
			m->blen = bl;
		}
	}
	if (!m->name)
		m->name = param_text(&p, "name");
	params_free(&p);
	return SC_OK;
nomem:
	params_free(&p);
	return SC_ENOMEM;
}

static int disposition(const struct inb_field *f, struct inb_mime *m)
{
	struct params p = {0};
	size_t i = skip_cfws(f->value, f->vlen, 0);
	m->attachment = f->vlen - i >= 10 && !strncasecmp(f->value + i, "attachment", 10) &&
	                (f->vlen - i == 10 || !is_token(f->value[i + 10]));
	if (params_parse(f->value, f->vlen, &p)) {
		params_free(&p);
		return SC_ENOMEM;
	}
	char *name = param_text(&p, "filename");
	if (name) {
		free(m->name);
		m->name = name;
	}
	params_free(&p);
	return SC_OK;
}

int inb_mime_from_fields(const struct inb_field *f, size_t n, const char *dflt_type,
                         struct inb_mime *m)
{
	memset(m, 0, sizeof *m);
	const struct inb_field *ct = NULL, *cd = NULL, *te = NULL;
	for (size_t i = 0; i < n; i++) {
		if (!ct && field_is(&f[i], "Content-Type"))
			ct = &f[i];
		else if (!cd && field_is(&f[i], "Content-Disposition"))
			cd = &f[i];
		else if (!te && field_is(&f[i], "Content-Transfer-Encoding"))
			te = &f[i];
	}
	if (!(m->type = strdup(dflt_type)))
		return SC_ENOMEM;
	/* Disposition first: its filename wins over Content-Type's name. */
	if (cd && disposition(cd, m))
		return SC_ENOMEM;
	if (ct && content_type(ct, m))
		return SC_ENOMEM;
	if (te)
		m->cte = cte_of(te->value, te->vlen);
	return SC_OK;
}

void inb_mime_free(struct inb_mime *m)
{
	free(m->type);
	free(m->charset);
	free(m->boundary);
	free(m->name);
	memset(m, 0, sizeof *m);
}

int inb_boundary_match(const char *line, size_t n, const char *b, size_t blen)
{
	if (n < blen + 2 || line[0] != '-' || line[1] != '-' || memcmp(line + 2, b, blen))
		return 0;
	size_t i = blen + 2;
	int close = 0;
	if (i + 1 < n && line[i] == '-' && line[i + 1] == '-') {
		close = 1;
		i += 2;
	}
	while (i < n && (is_blank(line[i]) || line[i] == '\r'))
		i++;
	return i < n ? 0 : 1 + close;
}
