/* Passwordless: no AUTH at all, for relays that accept mail by network
 * address. */
#include <smtp-connector/plugin.h>

static int passwordless_acquire(struct sc_ctx *ctx, struct sc_credentials *creds, void **priv,
                                struct sc_error *err)
{
	(void)ctx;
	(void)creds;
	(void)priv;
	(void)err;
	return SC_OK;
}

static const struct sc_auth_ops passwordless_ops = {
    .acquire = passwordless_acquire,
};

const struct sc_plugin sc_plugin = {
    .abi = SC_PLUGIN_ABI,
    .kind = SC_PLUGIN_AUTH,
    .name = "Passwordless",
    .identifier = "passwordless",
    .version = "1.0",
    .description = "No authentication (relays that accept mail by network address)",
    .schema = NULL,
    .auth = &passwordless_ops,
};
