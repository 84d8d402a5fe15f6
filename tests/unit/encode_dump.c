/* Test helper for encode_oracle.py: reads JSON lines
 *   {"kind":"subject|phrase|param|address|qp|base64|encoding",
 *    "value":"...", "hex":"..", "utf8_ok":false, "name":"Subject"}
 * and prints one JSON line per input: {"kind":..,"output":".."} (or
 * {"error":".."}). "hex" gives binary input that a JSON string cannot
 * (NUL). The oracle decodes the outputs with an independent
 * implementation, Python's email package. */
#include "core.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Input bytes from "hex" when present, else from "value". */
static unsigned char *input_bytes(const cJSON *req, size_t *len)
{
	const cJSON *hex = cJSON_GetObjectItemCaseSensitive(req, "hex");
	const cJSON *val = cJSON_GetObjectItemCaseSensitive(req, "value");
	if (cJSON_IsString(hex)) {
		size_t n = strlen(hex->valuestring) / 2;
		unsigned char *b = malloc(n + 1);
		for (size_t i = 0; b && i < n; i++) {
			unsigned int x = 0;
			sscanf(hex->valuestring + 2 * i, "%2x", &x);
			b[i] = (unsigned char)x;
		}
		if (b)
			b[n] = 0;
		*len = n;
		return b;
	}
	if (!cJSON_IsString(val))
		return NULL;
	*len = strlen(val->valuestring);
	unsigned char *b = malloc(*len + 1);
	if (b)
		memcpy(b, val->valuestring, *len + 1);
	return b;
}

static char *run(const char *kind, const cJSON *req, const char *v, size_t n)
{
	const cJSON *u = cJSON_GetObjectItemCaseSensitive(req, "utf8_ok");
	const cJSON *nm = cJSON_GetObjectItemCaseSensitive(req, "name");
	int utf8_ok = cJSON_IsTrue(u);
	const char *name = cJSON_IsString(nm) ? nm->valuestring : NULL;
	if (!strcmp(kind, "subject"))
		return sc_header_encode_unstructured(name ? name : "Subject", v, utf8_ok);
	if (!strcmp(kind, "phrase"))
		return sc_header_encode_phrase(v, utf8_ok);
	if (!strcmp(kind, "param"))
		return sc_mime_param_encode(name ? name : "filename", v);
	if (!strcmp(kind, "address")) {
		struct sc_address a[2] = {{(char *)v, "a@example.com"},
		                          {(char *)v, "b@example.com"}};
		struct sc_address_list l = {a, 2};
		return sc_address_list_format(name ? name : "To", &l, utf8_ok);
	}
	if (!strcmp(kind, "qp"))
		return sc_qp_encode(v, n, NULL);
	if (!strcmp(kind, "base64"))
		return sc_base64_lines((const unsigned char *)v, n, NULL);
	if (!strcmp(kind, "encoding"))
		return sc_asprintf("%s", sc_body_encoding(v, n));
	return NULL;
}

static void handle(const char *line)
{
	cJSON *req = cJSON_Parse(line), *res = cJSON_CreateObject();
	const cJSON *k = cJSON_GetObjectItemCaseSensitive(req, "kind");
	size_t n = 0;
	unsigned char *v = req ? input_bytes(req, &n) : NULL;
	char *out = (v && cJSON_IsString(k)) ? run(k->valuestring, req, (char *)v, n) : NULL;
	if (cJSON_IsString(k))
		cJSON_AddStringToObject(res, "kind", k->valuestring);
	if (out)
		cJSON_AddStringToObject(res, "output", out);
	else
		cJSON_AddStringToObject(res, "error", "bad request or NULL");
	char *txt = cJSON_PrintUnformatted(res);
	if (txt)
		puts(txt);
	fflush(stdout);
	free(txt);
	free(out);
	free(v);
	cJSON_Delete(res);
	cJSON_Delete(req);
}

int main(void)
{
	char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, stdin) > 0)
		handle(line);
	free(line);
	return 0;
}
