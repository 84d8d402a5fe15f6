/* core_asset_parse (core/runtime/asset.c): the typed asset the core
 * reads, with schemas/asset.json's defaults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "asset.h"

#include <string.h>

static void test_defaults(void **state)
{
	(void)state;
	cJSON *a = cJSON_Parse("{\"server\": \"smtp.corp.example\"}");
	struct core_asset c;
	core_asset_parse(a, &c);
	assert_string_equal(c.server, "smtp.corp.example");
	assert_string_equal(c.ssl_config, "StartTLS");
	assert_int_equal(c.port, 0);
	assert_true(c.timeout == 30.0);
	assert_true(c.throttle_period == 0.0);
	assert_int_equal(c.verify_server_cert, 1);
	assert_int_equal(c.allow_smtputf8, 1);
	assert_int_equal(c.max_connections, 1);
	assert_null(c.username);
	assert_null(c.auth_type);
	assert_null(c.auth_order);
	assert_null(c.ca_file);
	assert_null(c.secret_key);
	cJSON_Delete(a);
}

static void test_every_field(void **state)
{
	(void)state;
	cJSON *a = cJSON_Parse(
	    "{\"server\": \"[::1]:2525\", \"port\": 465, \"ssl_config\": \"SSL\","
	    " \"timeout\": 2.5, \"username\": \"u@corp.example\", \"auth_type\": \"Basic\","
	    " \"auth_mechanism\": \"LOGIN\", \"auth_order\": [\"Basic\"],"
	    " \"sender_address\": \"soc@corp.example\", \"ca_file\": \"/ca.pem\","
	    " \"verify_server_cert\": false, \"allow_smtputf8\": false, \"ehlo_name\": \"h\","
	    " \"secret_key\": \"k\", \"throttle_period\": 1.5, \"max_connections\": 8}");
	struct core_asset c;
	core_asset_parse(a, &c);
	assert_string_equal(c.server, "[::1]:2525");
	assert_int_equal(c.port, 465);
	assert_string_equal(c.ssl_config, "SSL");
	assert_true(c.timeout == 2.5);
	assert_string_equal(c.username, "u@corp.example");
	assert_string_equal(c.auth_type, "Basic");
	assert_string_equal(c.auth_mechanism, "LOGIN");
	assert_int_equal(cJSON_GetArraySize(c.auth_order), 1);
	assert_string_equal(c.sender_address, "soc@corp.example");
	assert_string_equal(c.ca_file, "/ca.pem");
	assert_int_equal(c.verify_server_cert, 0);
	assert_int_equal(c.allow_smtputf8, 0);
	assert_string_equal(c.ehlo_name, "h");
	assert_string_equal(c.secret_key, "k");
	assert_true(c.throttle_period == 1.5);
	assert_int_equal(c.max_connections, 8);
	cJSON_Delete(a);
}

static void test_empty_and_automatic_are_absent(void **state)
{
	(void)state;
	cJSON *a =
	    cJSON_Parse("{\"server\": \"\", \"auth_type\": \"automatic\", \"ca_file\": \"\"}");
	struct core_asset c;
	core_asset_parse(a, &c);
	assert_null(c.server);
	assert_null(c.auth_type);
	assert_null(c.ca_file);
	cJSON_Delete(a);
	core_asset_parse(NULL, &c); /* no asset: the defaults */
	assert_string_equal(c.ssl_config, "StartTLS");
	assert_true(c.timeout == 30.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_every_field),
	    cmocka_unit_test(test_empty_and_automatic_are_absent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
