/* Test-only module: a well-formed descriptor that claims another plugin
 * ABI (SC_PLUGIN_ABI + 98). The loader must refuse it by reading `abi`
 * first, before it trusts any other field, and name both ABI numbers.
 * test_foundation.py copies it into a temporary plugin dir as
 * action_test_connectivity.so. Never installed. */
#include <smtp-connector/plugin.h>

#define WRONG_ABI (SC_PLUGIN_ABI + 98)

const struct sc_plugin sc_plugin = {
    .abi = WRONG_ABI,
    .kind = SC_PLUGIN_ACTION,
    .name = "test connectivity",
    .identifier = "test_connectivity",
    .version = "0-wrong-abi",
    .description = "test module built for another plugin ABI",
    .schema = NULL,
    .action = NULL, /* the loader must not get this far */
};
