/* Unit tests for core/runtime/json_strings.c: each refusal with its path
 * and position, member names, a text that is not the tree's (SC_EINTERNAL),
 * and sc_json_parse for JSON text inside a field. */
#include "json_strings.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Parse `text` with cJSON and check it; the message (or "") in *msg. */
static int check_text(const char *text, size_t len, char **msg)
{
	const char *stop = NULL;
	cJSON *j = cJSON_ParseWithLengthOpts(text, len, &stop, 0);
	assert_non_null(j);
	struct sc_error e = SC_ERROR_INIT;
	int rc = core_json_strings_check(text, (size_t)(stop - text), j, 1, 1, &e);
	*msg = e.message ? e.message : strdup("");
	cJSON_Delete(j);
	return rc;
}

static void expect(const char *text, size_t len, int code, const char *want)
{
	char *msg;
	int rc = check_text(text, len, &msg);
	if (rc != code || !strstr(msg, want))
		fail_msg("%s\n  got %d \"%s\"\n  want %d \"%s\"", text, rc, msg, code, want);
	free(msg);
}

#define EXPECT(lit, code, want) expect(lit, sizeof lit - 1, code, want)

static void clean_text_passes(void **state)
{
	(void)state;
	EXPECT("{\"a\": \"x\", \"b\": [1, true, null, \"\\u00e9\\ud83d\\ude00\\n\\\\u0000\"]}",
	       SC_OK, "");
	EXPECT(" \r\n\t[\"\xc3\xa9\", {\"\xe2\x82\xac\": -1.5e3}] \n", SC_OK, "");
	EXPECT("\"just a string\"", SC_OK, "");
}

static void nul_escapes_name_the_path(void **state)
{
	(void)state;
	EXPECT("{\"parameters\": [{\"to\": \"a@x.test\\u0000, evil@x.test\"}]}", SC_EINPUT,
	       "parameters[0].to: contains a NUL character (\\u0000) at offset 8; remove it");
	/* the offset counts decoded bytes: é is two, 😀 four */
	EXPECT("{\"s\": \"\\u00e9\\ud83d\\ude00\\u0000\"}", SC_EINPUT,
	       "s: contains a NUL character "
	       "(\\u0000) at offset 6");
	EXPECT("{\"h\": {\"X-\\u0000\": \"v\"}}", SC_EINPUT,
	       "h.X-: its name contains a NUL character (\\u0000) at offset 2");
	EXPECT("[[\"a\", [\"\\u0000\"]]]", SC_EINPUT, "request[0][1][0]: contains a NUL");
}

static void raw_controls_and_bad_escapes(void **state)
{
	(void)state;
	EXPECT("{\"b\": \"a\tb\"}", SC_EINPUT,
	       "b: contains a raw tab (byte 0x09) at line 1, column 9, which JSON does not allow "
	       "inside a string (RFC 8259 §7); write it escaped as \\t");
	EXPECT("{\n\"a\": 1,\n  \"b\": \"x\ny\"}", SC_EINPUT,
	       "b: contains a raw line feed (byte 0x0A) at line 3, column 10");
	EXPECT("{\"b\": \"a\x00"
	       "b\"}",
	       SC_EINPUT, "b: contains a raw NUL byte at line 1, column 9");
	EXPECT("{\"b\": \"\x1f\"}", SC_EINPUT, "write it escaped as \\u001F");
	EXPECT("{\"b\": \"a\\u00G1\"}", SC_EINPUT,
	       "b: contains an invalid escape at line 1, column 9: \\u must be followed by four");
	EXPECT("\x01{\"a\": 1}", SC_EINPUT,
	       "the request is not valid JSON at line 1, column 1: a raw control byte 0x01");
	EXPECT("{\"a\":\x0b 1}", SC_EINPUT, "at line 1, column 6: a raw control byte 0x0B");
}

