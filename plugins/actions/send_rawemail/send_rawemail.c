/* send rawemail: `raw_email` is a complete message, sent as given.
 *
 * Order of work (nothing touches the network before the session opens):
 *  1. the `\n` rule (rawmsg_expand_newlines, documented in rawmsg.h);
 *  2. split the header section (rawmsg.c); a malformed line is an error
 *     naming it, because guessing where the headers end would send
 *     another message than the one meant;
 *  3. the envelope from the headers (envelope.c): sender, recipients;
 *  4. drop Bcc and Resent-Bcc (with their continuation lines): they must
 *     not reach the recipients; every other byte stays as given;
 *  5. add Date and Message-ID only when absent, and say so in the result;
 *  6. send. The message is not re-encoded, so 8-bit content needs the
 *     server's 8BITMIME (body) or SMTPUTF8 (UTF-8 in header fields, RFC
 *     6532); the session refuses before MAIL FROM when it lacks them. */
#include "envelope.h"
#include "rawmsg.h"

#include <stdlib.h>
#include <string.h>

#include "params_schema.h"

/* Date and Message-ID when the message lacks them; `added` lists what was
 * added (the result reports the Message-ID in use). */
static int ensure_ids(const struct rawmsg *m, struct sc_message *msg, const char *sender,
		      cJSON *added, struct sc_error *err)
{
	int had_id = rawmsg_find(m, "Message-ID", 0) < m->n;
	int had_date = rawmsg_find(m, "Date", 0) < m->n;
	const char *at = strrchr(sender, '@');
	if (!sc_message_ensure_ids(msg, at ? at + 1 : NULL) && !had_id)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	if (!had_date)
		cJSON_AddItemToArray(added, cJSON_CreateString("Date"));
	if (!had_id)
		cJSON_AddItemToArray(added, cJSON_CreateString("Message-ID"));
	return SC_OK;
}

static int send_it(struct sc_ctx *ctx, const struct raw_envelope *e, struct sc_message *msg,
		   struct sc_result *r, struct sc_error *err)
{
	const char **rcpt = calloc(e->rcpt.n + 1, sizeof *rcpt);
	if (!rcpt)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	for (size_t i = 0; i < e->rcpt.n; i++)
		rcpt[i] = e->rcpt.v[i].addr;
	struct sc_envelope env = { e->senders.v[0].addr, rcpt, e->rcpt.n, e->smtputf8, e->eightbit };
	int rc = sc_send(ctx, &env, msg, r, err);
	free(rcpt);
	return rc;
}

/* A bare CR becomes LF. The wire does not change (the message layer
 * sends CR, LF and CRLF all as CRLF), but the core's own look-ups in the
 * raw message (Date and Message-ID present?) only split lines at LF, and
 * must see the fields this plugin sees. */
static void bare_cr_to_lf(char *t, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (t[i] == '\r' && (i + 1 == len || t[i + 1] != '\n'))
			t[i] = '\n';
}

/* Everything after the text is final: envelope, Bcc removal, ids, send. */
static int send_parsed(struct sc_ctx *ctx, const struct rawmsg *m, struct sc_result *r,
		       struct sc_error *err)
{
	struct raw_envelope e;
	int rc = raw_envelope_get(m, r, &e, err);
	size_t len = 0;
	char *wire = rc ? NULL : rawmsg_without(m, raw_envelope_hidden, NULL, &len);
	if (!rc && !wire)
		rc = sc_error_set(err, SC_ENOMEM, "out of memory");
	if (wire)
		bare_cr_to_lf(wire, len);
	struct sc_message *msg = rc ? NULL : sc_message_new();
	if (!rc && !msg)
		rc = sc_error_set(err, SC_ENOMEM, "out of memory");
	if (!rc)
		rc = sc_message_raw(msg, wire, len, err);
	free(wire);
	cJSON *added = cJSON_CreateArray();
	if (!rc && !added)
		rc = sc_error_set(err, SC_ENOMEM, "out of memory");
	if (!rc)
		rc = ensure_ids(m, msg, e.senders.v[0].addr, added, err);
	if (!rc)
		rc = send_it(ctx, &e, msg, r, err);
	if (!rc) {
		cJSON_AddItemToObject(sc_result_data(r), "added_headers", added);
		added = NULL;
	}
	cJSON_Delete(added);
	sc_message_free(msg);
	raw_envelope_free(&e);
	return rc;
}

static int raw_run(struct sc_ctx *ctx, const cJSON *params, struct sc_result *r,
		   struct sc_error *err)
{
	const char *given = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(params, "raw_email"));
	if (!given || !*given)
		return sc_error_set(err, SC_EINPUT, "raw_email: give the complete message, headers "
				    "then an empty line then the body");
	size_t len = strlen(given);
	char *text = malloc(len + 1);
	if (!text)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	memcpy(text, given, len + 1);
	len = rawmsg_expand_newlines(text, len);
	struct rawmsg m;
	int rc = rawmsg_parse(text, len, &m, err);
	if (rc)
		sc_error_prefix(err, "raw_email");
	else
		rc = send_parsed(ctx, &m, r, err);
	rawmsg_free(&m);
	free(text);
	return rc;
}

static const struct sc_action_ops raw_ops = {
	.run = raw_run,
};


static const char *const outputs[] = { SC_SEND_OUTPUTS, "added_headers.*:string", NULL };

const struct sc_plugin sc_plugin = {
	.abi = SC_PLUGIN_ABI,
	.kind = SC_PLUGIN_ACTION,
	.name = "send rawemail",
	.identifier = "send_rawemail",
	.version = "1.0",
	.description = "Send a complete message as given; sender and recipients come from its headers",
	.schema = schema_params,
	.action = &raw_ops,
	.outputs = outputs,
};
