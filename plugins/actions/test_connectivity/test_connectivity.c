/* test connectivity, as the SOAR app: connect, secure, authenticate; with
 * an authenticating method (Basic, OAuth, any third-party plugin) send a
 * test mail from and to sender_address (else username). Passwordless
 * sends nothing. Messages keep the SOAR wording playbooks match on. */
#include <smtp-connector/message.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "params_schema.h"

static const char test_body[] =
    "This is a test mail, sent by the SOAR device,\nto test connectivity to the SMTP Asset.\n";

static const char *configured_type(const struct sc_ctx *ctx)
{
	const char *t = sc_asset_string(ctx, "auth_type");
	return t ? t : "Automatic";
}

static int build(struct sc_ctx *ctx, const struct sc_address *me, struct sc_message *m,
                 struct sc_error *err)
{
	char *who = sc_address_format(me, 0);
	int rc = who ? SC_OK : sc_error_set(err, SC_ENOMEM, "out of memory");
	if (!rc)
		rc = sc_message_header(m, "From", who, err);
	if (!rc)
		rc = sc_message_header(m, "To", who, err);
	if (!rc)
		rc = sc_message_header(m, "Subject", "Test SMTP config", err);
	free(who);
	const char *at = strrchr(me->addr, '@');
	if (!rc && !sc_message_ensure_ids(m, at ? at + 1 : NULL))
		rc = sc_error_set(err, SC_ENOMEM, "cannot make a Message-ID");
	if (!rc)
		rc = sc_message_body_single(m, "text/plain; charset=utf-8", "7bit", test_body,
		                            strlen(test_body), err);
	(void)ctx;
	return rc;
}

static int send_test_mail(struct sc_ctx *ctx, struct sc_result *r, struct sc_error *err)
{
	const char *what = "asset.sender_address";
	const char *me = sc_asset_string(ctx, "sender_address");
	if (!me) {
		what = "asset.username";
		me = sc_asset_string(ctx, "username");
	}
	if (!me)
		return sc_error_set(err, SC_EINPUT,
		                    "no address for the test mail: set sender_address "
		                    "(or username) in the asset");
	struct sc_address_list l = {NULL, 0};
	int rc = sc_address_list_parse(me, strlen(me), &l, err);
	if (!rc && l.n != 1)
		rc = sc_error_set(err, SC_EINPUT, "give exactly one address");
	if (rc) {
		sc_error_prefix(err, "%s", what);
		sc_address_list_free(&l);
		return rc;
	}
	struct sc_message *m = sc_message_new();
	rc = m ? build(ctx, &l.v[0], m, err) : sc_error_set(err, SC_ENOMEM, "out of memory");
	if (!rc) {
		const char *rcpt[1] = {l.v[0].addr};
		struct sc_envelope env = {l.v[0].addr, rcpt, 1, sc_address_is_utf8(&l.v[0]), 0};
		sc_log(SC_LOG_INFO, "Sending test mail");
		rc = sc_send(ctx, &env, m, r, err);
	}
	sc_message_free(m);
	sc_address_list_free(&l);
	return rc;
}

static int tc_run(struct sc_ctx *ctx, const cJSON *params, struct sc_result *r,
                  struct sc_error *err)
{
	(void)params;
	struct sc_session *s = NULL;
	int rc = sc_session_open(ctx, &s, err);
	const char *method = rc ? configured_type(ctx) : sc_session_auth(s);
	if (!rc && strcasecmp(method, "Passwordless") != 0)
		rc = send_test_mail(ctx, r, err);
	if (rc) {
		sc_error_prefix(err, "Test Connectivity Failed for %s authentication",
		                configured_type(ctx));
		return rc;
	}
	sc_result_message(r, "Test Connectivity Passed for %s authentication", method);
	return SC_OK;
}

static const struct sc_action_ops tc_ops = {
    .run = tc_run,
};

static const char *const outputs[] = {"auth:string",
                                      "auth_attempts.*.method:string",
                                      "auth_attempts.*.outcome:string",
                                      "auth_attempts.*.reason:string",
                                      "warnings.*:string",
                                      NULL};

const struct sc_plugin sc_plugin = {
    .abi = SC_PLUGIN_ABI,
    .kind = SC_PLUGIN_ACTION,
    .name = "test connectivity",
    .identifier = "test_connectivity",
    .version = "1.0",
    .description = "Validate the asset: connect, secure, authenticate and send a test mail",
    .schema = schema_params,
    .action = &tc_ops,
    .outputs = outputs,
};
