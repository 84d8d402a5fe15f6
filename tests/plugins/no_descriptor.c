/* Test-only module: a valid shared object that exports no `sc_plugin`
 * symbol. The loader must say it is not an smtp-connector plugin (not
 * "not found", not a crash). Never installed. */
int smtp_connector_test_not_a_plugin(void);

int smtp_connector_test_not_a_plugin(void)
{
	return 42;
}
