/* struct sc_buf (core/runtime/buf.c), the host API's one growable
 * buffer, and its `wipe` mode for buffers that hold secrets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core.h"

#include <stdlib.h>
#include <string.h>

static void fill(struct sc_buf *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		assert_int_equal(sc_buf_add(b, "0123456789" + i % 10, 1), SC_OK);
}

static void test_growth_keeps_the_bytes(void **state)
{
	(void)state;
	struct sc_buf plain = {0}, secret = {.wipe = 1};
	fill(&plain, 5000);
	fill(&secret, 5000);
	assert_int_equal(plain.len, 5000);
	assert_int_equal(secret.len, 5000);
	assert_memory_equal(plain.p, secret.p, 5001);
	assert_int_equal(secret.p[5000], '\0');
	sc_buf_free(&plain);
	sc_buf_wipe(&secret);
	assert_null(secret.p);
	assert_int_equal(secret.len, 0);
}

static void test_wipe_mode_moves_to_a_new_block_on_growth(void **state)
{
	(void)state;
	/* realloc may grow in place or move without wiping; wipe mode always
	 * copies to a new block (and wipes the old one before freeing it) */
	struct sc_buf b = {.wipe = 1};
	assert_int_equal(sc_buf_str(&b, "secret"), SC_OK);
	size_t cap = b.cap;
	char *before = b.p;
	char *pad = calloc(1, cap + 1);
	memset(pad, 'x', cap);
	assert_int_equal(sc_buf_str(&b, pad), SC_OK);
	assert_true(b.cap > cap);
	assert_ptr_not_equal(b.p, before);
	assert_memory_equal(b.p, "secret", 6);
	free(pad);
	sc_buf_wipe(&b);
}

static void test_take_and_printf(void **state)
{
	(void)state;
	struct sc_buf b = {0};
	char *empty = sc_buf_take(&b);
	assert_string_equal(empty, "");
	free(empty);
	assert_int_equal(sc_buf_printf(&b, "%s=%d", "n", 42), SC_OK);
	char *s = sc_buf_take(&b);
	assert_string_equal(s, "n=42");
	assert_null(b.p);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_growth_keeps_the_bytes),
	    cmocka_unit_test(test_wipe_mode_moves_to_a_new_block_on_growth),
	    cmocka_unit_test(test_take_and_printf),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
