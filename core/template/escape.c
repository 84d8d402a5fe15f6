/* Values to bytes, and the three escapes of enum sc_escape.
 *
 * HTML escapes & < > " as the spec requires, and ' as &#39; too, so that
 * a value is safe inside an attribute whichever quote the template uses.
 * JSON escapes what a JSON string may not hold raw (" \ and controls) and
 * replaces bytes that are not UTF-8 with U+FFFD, so that "{{x}}" inside
 * a JSON template is a valid JSON string whatever x holds (the payload
 * bug of smtp-pigeon this engine exists to avoid). URL percent-encodes
 * all but RFC 3986's unreserved characters. */
#include "core.h"
#include "template_int.h"
#include "utf8.h"

#include <stdlib.h>
#include <string.h>

static int escape_html(struct sc_buf *b, const char *s, size_t n)
{
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		const char *rep;
		switch (s[i]) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&#39;";
			break;
		default:
			continue;
		}
		if (sc_buf_add(b, s + run, i - run) != SC_OK || sc_buf_str(b, rep) != SC_OK)
			return SC_ENOMEM;
		run = i + 1;
	}
	return sc_buf_add(b, s + run, n - run);
}

static int escape_json(struct sc_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	size_t run = 0, i = 0;
	while (i < n) {
		char rep[8] = {0};
		if (u[i] >= 0x80) {
			size_t len = sc_utf8_len(u + i, n - i);
			if (len) {
				i += len;
				continue;
			}
			memcpy(rep, "\\ufffd", 6);
		} else if (u[i] == '"' || u[i] == '\\') {
			rep[0] = '\\';
			rep[1] = (char)u[i];
		} else if (u[i] == '\n' || u[i] == '\r' || u[i] == '\t') {
			rep[0] = '\\';
			rep[1] = u[i] == '\n' ? 'n' : u[i] == '\r' ? 'r' : 't';
		} else if (u[i] < 0x20) {
			memcpy(rep, "\\u00", 4);
			rep[4] = hex[u[i] >> 4];
			rep[5] = hex[u[i] & 15];
		} else {
			i++;
			continue;
		}
		if (sc_buf_add(b, s + run, i - run) != SC_OK || sc_buf_str(b, rep) != SC_OK)
			return SC_ENOMEM;
		i++;
		run = i;
	}
	return sc_buf_add(b, s + run, n - run);
}

/* RFC 3986 section 2.3: only unreserved characters go as they are. */
static int escape_url(struct sc_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~')
			continue;
		char rep[3] = {'%', hex[c >> 4], hex[c & 15]};
		if (sc_buf_add(b, s + run, i - run) != SC_OK || sc_buf_add(b, rep, 3) != SC_OK)
			return SC_ENOMEM;
		run = i + 1;
	}
	return sc_buf_add(b, s + run, n - run);
}

int tpl_escape(struct sc_buf *b, const char *s, size_t n, enum sc_escape escape)
{
	switch (escape) {
	case SC_ESCAPE_URL:
		return escape_url(b, s, n);
	case SC_ESCAPE_HTML:
		return escape_html(b, s, n);
	case SC_ESCAPE_JSON:
		return escape_json(b, s, n);
	case SC_ESCAPE_NONE:
		break;
	}
	return sc_buf_add(b, s, n);
}

int tpl_append_value(struct sc_buf *b, const cJSON *v, enum sc_escape escape)
{
	if (!v || cJSON_IsNull(v) || cJSON_IsInvalid(v))
		return SC_OK;
	if (cJSON_IsString(v) || cJSON_IsRaw(v)) {
		const char *s = v->valuestring ? v->valuestring : "";
		return tpl_escape(b, s, strlen(s), escape);
	}
	if (cJSON_IsTrue(v))
		return tpl_escape(b, "true", 4, escape);
	if (cJSON_IsFalse(v))
		return tpl_escape(b, "false", 5, escape);
	/* Numbers as JSON prints them (85, 1.21, 1e+300), objects and arrays
	 * as compact JSON: {{ . }} of an event is the event. */
	char *json = cJSON_PrintUnformatted(v);
	if (!json)
		return SC_ENOMEM;
	int rc = tpl_escape(b, json, strlen(json), escape);
	free(json);
	return rc;
}
