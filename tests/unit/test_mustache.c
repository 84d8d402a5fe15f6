/* Unit tests for the Mustache engine (core/template/, public header
 * <smtp-connector/template.h>).
 *
 * Every case of the official spec files in tests/unit/mustache-spec/specs
 * (a copy of ../shared/mustache-spec; MUSTACHE_SPEC_DIR overrides) is one
 * TAP line, rendered in HTML-escaping mode as the spec expects: the
 * required files (comments, delimiters, interpolation, inverted,
 * partials, sections: 136 cases) and the optional ~dynamic-names (21)
 * and ~inheritance (27). (~lambdas needs code in the data; JSON has none,
 * and the copy has no such file.) Then this project's own promises: the leading-dot names,
 * JSON and no escaping, values that are not strings, limits on hostile
 * templates, and error messages naming line and column. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Every file of the spec directory; one it holds that is not listed here
 * fails the test (a new module is never skipped in silence). */
static const char *const SPEC_FILES[] = {
    "comments", "delimiters", "interpolation",  "inverted",
    "partials", "sections",   "~dynamic-names", "~inheritance",
};

/* ---- helpers ------------------------------------------------------------ */

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	struct sc_buf b = {0};
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		assert_int_equal(sc_buf_add(&b, chunk, n), SC_OK);
	fclose(f);
	return sc_buf_take(&b);
}

/* Renders `tpl` over the JSON text `data`; returns the output (caller
 * frees) or NULL with *err set. */
static char *render_json(const char *tpl, const char *data, const char *partials,
                         enum sc_escape esc, struct sc_error *err)
{
	cJSON *d = cJSON_Parse(data);
	assert_non_null(d);
	cJSON *p = partials ? cJSON_Parse(partials) : NULL;
	assert_true(!partials || p);
	struct sc_template *t = NULL;
	char *out = NULL;
	if (sc_template_compile(tpl, strlen(tpl), &t, err) == SC_OK) {
		size_t len = 0;
		if (sc_template_render(t, d, p, esc, &out, &len, err) == SC_OK)
			assert_int_equal(len, strlen(out));
	}
	sc_template_free(t);
	cJSON_Delete(d);
	cJSON_Delete(p);
	return out;
}

#define assert_renders(tpl, data, esc, want)                                                       \
	do {                                                                                       \
		struct sc_error e_ = SC_ERROR_INIT;                                                \
		char *o_ = render_json((tpl), (data), NULL, (esc), &e_);                           \
		if (!o_)                                                                           \
			print_error("error: %s\n", e_.message);                                    \
		assert_non_null(o_);                                                               \
		assert_string_equal(o_, (want));                                                   \
		free(o_);                                                                          \
	} while (0)

/* The template fails with SC_EINPUT and exactly this message. */
#define assert_fails(tpl, data, partials, want)                                                    \
	do {                                                                                       \
		struct sc_error e_ = SC_ERROR_INIT;                                                \
		char *o_ = render_json((tpl), (data), (partials), SC_ESCAPE_HTML, &e_);            \
		assert_null(o_);                                                                   \
		assert_int_equal(e_.code, SC_EINPUT);                                              \
		assert_non_null(e_.message);                                                       \
		assert_string_equal(e_.message, (want));                                           \
		sc_error_clear(&e_);                                                               \
	} while (0)

/* The same, with only the start of the message fixed. */
static void assert_fails_with(const char *tpl, const char *data, const char *partials,
                              const char *prefix)
{
	struct sc_error e = SC_ERROR_INIT;
	char *o = render_json(tpl, data, partials, SC_ESCAPE_HTML, &e);
	assert_null(o);
	assert_int_equal(e.code, SC_EINPUT);
	assert_non_null(e.message);
	if (strncmp(e.message, prefix, strlen(prefix)) != 0)
		print_error("message: %s\nwanted:  %s...\n", e.message, prefix);
	assert_true(strncmp(e.message, prefix, strlen(prefix)) == 0);
	sc_error_clear(&e);
}

/* ---- the spec ----------------------------------------------------------- */

struct spec_case {
	const char *file;
	const cJSON *test;
};

static void print_escaped(const char *label, const char *s)
{
	print_error("%s \"", label);
	for (; s && *s; s++) {
		if (*s == '\n')
			print_error("\\n");
		else if (*s == '\r')
			print_error("\\r");
		else
			print_error("%c", *s);
	}
	print_error("\"\n");
}