static void invalid_utf8_names_the_offset(void **state)
{
	(void)state;
	EXPECT("{\"subject\": \"caf\xe9\"}", SC_EINPUT,
	       "subject: is not valid UTF-8: byte 0xE9 at offset 3 does not begin a valid UTF-8 "
	       "sequence");
	EXPECT("{\"k\xff\": 1}", SC_EINPUT, "its name is not valid UTF-8: byte 0xFF at offset 1");
	/* the path is quoted as valid UTF-8 even when the key is not */
	char *msg;
	const char *t = "{\"a\": {\"k\xff\": 1}}";
	assert_int_equal(check_text(t, strlen(t), &msg), SC_EINPUT);
	assert_string_equal(
	    msg, "a.k\xef\xbf\xbd: its name is not valid UTF-8: byte 0xFF at offset 1 "
	         "does not begin a valid UTF-8 sequence; send the text as UTF-8 (JSON text "
	         "is UTF-8, RFC 8259 §8.1)");
	free(msg);
}

static void a_text_that_is_not_the_trees_is_internal(void **state)
{
	(void)state;
	cJSON *j = cJSON_Parse("{\"a\": \"xyz\"}");
	struct sc_error e = SC_ERROR_INIT;
	assert_int_equal(core_json_strings_check("{\"a\": \"xy\"}", 11, j, 1, 1, &e), SC_EINTERNAL);
	assert_non_null(strstr(e.message, "could not be checked"));
	sc_error_clear(&e);
	assert_int_equal(core_json_strings_check("{\"b\": 1}", 8, j, 1, 1, &e), SC_EINTERNAL);
	sc_error_clear(&e);
	cJSON_Delete(j);
}

static void json_text_inside_a_field(void **state)
{
	(void)state;
	struct sc_error e = SC_ERROR_INIT;
	enum sc_json_fault why = SC_JSON_STRING;
	const char *ok = "{\"Reply-To\": \"a@b\"} \n";
	cJSON *j = sc_json_parse_fault(ok, strlen(ok), "headers", &why, &e);
	assert_non_null(j);
	assert_int_equal(why, SC_JSON_OK);
	assert_string_equal(cJSON_GetObjectItem(j, "Reply-To")->valuestring, "a@b");
	cJSON_Delete(j);
	const char *nul = "{\"X-Tag\": \"a\\u0000evil\"}";
	assert_null(sc_json_parse_fault(nul, strlen(nul), "headers", &why, &e));
	assert_int_equal(why, SC_JSON_STRING);
	assert_string_equal(e.message,
	                    "headers.X-Tag: contains a NUL character (\\u0000) at offset 1; "
	                    "remove it");
	/* the kind is typed: a name that reads like the syntax message is
	 * still a string's refusal */
	const char *named = "{\"x: is not valid JSON\": \"\\u0000\"}";
	assert_null(sc_json_parse_fault(named, strlen(named), "headers", &why, &e));
	assert_int_equal(why, SC_JSON_STRING);
	const char *more = "{\"a\": \"b\"} {\"Bcc\": \"x@y\"}";
	assert_null(sc_json_parse_fault(more, strlen(more), "headers", &why, &e));
	assert_int_equal(why, SC_JSON_SYNTAX);
	assert_string_equal(e.message,
	                    "headers: is not valid JSON: more text after the value at offset 11");
	assert_null(sc_json_parse_fault("\x01[]", 3, "attachment_json", &why, &e));
	assert_int_equal(why, SC_JSON_SYNTAX);
	assert_non_null(
	    strstr(e.message, "attachment_json: is not valid JSON at line 1, column 1"));
	assert_null(sc_json_parse_fault("{", 1, "headers", &why, &e));
	assert_int_equal(why, SC_JSON_SYNTAX);
	assert_string_equal(e.message, "headers: is not valid JSON");
	/* the length bounds the text: a NUL byte inside it is not its end */
	assert_null(sc_json_parse("[]\0[]", 5, "headers", &e));
	assert_int_equal(e.code, SC_EINPUT);
	sc_error_clear(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(clean_text_passes),
	    cmocka_unit_test(nul_escapes_name_the_path),
	    cmocka_unit_test(raw_controls_and_bad_escapes),
	    cmocka_unit_test(invalid_utf8_names_the_offset),
	    cmocka_unit_test(a_text_that_is_not_the_trees_is_internal),
	    cmocka_unit_test(json_text_inside_a_field),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
