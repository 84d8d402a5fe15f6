// clang-format off
// fuzz-sources: core/template/scan.c core/template/compile.c core/template/lookup.c core/template/escape.c core/template/render.c core/template/partials.c core/runtime/buf.c core/runtime/error.c core/runtime/log.c core/runtime/utf8.c
// clang-format on
/* libFuzzer target for the Mustache engine (core/template/).
 *
 * The bytes are compiled as a template and rendered against a fixed JSON
 * context (nested objects, lists, every JSON type, partials that include
 * each other and themselves) in every escape mode, under small
 * bounds so that runs stay fast: no crash, leak, hang or unbounded
 * output; every failure carries a message.
 *
 * The same bytes are also a value, {{v}}, and then the escapes keep their
 * promises: "{{v}}" in JSON mode parses as a JSON string of valid UTF-8
 * with no raw control bytes; HTML mode leaves no < > " ' and no bare &;
 * URL mode only unreserved characters and %XX; none gives the bytes back
 * unchanged. */
#include "core.h"
#include "template_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char CONTEXT[] =
    "{\"name\":\"Ann <a@b>\",\"n\":85,\"d\":1.21,\"t\":true,\"f\":false,\"z\":null,"
    "\"s\":\"\",\"o\":{\"a\":{\"b\":\"deep & \\\"quoted\\\"\"},\"l\":[1,2]},"
    "\"list\":[{\"name\":\"x\",\"list\":[]},{\"name\":\"y\",\"list\":[{\"name\":\"z\"}]},3,\"w\"],"
    "\"dyn\":\"p1\",\"rec\":\"rec\",\"html\":\"<b>'&'</b>\",\"nl\":\"a\\nb\\r\\n\"}";
static const char PARTIALS[] =
    "{\"p1\":\"[{{name}}]\\n  {{#list}}{{>p1}}{{/list}}\\n\",\"p2\":\"  {{>p1}}\\n{{$b}}d{{/b}}\","
    "\"rec\":\"{{>rec}}\",\"bad\":\"{{#x}}\",\"num\":7,"
    "\"parent\":\"<{{$b}}default{{/b}}>{{>*dyn}}\"}";

static cJSON *context, *partials;
static struct sc_template *quoted, *bare;
static const struct tpl_limits LIMITS = {TPL_MAX_DEPTH, 1 << 20, 200000};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	struct sc_error err = SC_ERROR_INIT;
	context = cJSON_Parse(CONTEXT);
	partials = cJSON_Parse(PARTIALS);
	if (!context || !partials || sc_template_compile("\"{{v}}\"", 7, &quoted, &err) != SC_OK ||
	    sc_template_compile("{{v}}", 5, &bare, &err) != SC_OK)
		abort();
	return 0;
}

static void check_failure(int rc, const struct sc_error *err)
{
	if ((rc != SC_EINPUT && rc != SC_ENOMEM) || err->code != rc || !err->message)
		abort();
}

static void render_all(const uint8_t *data, size_t size)
{
	struct sc_error err = SC_ERROR_INIT;
	struct sc_template *t;
	int rc = sc_template_compile((const char *)data, size, &t, &err);
	if (rc != SC_OK) {
		check_failure(rc, &err);
		if (rc == SC_EINPUT && strncmp(err.message, "line ", 5) != 0)
			abort();
		sc_error_clear(&err);
		return;
	}
	for (int m = SC_ESCAPE_HTML; m <= SC_ESCAPE_URL; m++) {
		char *out;
		size_t len;
		rc = tpl_render(t, context, partials, (enum sc_escape)m, &LIMITS, &out, &len, &err);
		if (rc == SC_OK) {
			/* The output may exceed the bound by the last value added. */
			if (!out || out[len] != '\0' || len > LIMITS.output + size + 4096)
				abort();
			free(out);
		} else {
			check_failure(rc, &err);
			if (out)
				abort();
			sc_error_clear(&err);
		}
	}
	sc_template_free(t);
}

/* Length of the well-formed UTF-8 sequence at s, or 0 (independent of
 * escape.c's, on purpose). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned cp;
	size_t len;
	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xE0) == 0xC0)
		len = 2, cp = s[0] & 0x1F;
	else if ((s[0] & 0xF0) == 0xE0)
		len = 3, cp = s[0] & 0x0F;
	else if ((s[0] & 0xF8) == 0xF0)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3F);
	}
	static const unsigned min[] = {0, 0, 0x80, 0x800, 0x10000};
	if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

static char *render_value(const struct sc_template *t, enum sc_escape m)
{
	struct sc_error err = SC_ERROR_INIT;
	char *out;
	if (tpl_render(t, context, NULL, m, &LIMITS, &out, NULL, &err) != SC_OK)
		abort();
	return out;
}

static void check_escapes(const uint8_t *data, size_t size)
{
	char *value = malloc(size + 1);
	if (!value)
		return;
	memcpy(value, data, size);
	value[size] = '\0';
	cJSON_DeleteItemFromObjectCaseSensitive(context, "v");
	if (!cJSON_AddStringToObject(context, "v", value)) {
		free(value);
		return;
	}
	char *json = render_value(quoted, SC_ESCAPE_JSON);
	size_t n = strlen(json);
	for (size_t i = 0, k; i < n; i += k) {
		k = utf8_seq((const unsigned char *)json + i, n - i);
		if (k == 0 || (unsigned char)json[i] < 0x20)
			abort();
	}
	cJSON *parsed = cJSON_Parse(json);
	if (!cJSON_IsString(parsed))
		abort();
	cJSON_Delete(parsed);
	free(json);

	char *html = render_value(bare, SC_ESCAPE_HTML);
	for (const char *p = html; *p; p++) {
		if (strchr("<>\"'", *p))
			abort();
		if (*p == '&' && strncmp(p, "&amp;", 5) && strncmp(p, "&lt;", 4) &&
		    strncmp(p, "&gt;", 4) && strncmp(p, "&quot;", 6) && strncmp(p, "&#39;", 5))
			abort();
	}
	free(html);

	char *url = render_value(bare, SC_ESCAPE_URL);
	for (const char *p = url; *p; p++) {
		if (*p == '%' && strchr("0123456789ABCDEF", p[1]) && p[1] &&
		    strchr("0123456789ABCDEF", p[2]) && p[2])
			p += 2;
		else if (!strchr(
		             "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~",
		             *p))
			abort();
	}
	free(url);

	char *none = render_value(bare, SC_ESCAPE_NONE);
	if (strcmp(none, value) != 0)
		abort();
	free(none);
	free(value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	render_all(data, size);
	check_escapes(data, size);
	return 0;
}
