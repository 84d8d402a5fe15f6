/* send rawemail: `raw_email` is a complete message, sent as given.
 *
 * Order of work (nothing touches the network before the session opens):
 *  1. the `\n` rule (sc_rawmsg_expand_newlines, message.h), then every
 *     line end made CRLF (sc_buf_add_crlf): the wire form, so the fields
 *     parsed are the fields the server sees, and removing one cannot
 *     join a bare CR before it with a bare LF after it into the CRLF
 *     that was the header/body separator (it did: the body then became
 *     headers);
 *  2. split the header section (sc_rawmsg_parse); a malformed line, or a
 *     line over 998 octets anywhere, is an error naming it, because
 *     guessing where the headers end would send another message than the
 *     one meant, and a server refuses a long line only after DATA;
 *  3. the envelope from the headers (envelope.c): sender, recipients;
 *  4. drop Bcc and Resent-Bcc (with their continuation lines): they must
 *     not reach the recipients; every other byte stays as given;
 *  5. add Date and Message-ID only when absent, and say so in the result;
 *  6. send. The message is not re-encoded, so 8-bit content needs the
 *     server's 8BITMIME (body) or SMTPUTF8 (UTF-8 in header fields, RFC
 *     6532); the session refuses before MAIL FROM when it lacks them. */
#include "envelope.h"

#include <stdlib.h>
#include <string.h>

#include "params_schema.h"

/* Date and Message-ID when the message lacks them; `added` lists what was
 * added (the result reports the Message-ID in use). */
static int ensure_ids(const struct sc_rawmsg *m, struct sc_message *msg, const char *sender,
                      cJSON *added, struct sc_error *err)
{
	int had_id = sc_rawmsg_find(m, "Message-ID", 0) < m->n;
	int had_date = sc_rawmsg_find(m, "Date", 0) < m->n;
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
	struct sc_envelope env = {e->senders.v[0].addr, rcpt, e->rcpt.n, e->smtputf8, e->eightbit};
	int rc = sc_send_async(ctx, &env, msg, r, err);
	free(rcpt);
	return rc;
}

/* Everything after the text is final: envelope, Bcc removal, ids, send. */
static int send_parsed(struct sc_ctx *ctx, const struct sc_rawmsg *m, struct sc_result *r,
                       struct sc_error *err)
{
	struct raw_envelope e;
	int rc = raw_envelope_get(m, r, &e, err);
	size_t len = 0;
	char *wire = rc ? NULL : sc_rawmsg_without(m, raw_envelope_hidden, NULL, &len);
	if (!rc && !wire)
		rc = sc_error_set(err, SC_ENOMEM, "out of memory");
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
	if (!rc || rc == SC_PENDING) {
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
	const char *given =
	    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(params, "raw_email"));
	if (!given || !*given)
		return sc_error_set(err, SC_EINPUT,
		                    "raw_email: give the complete message, headers "
		                    "then an empty line then the body");
	size_t len = strlen(given);
	struct sc_buf text = {0};
	char *one = malloc(len + 1);
	if (!one)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	memcpy(one, given, len + 1);
	len = sc_rawmsg_expand_newlines(one, len);
	int rc = sc_buf_add_crlf(&text, one, len) ? sc_error_set(err, SC_ENOMEM, "out of memory")
	                                          : SC_OK;
	free(one);
	struct sc_rawmsg m = {0};
	if (!rc && (rc = sc_rawmsg_parse(text.p, text.len, &m, err)))
		sc_error_prefix(err, "raw_email");
	else if (!rc)
		rc = send_parsed(ctx, &m, r, err);
	sc_rawmsg_free(&m);
	sc_buf_free(&text);
	return rc;
}

static const struct sc_action_ops raw_ops = {
    .run = raw_run,
};

static const char *const outputs[] = {SC_SEND_OUTPUTS, "added_headers.*:string", NULL};

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
