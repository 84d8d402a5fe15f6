/* OAuth 2.0: placeholder until the OAuth grants are implemented; it
 * reports "not configured" so Automatic moves on to Basic. */
#include <smtp-connector/plugin.h>

static int oauth_acquire(struct sc_ctx *ctx, struct sc_credentials *creds, void **priv,
			 struct sc_error *err)
{
	(void)ctx;
	(void)creds;
	(void)priv;
	return sc_error_set(err, SC_ESKIP, "OAuth is not configured in this build");
}

static const struct sc_auth_ops oauth_ops = {
	.acquire = oauth_acquire,
};

const struct sc_plugin sc_plugin = {
	.abi = SC_PLUGIN_ABI,
	.kind = SC_PLUGIN_AUTH,
	.name = "OAuth",
	.identifier = "oauth",
	.version = "0.1",
	.description = "OAuth 2.0 bearer tokens over XOAUTH2",
	.schema = NULL,
	.auth = &oauth_ops,
};
