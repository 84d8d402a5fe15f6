/* Unit tests for core/runtime/utf8.c: well-formedness by Unicode's table
 * (checked exhaustively against a decode-and-range-check reference for
 * every 1-, 2- and 3-byte sequence and every 4-byte lead/second pair),
 * the offset of the first bad byte, and U+FFFD substitution of maximal
 * subparts as in Unicode §3.9's own example. */
#include "utf8.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* The reference: decode by the bit patterns, then reject overlongs,
 * surrogates and values past U+10FFFF. */
static size_t ref_len(const unsigned char *p, size_t n)
{
	if (n == 0)
		return 0;
	size_t k;
	uint32_t cp, min;
	if (p[0] < 0x80)
		return 1;
	else if ((p[0] & 0xE0) == 0xC0) {
		k = 2;
		cp = p[0] & 0x1F;
		min = 0x80;
	} else if ((p[0] & 0xF0) == 0xE0) {
		k = 3;
		cp = p[0] & 0x0F;
		min = 0x800;
	} else if ((p[0] & 0xF8) == 0xF0) {
		k = 4;
		cp = p[0] & 0x07;
		min = 0x10000;
	} else
		return 0;
	if (n < k)
		return 0;
	for (size_t i = 1; i < k; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return k;
}

static void char_len_matches_reference(void **state)
{
	(void)state;
	unsigned char b[4];
	for (unsigned a = 0; a < 256; a++) {
		b[0] = (unsigned char)a;
		assert_int_equal(sc_utf8_len((char *)b, 1), ref_len(b, 1));
		for (unsigned c = 0; c < 256; c++) {
			b[1] = (unsigned char)c;
			assert_int_equal(sc_utf8_len((char *)b, 2), ref_len(b, 2));
			for (unsigned d = 0; d < 256; d++) {
				b[2] = (unsigned char)d;
				assert_int_equal(sc_utf8_len((char *)b, 3), ref_len(b, 3));
			}
			/* 4-byte forms: the third and fourth bytes only matter
			 * as continuation or not */
			static const unsigned char tails[] = {0x00, 0x7F, 0x80, 0xBF, 0xC0, 0xFF};
			for (size_t i = 0; i < sizeof tails; i++)
				for (size_t j = 0; j < sizeof tails; j++) {
					b[2] = tails[i];
					b[3] = tails[j];
					assert_int_equal(sc_utf8_len((char *)b, 4), ref_len(b, 4));
				}
		}
	}
	assert_int_equal(sc_utf8_len("", 0), 0);
}

static void valid_and_offsets(void **state)
{
	(void)state;
	size_t off = 99;
	assert_true(core_utf8_valid("", 0, &off));
	assert_int_equal(off, 99); /* untouched when valid */
	assert_true(core_utf8_valid("plain ASCII", 11, NULL));
	assert_true(core_utf8_valid("Gr\xC3\xBC\xC3\x9F"
	                            "e \xE2\x82\xAC \xF0\x9F\x98\x80",
	                            16, &off));
	assert_true(core_utf8_valid("a\0b", 3, &off)); /* NUL is U+0000 */
	assert_false(core_utf8_valid("subject \xFF!", 10, &off));
	assert_int_equal(off, 8);
	assert_false(core_utf8_valid("ab\xC3", 3, &off)); /* cut at the end */
	assert_int_equal(off, 2);
	assert_false(core_utf8_valid("\xC0\xAF", 2, &off)); /* overlong '/' */
	assert_int_equal(off, 0);
	assert_false(core_utf8_valid("x\xED\xA0\x80", 4, &off)); /* surrogate D800 */
	assert_int_equal(off, 1);
	assert_false(core_utf8_valid("xy\xF4\x90\x80\x80", 6, &off)); /* U+110000 */
	assert_int_equal(off, 2);
	assert_false(core_utf8_valid("\xE2\x82\xAC\x80", 4, &off)); /* stray continuation */
	assert_int_equal(off, 3);
	/* the length bounds the check, not a NUL: bytes past len are unread */
	assert_true(core_utf8_valid("ok\xFF", 2, &off));
}

static void check_sanitized(const char *in, size_t len, const char *want)
{
	size_t n = 0;
	char *s = core_utf8_sanitize(in, len, &n);
	assert_non_null(s);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(s, want, n);
	assert_int_equal(s[n], '\0');
	assert_true(core_utf8_valid(s, n, NULL));
	free(s);
}

#define FFFD "\xEF\xBF\xBD"

static void sanitize_maximal_subparts(void **state)
{
	(void)state;
	check_sanitized("", 0, "");
	check_sanitized("caf\xC3\xA9", 5, "caf\xC3\xA9");
	/* Unicode 15, §3.9, table 3-8 */
	check_sanitized("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64", 13,
	                "a" FFFD FFFD FFFD "b" FFFD "c" FFFD FFFD "d");
	check_sanitized("\xFF", 1, FFFD);
	check_sanitized("a\xC3", 2, "a" FFFD);
	/* a 3-byte ill-formed prefix whose replacement is as long as itself */
	check_sanitized("\xF0\x90\x80", 3, FFFD);
	check_sanitized("\xF0\x90\x80"
	                "z",
	                4, FFFD "z");
	check_sanitized("\xED\xA0\x80", 3, FFFD FFFD FFFD); /* surrogate: 3 subparts */
	check_sanitized("\xC0\xAF", 2, FFFD FFFD);
	size_t n;
	char *s = core_utf8_sanitize("x", 1, NULL);
	assert_string_equal(s, "x");
	free(s);
	assert_null(core_utf8_sanitize("x", (size_t)-1, &n)); /* 3 * len overflows */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(char_len_matches_reference),
	    cmocka_unit_test(valid_and_offsets),
	    cmocka_unit_test(sanitize_maximal_subparts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
