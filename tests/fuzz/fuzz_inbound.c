// clang-format off
// fuzz-sources: core/inbound/summary.c core/inbound/mime_parse.c core/inbound/decode.c core/runtime/buf.c core/runtime/error.c core/runtime/log.c
// clang-format on
/* libFuzzer target for reading received messages (core/inbound/). Build:
 *   clang -g -fsanitize=fuzzer,address,undefined -Iinclude -Icore/runtime \
 *     -Icore/inbound $(pkg-config --cflags libcjson) tests/fuzz/fuzz_inbound.c \
 *     core/inbound/{summary,mime_parse,decode}.c core/runtime/buf.c core/runtime/error.c
 * core/runtime/log.c \
 *     $(pkg-config --libs libcjson libcrypto)
 *   ./a.out tests/fuzz/corpus/inbound
 *
 * The first input byte picks max_body (byte * 64, so 0 and small limits
 * are reached), the second the read buffer (0: the real 64 KiB; else
 * that many bytes, so that lines arrive in pieces); the rest is the
 * message, read from memory through the walk the file interface uses,
 * and walked in place (sc_inbound_summary_mem), which must give the same
 * object. Beyond "no crash, no leak",
 * it checks what sinks rely on:
 *  - a malformed message is never an error: SC_OK and an object;
 *  - the object prints, the text is valid UTF-8 (checked here by a
 *    separate validator) and parses back to an equal object;
 *  - subject and body are strings, message_id a string or null,
 *    attachments an array of {name, content_type, size >= 0};
 *  - the body is at most max_body bytes. */
#include "inbound.h"

#include <smtp-connector/sink.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "fuzz_inbound: invariant broken: %s\n", what);
		abort();
	}
}

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
static int valid_utf8(const unsigned char *s)
{
	while (*s) {
		unsigned c = *s++;
		int more;
		unsigned cp, min;
		if (c < 0x80)
			continue;
		if ((c & 0xE0) == 0xC0)
			more = 1, cp = c & 0x1F, min = 0x80;
		else if ((c & 0xF0) == 0xE0)
			more = 2, cp = c & 0x0F, min = 0x800;
		else if ((c & 0xF8) == 0xF0)
			more = 3, cp = c & 0x07, min = 0x10000;
		else
			return 0;
		while (more--) {
			if ((*s & 0xC0) != 0x80)
				return 0;
			cp = cp << 6 | (*s++ & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
	}
	return 1;
}

static void check_shape(const cJSON *o, size_t max_body)
{
	const cJSON *body = cJSON_GetObjectItemCaseSensitive(o, "body");
	check(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "subject")), "subject string");
	check(cJSON_IsString(body), "body string");
	check(strlen(body->valuestring) <= max_body, "body within max_body");
	const cJSON *mid = cJSON_GetObjectItemCaseSensitive(o, "message_id");
	check(cJSON_IsString(mid) || cJSON_IsNull(mid), "message_id string or null");
	check(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(o, "headers")), "headers object");
	const cJSON *atts = cJSON_GetObjectItemCaseSensitive(o, "attachments"), *a;
	check(cJSON_IsArray(atts), "attachments array");
	check(cJSON_GetArraySize(atts) <= INB_MAX_ATTACHMENTS, "attachments bounded");
	cJSON_ArrayForEach(a, atts)
	{
		const cJSON *sz = cJSON_GetObjectItemCaseSensitive(a, "size");
		check(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(a, "name")), "name");
		check(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(a, "content_type")), "type");
		check(cJSON_IsNumber(sz) && sz->valuedouble >= 0, "size");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char one = 0;
	size_t max_body = size ? (size_t)data[0] * 64 : 0;
	size_t chunk = size > 1 && data[1] ? data[1] : (size_t)64 << 10;
	const void *msg = size > 2 ? (const void *)(data + 2) : &one;
	size_t len = size > 2 ? size - 2 : 1;
	FILE *f = fmemopen((void *)msg, len, "rb");
	if (!f)
		return 0;
	if (size <= 2)
		fgetc(f); /* an empty message: fmemopen needs a byte */
	cJSON *o = NULL;
	struct sc_error err = SC_ERROR_INIT;
	int rc = inb_summary_chunked(f, max_body, chunk, &o, &err);
	fclose(f);
	check(rc == SC_OK && o, "never an error for a message in memory");
	check_shape(o, max_body);
	char *s = cJSON_PrintUnformatted(o);
	check(s != NULL, "prints");
	check(valid_utf8((const unsigned char *)s), "valid UTF-8");
	cJSON *back = cJSON_Parse(s);
	check(back && cJSON_Compare(o, back, 1), "parses back to the same object");
	cJSON_Delete(back);
	free(s);
	/* the walk in place over the caller's bytes (sc_inbound_summary_mem)
	 * gives the same object as the stream with its real buffer (a smaller
	 * one cuts long lines into pieces, which are never boundaries) */
	cJSON *m = NULL;
	check(sc_inbound_summary_mem(size > 2 ? msg : "", size > 2 ? len : 0, max_body, &m, &err) ==
	              SC_OK &&
	          m,
	      "never an error from memory");
	check(chunk != (size_t)64 << 10 || cJSON_Compare(o, m, 1),
	      "from memory as from the stream");
	cJSON_Delete(m);
	cJSON_Delete(o);
	sc_error_clear(&err);
	return 0;
}
