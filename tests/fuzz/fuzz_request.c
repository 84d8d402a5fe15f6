// clang-format off
// fuzz-sources: core/runtime/reader.c core/runtime/json_strings.c core/runtime/utf8.c core/runtime/result.c core/runtime/error.c core/runtime/log.c core/runtime/buf.c
// clang-format on
/* libFuzzer target for the request reader (core/runtime/reader.c) with
 * its string checks (json_strings.c, utf8.c) and the result line
 * (result.c). Build, e.g.:
 *   clang -g -fsanitize=fuzzer,address,undefined -Iinclude -Icore/runtime \
 *     -Ibuild $(pkg-config --cflags libcjson) tests/fuzz/fuzz_request.c \
 *     core/runtime/{reader,json_strings,utf8,result,error,log,buf}.c \
 *     $(pkg-config --libs libcjson libcrypto)
 *   ./a.out tests/fuzz/corpus/request
 *
 * The input is stdin: one JSON document or JSON Lines. Beyond "no crash,
 * no leak" it checks:
 *  - every accepted document's strings and member names are valid UTF-8
 *    (by the tree);
 *  - when every document of the input was accepted, the input is JSON
 *    texts and whitespace only, so a quote-toggling scan of the whole input
 *    finds every string exactly: it must find no "\u0000" escape, no raw
 *    byte below 0x20 inside a string, no such byte other than space, tab,
 *    CR, LF outside one, no \u without four hex digits (cJSON reads
 *    "\uZZZZ" as U+0000), and the whole input must be valid UTF-8. This
 *    oracle shares no code with the check it judges;
 *  - the check never reports that a text cJSON accepted disagrees with
 *    its own parse (SC_EINTERNAL);
 *  - a refused document has a message;
 *  - every result line, with the input's bytes echoed in its message and
 *    parameters, is one line of valid UTF-8 that parses as JSON;
 *  - sc_json_parse (JSON text inside a field) on the whole input: what
 *    it accepts passes the same oracle; what it refuses is named. */
#include "reader.h"
#include "result.h"
#include "utf8.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "fuzz_request: %s\n", what);
		abort();
	}
}

static void strings_valid(const cJSON *item)
{
	for (; item; item = item->next) {
		if (item->string)
			check(core_utf8_valid(item->string, strlen(item->string), NULL),
			      "accepted member name is UTF-8");
		if (cJSON_IsString(item))
			check(core_utf8_valid(item->valuestring, strlen(item->valuestring), NULL),
			      "accepted string is UTF-8");
		strings_valid(item->child);
	}
}

/* The oracle for an input whose documents were all accepted. */
static void whole_input_clean(const uint8_t *d, size_t n)
{
	check(core_utf8_valid((const char *)d, n, NULL), "all accepted: the input is UTF-8");
	int in_str = 0;
	for (size_t i = 0; i < n; i++) {
		if (!in_str) {
			check(d[i] >= 0x20 || d[i] == '\t' || d[i] == '\n' || d[i] == '\r',
			      "all accepted: no control byte between tokens");
			in_str = d[i] == '"';
			continue;
		}
		check(d[i] >= 0x20, "all accepted: no raw control byte in a string");
		if (d[i] == '"') {
			in_str = 0;
		} else if (d[i] == '\\' && i + 1 < n) {
			check(!(d[i + 1] == 'u' && i + 5 < n && !memcmp(d + i + 2, "0000", 4)),
			      "all accepted: no \\u0000 escape");
			if (d[i + 1] == 'u')
				for (size_t k = i + 2; k < i + 6; k++)
					check(k < n && strchr("0123456789abcdefABCDEF", d[k]) &&
					          d[k],
					      "all accepted: \\u has four hex digits");
			i++;
		}
	}
}

/* A result line as the runtime builds one, with raw input bytes echoed. */
static void result_line(const struct core_doc *doc, const uint8_t *data, size_t size)
{
	const cJSON *a = doc->json ? cJSON_GetObjectItemCaseSensitive(doc->json, "action") : NULL;
	struct core_report rep;
	check(core_report_init(&rep, cJSON_IsString(a) ? a->valuestring : "", NULL) == SC_OK,
	      "report");
	if (doc->error) {
		core_report_fail(&rep, doc->error);
	} else {
		struct sc_result *r = core_report_add(&rep, doc->json);
		check(r != NULL, "result");
		/* a server reply is untrusted bytes: here, the input's */
		char *reply = strndup((const char *)data, size > 200 ? 200 : size);
		sc_result_message(r, "server said: %s", reply ? reply : "");
		cJSON_AddStringToObject(sc_result_data(r), "smtp_reply", reply ? reply : "");
		free(reply);
		struct sc_error e = SC_ERROR_INIT;
		sc_error_set(&e, SC_EPROTO, "failed");
		core_report_close(&rep, r, SC_EPROTO, &e);
		sc_error_clear(&e);
	}
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	check(f != NULL, "memstream");
	core_report_print(&rep, f);
	fclose(f);
	core_report_free(&rep);
	check(len > 0 && out[len - 1] == '\n' && memchr(out, '\n', len) == out + len - 1,
	      "one result line");
	check(core_utf8_valid(out, len, NULL), "the result line is UTF-8");
	cJSON *back = cJSON_ParseWithLength(out, len);
	check(back != NULL, "the result line is JSON");
	cJSON_Delete(back);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > 1 << 16)
		return 0;
	FILE *in = fmemopen((void *)data, size, "r");
	if (!in)
		return 0;
	struct core_reader r;
	struct core_doc doc;
	struct sc_error err = SC_ERROR_INIT;
	int more = 0, refused = 0, docs = 0;
	core_reader_init(&r, in);
	while (docs < 64 && (more = core_request_next(&r, &doc, &err)) > 0) {
		docs++;
		if (doc.error) {
			refused = 1;
			check(doc.error[0] != '\0', "a refusal has a message");
			check(doc.code == SC_EINPUT, "the check agrees with cJSON's parse");
		} else {
			check(doc.json != NULL, "a document without an error has a value");
			strings_valid(doc.json);
		}
		result_line(&doc, data, size);
		core_doc_release(&doc);
	}
	check(more >= 0 || err.message, "a read error has a message");
	/* the same checks for JSON text given in a string (sc_json_parse):
	 * an accepted text is one value plus whitespace, so the same oracle */
	struct sc_error perr = SC_ERROR_INIT;
	enum sc_json_fault why = SC_JSON_OK;
	cJSON *inner = sc_json_parse_fault((const char *)data, size, "headers", &why, &perr);
	if (inner) {
		strings_valid(inner);
		whole_input_clean(data, size);
	} else {
		check(perr.message && !strncmp(perr.message, "headers", 7),
		      "sc_json_parse names it");
		check(perr.code == SC_EINPUT, "sc_json_parse agrees with cJSON's parse");
		check(why == SC_JSON_SYNTAX || why == SC_JSON_STRING, "a refusal has its kind");
	}
	cJSON_Delete(inner);
	sc_error_clear(&perr);
	if (more == 0 && docs > 0 && !refused)
		whole_input_clean(data, size);
	sc_error_clear(&err);
	core_reader_release(&r);
	fclose(in);
	return 0;
}
