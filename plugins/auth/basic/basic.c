/* Basic: user name and password over SASL PLAIN or LOGIN (whatever the
 * server offers, unless asset auth_mechanism forces one). */
#include <smtp-connector/plugin.h>

static int basic_acquire(struct sc_ctx *ctx, struct sc_credentials *creds, void **priv,
                         struct sc_error *err)
{
	(void)priv;
	const char *user = sc_asset_string(ctx, "username");
	const char *pass = sc_asset_string(ctx, "password");
	if (!user || !pass)
		return sc_error_set(
		    err, SC_ESKIP,
		    "Basic authentication needs username and password; missing: %s%s%s",
		    user ? "" : "username", !user && !pass ? ", " : "", pass ? "" : "password");
	return sc_credentials_login(creds, user, pass);
}

static const struct sc_auth_ops basic_ops = {
    .acquire = basic_acquire,
};

const struct sc_plugin sc_plugin = {
    .abi = SC_PLUGIN_ABI,
    .kind = SC_PLUGIN_AUTH,
    .name = "Basic",
    .identifier = "basic",
    .version = "1.0",
    .description = "User name and password (SASL PLAIN or LOGIN, as the server offers)",
    .schema = NULL,
    .auth = &basic_ops,
};
