// clang-format off
// fuzz-sources: plugins/common/html.c plugins/common/html_detect.c core/runtime/error.c core/runtime/utf8.c core/runtime/buf.c core/runtime/log.c core/message/text.c
// fuzz-pkgs: libxml-2.0
// clang-format on
/* libFuzzer target for plugins/common/html.c.
 *
 * Beyond "no crash, no leak", it checks the sanitiser's promise the way a
 * mail client would read the output: a small HTML5-style tokenizer (not
 * libxml2, which wrote the output) walks the tags of the sanitised HTML,
 * and of that HTML sanitised again, and aborts on a script element, an
 * on* attribute, a comment, or a javascript:/vbscript:/non-image data:
 * URL. It also checks the text rendering's layout promises.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -Iinclude -Icore
 *   -Iplugins/common $(pkg-config --cflags libxml-2.0)
 *   tests/fuzz/fuzz_html.c plugins/common/html.c core/runtime/error.c
 *   $(pkg-config --libs libxml-2.0)
 * Run:   ./fuzz_html tests/fuzz/corpus/html
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "html.h"

static void die(const char *why, const char *where, const char *doc)
{
	fprintf(stderr, "fuzz_html: %s at \"%.80s\"\nin: %s\n", why, where, doc);
	abort();
}

/* Decode the references a browser would, enough to see a scheme. */
static void decode_url(const char *v, size_t n, char *out)
{
	static const struct {
		const char *name;
		char c;
	} named[] = {{"amp;", '&'},   {"tab;", '\t'}, {"newline;", '\n'},
	             {"colon;", ':'}, {"sol;", '/'},  {NULL, 0}};
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = v[i];
		if (c == '&' && i + 1 < n && v[i + 1] == '#') {
			int hex = i + 2 < n && (v[i + 2] == 'x' || v[i + 2] == 'X');
			size_t j = i + 2 + (size_t)hex;
			unsigned long cp = 0;
			while (
			    j < n &&
			    (hex ? isxdigit((unsigned char)v[j]) : isdigit((unsigned char)v[j])) &&
			    cp < 0x110000)
				cp = cp * (hex ? 16 : 10) +
				     (unsigned long)(isdigit((unsigned char)v[j])
				                         ? v[j] - '0'
				                         : (tolower((unsigned char)v[j]) - 'a' +
				                            10)),
				j++;
			c = cp < 0x80 ? (char)cp : '?';
			i = j < n && v[j] == ';' ? j : j - 1;
		} else if (c == '&') {
			for (int k = 0; named[k].name; k++) {
				size_t len = strlen(named[k].name);
				if (i + 1 + len <= n &&
				    strncasecmp(v + i + 1, named[k].name, len) == 0) {
					c = named[k].c;
					i += len;
					break;
				}
			}
		}
		if (c != '\t' && c != '\n' && c != '\r')
			out[o++] = (char)tolower((unsigned char)c);
	}
	out[o] = '\0';
}

static void check_url(const char *v, size_t n, const char *doc)
{
	char *d = malloc(n + 1);
	if (!d)
		abort();
	decode_url(v, n, d);
	const char *s = d;
	while (*s && (unsigned char)*s <= 0x20)
		s++;
	if (!strncmp(s, "javascript:", 11) || !strncmp(s, "vbscript:", 9) ||
	    (!strncmp(s, "data:", 5) && strncmp(s, "data:image/", 11)))
		die("dangerous URL", v, doc);
	free(d);
}

static int is_url_attr(const char *name, size_t n)
{
	static const char *const urls[] = {"href",   "src",        "action",     "background",
	                                   "poster", "formaction", "xlink:href", "data",
	                                   "lowsrc", "dynsrc",     NULL};
	for (int i = 0; urls[i]; i++)
		if (strlen(urls[i]) == n && strncasecmp(name, urls[i], n) == 0)
			return 1;
	return 0;
}