static void test_spec_case(void **state)
{
	const struct spec_case *c = *state;
	const cJSON *tpl = cJSON_GetObjectItemCaseSensitive(c->test, "template");
	const cJSON *want = cJSON_GetObjectItemCaseSensitive(c->test, "expected");
	assert_true(cJSON_IsString(tpl) && cJSON_IsString(want));
	struct sc_error err = SC_ERROR_INIT;
	struct sc_template *t = NULL;
	int rc = sc_template_compile(tpl->valuestring, strlen(tpl->valuestring), &t, &err);
	char *out = NULL;
	if (rc == SC_OK)
		rc = sc_template_render(t, cJSON_GetObjectItemCaseSensitive(c->test, "data"),
		                        cJSON_GetObjectItemCaseSensitive(c->test, "partials"),
		                        SC_ESCAPE_HTML, &out, NULL, &err);
	sc_template_free(t);
	if (rc != SC_OK)
		print_error("%s: error %s\n", c->file, err.message);
	else if (strcmp(out, want->valuestring) != 0) {
		print_escaped("template:", tpl->valuestring);
		print_escaped("expected:", want->valuestring);
		print_escaped("got:     ", out);
	}
	int ok = rc == SC_OK && strcmp(out, want->valuestring) == 0;
	free(out);
	sc_error_clear(&err);
	assert_true(ok);
}

/* ---- leading dot, values, truthiness --------------------------------------- */

static void test_leading_dot(void **state)
{
	(void)state;
	const char *d = "{\"routing\":{\"hostname\":\"web-1\",\"tags\":[\"a\",\"b\"]},"
	                "\"detect\":{\"cat\":\"x<y\"}}";
	assert_renders("{{ .routing.hostname }}|{{routing.hostname}}", d, SC_ESCAPE_HTML,
	               "web-1|web-1");
	assert_renders("{{#.routing}}{{ .hostname }}{{/.routing}}", d, SC_ESCAPE_HTML, "web-1");
	assert_renders("{{#routing}}{{ .hostname }}{{/routing}}", d, SC_ESCAPE_HTML, "web-1");
	assert_renders("{{#routing.tags}}[{{ . }}]{{/routing.tags}}", d, SC_ESCAPE_HTML, "[a][b]");
	/* {{ . }} at the top: the whole event, as compact JSON, escaped. */
	assert_renders("{{{ . }}}", d, SC_ESCAPE_NONE,
	               "{\"routing\":{\"hostname\":\"web-1\",\"tags\":[\"a\",\"b\"]},"
	               "\"detect\":{\"cat\":\"x<y\"}}");
	assert_renders("{{ .detect }}", d, SC_ESCAPE_HTML, "{&quot;cat&quot;:&quot;x&lt;y&quot;}");
	assert_renders("{{&.detect.cat}}", d, SC_ESCAPE_HTML, "x<y");
}

static void test_values(void **state)
{
	(void)state;
	const char *d = "{\"i\":85,\"one\":1.0,\"dec\":1.210,\"neg\":-3,\"big\":1e300,"
	                "\"t\":true,\"f\":false,\"n\":null,\"arr\":[1,\"a\",null],\"o\":{},"
	                "\"s\":\"\",\"zero\":0,\"list\":[\"x\",\"y\",\"z\"]}";
	assert_renders("{{i}} {{one}} {{dec}} {{neg}} {{big}}", d, SC_ESCAPE_NONE,
	               "85 1 1.21 -3 1e+300");
	assert_renders("{{t}} {{f}} [{{n}}] [{{missing}}]", d, SC_ESCAPE_NONE, "true false [] []");
	assert_renders("{{arr}} {{o}}", d, SC_ESCAPE_NONE, "[1,\"a\",null] {}");
	/* JavaScript truthiness (mustache.js): "", 0, [] do not render. */
	assert_renders(
	    "{{#s}}S{{/s}}{{#zero}}Z{{/zero}}{{#o}}O{{/o}}{{^s}}s{{/s}}{{^zero}}z{{/zero}}", d,
	    SC_ESCAPE_NONE, "Osz");
	/* Two section tags on a line are not standalone (only inheritance
	 * pairs are). */
	assert_renders("{{#t}}{{#t}}\nx\n{{/t}}{{/t}}\n", d, SC_ESCAPE_NONE, "\nx\n\n");
	/* Lists are JSON arrays: an element by index. */
	assert_renders("{{list.0}}{{list.2}}[{{list.3}}][{{list.01}}]", d, SC_ESCAPE_NONE,
	               "xz[][]");
}

