/* The one map from error codes to exit statuses (core_exit_status in
 * core/runtime/error.c) against interface.md §7. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core.h"

static void test_request_level_codes(void **state)
{
	(void)state;
	assert_int_equal(core_exit_status(SC_OK), 0);
	assert_int_equal(core_exit_status(SC_EINPUT), 2);  /* unusable request */
	assert_int_equal(core_exit_status(SC_EPLUGIN), 3); /* cannot run */
	assert_int_equal(core_exit_status(SC_EINTERNAL), 3);
}

static void test_every_other_code_is_a_failure(void **state)
{
	(void)state;
	const enum sc_code failed[] = {SC_ESKIP, SC_ECONNECT, SC_ETLS, SC_EAUTH,
	                               SC_ESEND, SC_EPROTO,   SC_EIO,  SC_ENOMEM};
	for (size_t i = 0; i < sizeof failed / sizeof failed[0]; i++)
		assert_int_equal(core_exit_status(failed[i]), 1);
	assert_int_equal(core_exit_status((enum sc_code)999), 1); /* from a newer plugin */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_request_level_codes),
	    cmocka_unit_test(test_every_other_code_is_a_failure),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