/* One start tag's attributes, HTML5 tokenizer style; returns the '>' */
static const char *check_attrs(const char *p, const char *doc)
{
	for (;;) {
		while (*p && (isspace((unsigned char)*p) || *p == '/'))
			p++;
		if (!*p || *p == '>')
			return p;
		const char *name = p++;
		while (*p && !isspace((unsigned char)*p) && !strchr("/>=", *p))
			p++;
		size_t nlen = (size_t)(p - name);
		if (nlen >= 2 && strncasecmp(name, "on", 2) == 0)
			die("event handler attribute", name, doc);
		while (isspace((unsigned char)*p))
			p++;
		if (*p != '=')
			continue;
		p++;
		while (isspace((unsigned char)*p))
			p++;
		const char *v = p;
		size_t vlen;
		if (*p == '"' || *p == '\'') {
			const char *e = strchr(p + 1, *p);
			if (!e)
				die("unterminated attribute value", p, doc);
			v = p + 1;
			vlen = (size_t)(e - v);
			p = e + 1;
		} else {
			while (*p && !isspace((unsigned char)*p) && *p != '>')
				p++;
			vlen = (size_t)(p - v);
		}
		if (is_url_attr(name, nlen))
			check_url(v, vlen, doc);
	}
}

static const char *find_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (; *hay; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return hay;
	return NULL;
}

/* Walk the markup as a browser tokenizer would. */
static void check_markup(const char *doc)
{
	static const char *const banned[] = {"script",  "iframe",   "object",    "embed",    "svg",
	                                     "math",    "form",     "input",     "base",     "link",
	                                     "frame",   "applet",   "template",  "noscript", "xmp",
	                                     "noembed", "noframes", "plaintext", NULL};
	const char *p = doc;
	while ((p = strchr(p, '<'))) {
		p++;
		if (!strncmp(p, "!--", 3))
			die("comment", p, doc);
		if (*p == '!' || *p == '?' || *p == '/') {
			const char *e = strchr(p, '>');
			if (!e)
				return;
			p = e + 1;
			continue;
		}
		if (!isalpha((unsigned char)*p))
			continue;
		const char *name = p;
		while (*p && !isspace((unsigned char)*p) && *p != '/' && *p != '>')
			p++;
		size_t n = (size_t)(p - name);
		for (int i = 0; banned[i]; i++)
			if (strlen(banned[i]) == n && strncasecmp(name, banned[i], n) == 0)
				die("banned element", name, doc);
		p = check_attrs(p, doc);
		if (!*p)
			return;
		/* raw text and RCDATA run to their end tag, whatever they hold */
		const char *raw = NULL;
		if (n == 5 && strncasecmp(name, "style", 5) == 0)
			raw = "</style";
		else if (n == 5 && strncasecmp(name, "title", 5) == 0)
			raw = "</title";
		if (raw && !(p = find_ci(p, raw)))
			die("unterminated raw text element", name, doc);
	}
}

static int valid_utf8(const unsigned char *s)
{
	while (*s) {
		size_t k = *s < 0x80             ? 1
		           : (*s & 0xE0) == 0xC0 ? 2
		           : (*s & 0xF0) == 0xE0 ? 3
		           : (*s & 0xF8) == 0xF0 ? 4
		                                 : 0;
		if (!k)
			return 0;
		for (size_t i = 1; i < k; i++)
			if ((s[i] & 0xC0) != 0x80)
				return 0;
		s += k;
	}
	return 1;
}

static void check_text(const char *t)
{
	if (strchr(t, '\r') || strstr(t, "\n\n\n") || strstr(t, " \n") || strstr(t, "\t\n") ||
	    t[0] == '\n')
		die("text layout", t, t);
	size_t n = strlen(t);
	if (n && (t[n - 1] == '\n' || t[n - 1] == ' '))
		die("text layout (end)", t, t);
	if (!valid_utf8((const unsigned char *)t))
		die("text not UTF-8", t, t);
}

static char *sanitize(const char *in, size_t len)
{
	struct sc_error err = SC_ERROR_INIT;
	char *out = sc_html_sanitize(in, len, &err);
	if (!out && err.code != SC_EINPUT && err.code != SC_ENOMEM)
		die("NULL without a usable error", err.message ? err.message : "", in);
	if (out && err.code != SC_OK)
		die("error set on success", err.message ? err.message : "", in);
	sc_error_clear(&err);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct sc_error err = SC_ERROR_INIT;

	(void)sc_html_detect(in, size);
	(void)sc_html_references_cid(in, size, "logo@example");

	char *t = sc_html_to_text(in, size, &err);
	if (t)
		check_text(t);
	free(t);
	sc_error_clear(&err);

	char *s = sanitize(in, size);
	if (s) {
		if (!valid_utf8((const unsigned char *)s))
			die("sanitised output not UTF-8", s, s);
		check_markup(s);
		char *again = sanitize(s, strlen(s));
		if (again)
			check_markup(again);
		free(again);
	}
	free(s);
	return 0;
}