/* ---- escaping ----------------------------------------------------------- */

static void test_escape_html(void **state)
{
	(void)state;
	assert_renders("<a title='{{x}}' href=\"{{x}}\">{{x}}</a>", "{\"x\":\"'\\\"<&>\"}",
	               SC_ESCAPE_HTML,
	               "<a title='&#39;&quot;&lt;&amp;&gt;' href=\"&#39;&quot;&lt;&amp;&gt;\">"
	               "&#39;&quot;&lt;&amp;&gt;</a>");
	assert_renders("{{{x}}}{{&x}}", "{\"x\":\"<&>\"}", SC_ESCAPE_HTML, "<&><&>");
}

static void test_escape_none(void **state)
{
	(void)state;
	assert_renders("Alert: {{x}} {{{x}}}", "{\"x\":\"<b>\\\"&'\\n\"}", SC_ESCAPE_NONE,
	               "Alert: <b>\"&'\n <b>\"&'\n");
}

static void test_escape_url(void **state)
{
	(void)state;
	assert_renders("https://h/x?s={{s}}&t={{{s}}}", "{\"s\":\"a b&c=d/\u00e9~._-\"}",
	               SC_ESCAPE_URL,
	               "https://h/x?s=a%20b%26c%3Dd%2F%C3%A9~._-&t=a b&c=d/\xc3\xa9~._-");
}

/* Hostile values inside a JSON template: the output always parses and
 * gives the value back (with U+FFFD for bytes that are not UTF-8). */
static void check_json_roundtrip(const char *value, const char *want)
{
	cJSON *d = cJSON_CreateObject();
	assert_non_null(cJSON_AddStringToObject(d, "x", value));
	assert_non_null(cJSON_AddNumberToObject(d, "n", 2.5));
	const char *tpl = "{\"s\":\"{{x}}\",\"n\":{{n}},\"both\":\"{{x}}-{{x}}\"}";
	struct sc_error err = SC_ERROR_INIT;
	struct sc_template *t;
	assert_int_equal(sc_template_compile(tpl, strlen(tpl), &t, &err), SC_OK);
	char *out;
	assert_int_equal(sc_template_render(t, d, NULL, SC_ESCAPE_JSON, &out, NULL, &err), SC_OK);
	for (const char *p = out; *p; p++)
		assert_true((unsigned char)*p >= 0x20);
	cJSON *j = cJSON_Parse(out);
	if (!j)
		print_error("not JSON: %s\n", out);
	assert_non_null(j);
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "s");
	assert_true(cJSON_IsString(s));
	assert_string_equal(s->valuestring, want);
	assert_true(cJSON_GetObjectItemCaseSensitive(j, "n")->valuedouble == 2.5);
	cJSON_Delete(j);
	free(out);
	sc_template_free(t);
	cJSON_Delete(d);
}

static void test_escape_json(void **state)
{
	(void)state;
	check_json_roundtrip("plain", "plain");
	check_json_roundtrip("a\"b\\c", "a\"b\\c");
	check_json_roundtrip("\"},\"evil\":\"1", "\"},\"evil\":\"1");
	check_json_roundtrip("line\r\nnext\ttab\b\f\x01\x1f\x7f",
	                     "line\r\nnext\ttab\b\f\x01\x1f\x7f");
	check_json_roundtrip("caf\xc3\xa9 \xf0\x9f\x93\xa7 \xe2\x80\xa8",
	                     "caf\xc3\xa9 \xf0\x9f\x93\xa7 \xe2\x80\xa8");
	/* Not UTF-8: a stray byte, an overlong NUL, a surrogate, a cut tail. */
	check_json_roundtrip("a\xff"
	                     "b",
	                     "a\xef\xbf\xbd"
	                     "b");
	check_json_roundtrip("\xc0\x80", "\xef\xbf\xbd\xef\xbf\xbd");
	check_json_roundtrip("\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	check_json_roundtrip("end\xe2\x82", "end\xef\xbf\xbd\xef\xbf\xbd");
	/* Exact form: \n, \u00XX for other controls. */
	assert_renders("\"{{x}}\"", "{\"x\":\"\\n\\u0001<\"}", SC_ESCAPE_JSON, "\"\\n\\u0001<\"");
	/* Objects interpolated escaped are a JSON string holding JSON. */
	assert_renders("{\"e\":\"{{o}}\",\"raw\":{{{o}}}}", "{\"o\":{\"k\":\"v\\\"\"}}",
	               SC_ESCAPE_JSON,
	               "{\"e\":\"{\\\"k\\\":\\\"v\\\\\\\"\\\"}\",\"raw\":{\"k\":\"v\\\"\"}}");
}

/* ---- errors ------------------------------------------------------------- */

static void test_errors(void **state)
{
	(void)state;
	assert_fails(
	    "Hello\n\n{{#a}}\n  x{{#items}}\n", "{}", NULL,
	    "line 4, column 4: unclosed section \"items\": add its closing tag {{/items}}");
	assert_fails("{{#a}}{{/b}}", "{}", NULL,
	             "line 1, column 7: closing tag \"b\" does not match the open section \"a\" "
	             "(line 1, column 1)");
	assert_fails("x\n {{/a}}", "{}", NULL,
	             "line 2, column 2: closing tag \"a\" without an open section: remove it or "
	             "open one");
	assert_fails("caf\xc3\xa9 {{name", "{}", NULL,
	             "line 1, column 6: unclosed tag: no \"}}\" after this \"{{\"");
	assert_fails("{{{name}}", "{}", NULL,
	             "line 1, column 1: unclosed tag: no \"}}}\" after this \"{{\"");
	assert_fails("{{=<% %>=}}<%x", "{}", NULL,
	             "line 1, column 12: unclosed tag: no \"%>\" after this \"<%\"");
	assert_fails_with("{{=<%%>=}}", "{}", NULL, "line 1, column 1: bad set-delimiters tag");
	assert_fails_with("{{=< = >=}}", "{}", NULL, "line 1, column 1: bad set-delimiters tag");
	assert_fails("a {{ }}", "{}", NULL,
	             "line 1, column 3: empty tag: write a name between the delimiters");
	assert_fails("{{a..b}}", "{}", NULL,
	             "line 1, column 1: bad name \"a..b\": a dot must separate two names, "
	             "as in {{a.b}}");
	assert_fails_with("{{a.}}", "{}", NULL, "line 1, column 1: bad name \"a.\"");
	assert_fails_with("{{..}}", "{}", NULL, "line 1, column 1: bad name \"..\"");
	assert_fails_with("x{{#..a}}{{/..a}}", "{}", NULL, "line 1, column 2: bad name \"..a\"");
	/* A partial's errors name the partial. */
	assert_fails("{{>p}}", "{}", "{\"p\":\"\\n{{#x}}\"}",
	             "partial \"p\": line 2, column 1: unclosed section \"x\": add its closing "
	             "tag {{/x}}");
	assert_fails("{{>p}}", "{}", "{\"p\":42}",
	             "partial \"p\" is not a string: partials map names to template text");
	/* A hostile name is shown bounded and printable. */
	struct sc_error err = SC_ERROR_INIT;
	struct sc_buf b = {0};
	assert_int_equal(sc_buf_str(&b, "{{#\x01"), SC_OK);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(sc_buf_str(&b, "x"), SC_OK);
	assert_int_equal(sc_buf_str(&b, "}}"), SC_OK);
	struct sc_template *t = NULL;
	assert_int_equal(sc_template_compile(b.p, b.len, &t, &err), SC_EINPUT);
	assert_null(t);
	assert_true(strlen(err.message) < 200);
	assert_non_null(strstr(err.message, "unclosed section \"?xxx"));
	sc_error_clear(&err);
	sc_buf_free(&b);
}

/* ---- limits ------------------------------------------------------------- */

static void test_limit_depth(void **state)
{
	(void)state;
	/* A partial that includes itself forever. */
	assert_fails("{{>p}}", "{}", "{\"p\":\"x{{>p}}\"}",
	             "partial \"p\": line 1, column 2: sections and partials nested deeper than 64 "
	             "(a partial that includes itself without end?)");
	/* 64 sections nested in one template. */
	struct sc_buf b = {0};
	for (int i = 0; i < 64; i++)
		assert_int_equal(sc_buf_str(&b, "{{#a}}"), SC_OK);
	assert_fails_with(b.p, "{}", NULL, "line 1, column 379: sections nested deeper than 64");
	sc_buf_free(&b);
	/* 63 are fine. */
	for (int i = 0; i < 63; i++)
		assert_int_equal(sc_buf_str(&b, "{{#a}}"), SC_OK);
	assert_int_equal(sc_buf_str(&b, "{{x}}"), SC_OK);
	for (int i = 0; i < 63; i++)
		assert_int_equal(sc_buf_str(&b, "{{/a}}"), SC_OK);
	assert_renders(b.p, "{\"a\":true,\"x\":\"deep\"}", SC_ESCAPE_NONE, "deep");
	sc_buf_free(&b);
}

static void test_limit_output_and_steps(void **state)
{
	(void)state;
	struct sc_buf d = {0};
	assert_int_equal(sc_buf_str(&d, "{\"x\":\""), SC_OK);
	for (int i = 0; i < 1024; i++)
		assert_int_equal(sc_buf_str(&d, "y"), SC_OK);
	assert_int_equal(sc_buf_str(&d, "\",\"a\":["), SC_OK);
	for (int i = 0; i < 100; i++)
		assert_int_equal(sc_buf_str(&d, i ? ",1" : "1"), SC_OK);
	assert_int_equal(sc_buf_str(&d, "]}"), SC_OK);
	/* 100^4 KiB asked for: stopped at 64 MiB. */
	clock_t t0 = clock();
	assert_fails_with("{{#a}}{{#a}}{{#a}}{{#a}}{{x}}{{/a}}{{/a}}{{/a}}{{/a}}", d.p, NULL,
	                  "template output over 67108864 bytes");
	/* 100^5 iterations with nothing to write: stopped by the step count. */
	assert_fails_with("{{#a}}{{#a}}{{#a}}{{#a}}{{#a}}{{/a}}{{/a}}{{/a}}{{/a}}{{/a}}", d.p, NULL,
	                  "template too costly: over 16777216 steps");
	/* 40 partials, each including the next twice: 2^40 calls. */
	struct sc_buf p = {0};
	assert_int_equal(sc_buf_str(&p, "{"), SC_OK);
	for (int i = 0; i < 40; i++)
		assert_int_equal(
		    sc_buf_printf(&p, "\"p%d\":\"{{>p%d}}{{>p%d}}\",", i, i + 1, i + 1), SC_OK);
	assert_int_equal(sc_buf_str(&p, "\"p40\":\"x\"}"), SC_OK);
	assert_fails_with("{{>p0}}", "{}", p.p, "template too costly");
	sc_buf_free(&p);
	/* Reported, not asserted: under valgrind this takes far longer, and a
	 * timed assertion is a benchmark in the wrong place. */
	print_message("# limits hit in %.2f s of CPU\n", (double)(clock() - t0) / CLOCKS_PER_SEC);
	sc_buf_free(&d);
}

/* ---- the rest of the API -------------------------------------------------- */

static void test_api(void **state)
{
	(void)state;
	cJSON *d = cJSON_Parse("{\"name\":\"Ann\",\"l\":[1,2]}");
	char *out;
	struct sc_error err = SC_ERROR_INIT;
	assert_int_equal(
	    sc_template_expand("Hi {{name}}{{#l}}!{{/l}}", d, SC_ESCAPE_HTML, &out, &err), SC_OK);
	assert_string_equal(out, "Hi Ann!!");
	free(out);
	assert_int_equal(sc_template_expand("{{#l}}", d, SC_ESCAPE_HTML, &out, &err), SC_EINPUT);
	assert_null(out);
	sc_error_clear(&err);
	/* Binary template text: length, not NUL, ends it. */
	struct sc_template *t;
	assert_int_equal(sc_template_compile("a\0{{name}}", 10, &t, &err), SC_OK);
	size_t len;
	assert_int_equal(sc_template_render(t, d, NULL, SC_ESCAPE_NONE, &out, &len, &err), SC_OK);
	assert_int_equal(len, 5);
	assert_memory_equal(out, "a\0Ann", 5);
	free(out);
	/* A compiled template renders again, with other partials each time. */
	sc_template_free(t);
	assert_int_equal(sc_template_compile("<{{>p}}>", 8, &t, &err), SC_OK);
	cJSON *p1 = cJSON_Parse("{\"p\":\"1{{name}}\"}"), *p2 = cJSON_Parse("{\"p\":\"2\"}");
	assert_int_equal(sc_template_render(t, d, p1, SC_ESCAPE_NONE, &out, NULL, &err), SC_OK);
	assert_string_equal(out, "<1Ann>");
	free(out);
	assert_int_equal(sc_template_render(t, d, p2, SC_ESCAPE_NONE, &out, NULL, &err), SC_OK);
	assert_string_equal(out, "<2>");
	free(out);
	assert_int_equal(sc_template_render(t, NULL, NULL, SC_ESCAPE_NONE, &out, NULL, &err),
	                 SC_OK);
	assert_string_equal(out, "<>");
	free(out);
	assert_int_equal(sc_template_render(t, d, d->child, SC_ESCAPE_NONE, &out, NULL, &err),
	                 SC_EINPUT);
	assert_int_equal(sc_template_render(t, d, NULL, (enum sc_escape)7, &out, NULL, &err),
	                 SC_EINPUT);
	sc_error_clear(&err);
	sc_template_free(t);
	cJSON_Delete(p1);
	cJSON_Delete(p2);
	cJSON_Delete(d);
}

/* ---- main ----------------------------------------------------------------- */

static const char *spec_dir(void)
{
	static char path[4096];
	const char *dir = getenv("MUSTACHE_SPEC_DIR");
	if (dir)
		return dir;
	const char *src = getenv("SMTP_CONNECTOR_SRCDIR");
	snprintf(path, sizeof(path), "%s/tests/unit/mustache-spec/specs", src ? src : ".");
	return path;
}

/* Whether every *.json in `dir` is in SPEC_FILES. */
static int all_files_known(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int ok = 1;
	for (struct dirent *e; (e = readdir(d));) {
		size_t n = strlen(e->d_name);
		if (n < 5 || strcmp(e->d_name + n - 5, ".json") != 0)
			continue;
		int known = 0;
		for (size_t i = 0; i < sizeof(SPEC_FILES) / sizeof(*SPEC_FILES); i++)
			known |= strlen(SPEC_FILES[i]) == n - 5 &&
			         strncmp(SPEC_FILES[i], e->d_name, n - 5) == 0;
		if (!known) {
			fprintf(stderr,
			        "%s/%s: a spec file this test does not run; add it to "
			        "SPEC_FILES\n",
			        dir, e->d_name);
			ok = 0;
		}
	}
	closedir(d);
	return ok;
}

int main(void)
{
	static const struct CMUnitTest own[] = {
	    cmocka_unit_test(test_leading_dot),
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_escape_html),
	    cmocka_unit_test(test_escape_none),
	    cmocka_unit_test(test_escape_json),
	    cmocka_unit_test(test_escape_url),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_limit_depth),
	    cmocka_unit_test(test_limit_output_and_steps),
	    cmocka_unit_test(test_api),
	};
	size_t nfiles = sizeof(SPEC_FILES) / sizeof(*SPEC_FILES);
	cJSON *specs[sizeof(SPEC_FILES) / sizeof(*SPEC_FILES)] = {0};
	size_t ncases = 0;
	if (!all_files_known(spec_dir()))
		return 1;
	for (size_t i = 0; i < nfiles; i++) {
		char path[4200];
		snprintf(path, sizeof(path), "%s/%s.json", spec_dir(), SPEC_FILES[i]);
		char *text = read_file(path);
		if (!text) {
			fprintf(stderr, "cannot read %s (set MUSTACHE_SPEC_DIR)\n", path);
			return 1;
		}
		specs[i] = cJSON_Parse(text);
		free(text);
		if (!specs[i]) {
			fprintf(stderr, "%s is not JSON\n", path);
			return 1;
		}
		ncases +=
		    (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(specs[i], "tests"));
	}
	size_t nown = sizeof(own) / sizeof(*own), n = 0;
	struct CMUnitTest *tests = calloc(ncases + nown, sizeof(*tests));
	struct spec_case *cases = calloc(ncases, sizeof(*cases));
	char **names = calloc(ncases, sizeof(*names));
	assert_true(tests && cases && names);
	for (size_t i = 0; i < nfiles; i++) {
		const cJSON *tc;
		cJSON_ArrayForEach(tc, cJSON_GetObjectItemCaseSensitive(specs[i], "tests"))
		{
			const cJSON *name = cJSON_GetObjectItemCaseSensitive(tc, "name");
			names[n] = sc_asprintf("%s: %s", SPEC_FILES[i],
			                       cJSON_IsString(name) ? name->valuestring : "?");
			cases[n] = (struct spec_case){SPEC_FILES[i], tc};
			tests[n] =
			    (struct CMUnitTest){names[n], test_spec_case, NULL, NULL, &cases[n]};
			n++;
		}
	}
	for (size_t i = 0; i < nown; i++)
		tests[n++] = own[i];
	int rc = _cmocka_run_group_tests("mustache", tests, n, NULL, NULL);
	for (size_t i = 0; i < ncases; i++)
		free(names[i]);
	free(names);
	free(cases);
	free(tests);
	for (size_t i = 0; i < nfiles; i++)
		cJSON_Delete(specs[i]);
	return rc;
}
