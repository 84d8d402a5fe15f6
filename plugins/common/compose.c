/* What send email and send htmlemail share (see compose.h). The rules
 * that fix the SOAR app's header quirks live here once: every header is
 * set at most once, the headers JSON wins over parameters, Bcc never
 * becomes a header, and CR/LF anywhere is refused before anything is
 * sent. */
#include "compose.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *compose_param_string(const cJSON *params, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int has_crlf(const char *s)
{
	return strpbrk(s, "\r\n") != NULL;
}

/* Parse a list parameter; errors are prefixed with its name. */
static int parse_list(const char *what, const char *text, struct sc_address_list *out,
                      struct sc_error *err)
{
	if (!text)
		return SC_OK;
	int rc = sc_address_list_parse(text, strlen(text), out, err);
	if (rc)
		sc_error_prefix(err, "%s", what);
	return rc;
}

/* to, cc, bcc: an address-list string, or (Velociraptor's mail()) a JSON
 * array whose elements are each one address or a list. */
static int recipients(const cJSON *params, const char *what, struct sc_address_list *out,
                      struct sc_error *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, what);
	if (!cJSON_IsArray(v))
		return parse_list(what, cJSON_IsString(v) ? v->valuestring : NULL, out, err);
	int i = 0, rc = SC_OK;
	const cJSON *e;
	cJSON_ArrayForEach(e, v)
	{
		struct sc_address_list one = {NULL, 0};
		if (!cJSON_IsString(e))
			rc = sc_error_set(err, SC_EINPUT,
			                  "%s[%d]: must be a string (an address or a "
			                  "list of them)",
			                  what, i);
		else if ((rc = sc_address_list_parse(e->valuestring, strlen(e->valuestring), &one,
		                                     err)))
			sc_error_prefix(err, "%s[%d]", what, i);
		for (size_t k = 0; !rc && k < one.n; k++)
			rc = sc_address_list_add_unique(out, &one.v[k]);
		sc_address_list_free(&one);
		if (rc)
			return rc == SC_ENOMEM ? sc_error_set(err, SC_ENOMEM, "out of memory") : rc;
		i++;
	}
	return SC_OK;
}

/* The sender: `from`, else the platform's email setting, else the asset's
 * sender_address, else its username (interface.md, soar-smtp.md §4.1). */
static int resolve_sender(struct sc_ctx *ctx, const cJSON *params, struct compose *c,
                          struct sc_error *err)
{
	const char *what = "from";
	const char *v = compose_param_string(params, "from");
	c->from_given = v && *v;
	if (!v || !*v) {
		what = "platform.email_from";
		v = sc_platform_string(ctx, "email_from");
	}
	if (!v) {
		what = "asset.sender_address";
		v = sc_asset_string(ctx, "sender_address");
	}
	if (!v) {
		what = "asset.username";
		v = sc_asset_string(ctx, "username");
	}
	if (!v)
		return sc_error_set(err, SC_EINPUT,
		                    "from: no sender; give \"from\", or set "
		                    "sender_address (or username) in the asset");
	struct sc_address_list l = {NULL, 0};
	int rc = parse_list(what, v, &l, err);
	if (!rc && l.n != 1)
		rc = sc_error_set(err, SC_EINPUT, "%s: give exactly one sender address, not %zu",
		                  what, l.n);
	if (!rc) {
		c->from = l.v[0];
		memset(&l.v[0], 0, sizeof l.v[0]);
	}
	sc_address_list_free(&l);
	return rc;
}

static int build_envelope(struct compose *c)
{
	const struct sc_address_list *lists[] = {&c->to, &c->cc, &c->bcc};
	for (size_t l = 0; l < 3; l++)
		for (size_t i = 0; i < lists[l]->n; i++)
			if (sc_address_list_add_unique(&c->envelope, &lists[l]->v[i]))
				return SC_ENOMEM;
	c->smtputf8 = sc_str_8bit(c->from.addr);
	for (size_t i = 0; i < c->envelope.n; i++)
		c->smtputf8 |= sc_str_8bit(c->envelope.v[i].addr);
	return SC_OK;
}

static int set_list_header(struct compose *c, const char *name, const struct sc_address_list *l,
                           struct sc_error *err)
{
	if (l->n == 0)
		return SC_OK;
	char *v = sc_address_list_format(name, l, c->smtputf8);
	int rc = v ? sc_message_header(c->msg, name, v, err)
	           : sc_error_set(err, SC_ENOMEM, "out of memory");
	free(v);
	return rc;
}

cJSON *compose_json_param(const cJSON *params, const char *what, struct sc_error *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, what);
	if (!v)
		return NULL;
	if (!cJSON_IsString(v))
		return cJSON_Duplicate(v, 1);
	if (!v->valuestring[0])
		return NULL;
	/* sc_json_parse_fault, not cJSON_Parse: a "\\u0000" inside the text would
	 * cut a header value short (issue 8) */
	struct sc_error perr = SC_ERROR_INIT;
	enum sc_json_fault why = SC_JSON_OK;
	cJSON *j = sc_json_parse_fault(v->valuestring, strlen(v->valuestring), what, &why, &perr);
	if (!j && why == SC_JSON_SYNTAX)
		sc_error_set(err, SC_EINPUT, "%s; give a JSON %s", perr.message,
		             strcmp(what, "headers")
		                 ? "list"
		                 : "object such as {\"Reply-To\": \"soc@corp.example\"}");
	else if (!j)
		sc_error_set(err, perr.code, "%s", perr.message ? perr.message : "out of memory");
	sc_error_clear(&perr);
	return j;
}

static int is_address_header(const char *name)
{
	static const char *const names[] = {"From", "To", "Cc", "Reply-To", "Sender", NULL};
	for (size_t i = 0; names[i]; i++)
		if (!strcasecmp(name, names[i]))
			return 1;
	return 0;
}

/* One custom header from the headers JSON. Address headers are parsed and
 * re-encoded (a non-ASCII display name must not drag the address into an
 * encoded word); others are encoded as unstructured text. */
static int custom_header(struct compose *c, const char *name, const char *value,
                         struct sc_error *err)
{
	if (!sc_header_name_valid(name))
		return sc_error_set(err, SC_EINPUT,
		                    "headers: \"%s\" is not a valid header name; "
		                    "use printable ASCII without spaces or ':'",
		                    name);
	if (!strcasecmp(name, "Bcc"))
		return sc_error_set(err, SC_EINPUT,
		                    "headers: Bcc cannot be a header (every recipient "
		                    "would see it); use the bcc parameter");
	if (has_crlf(value))
		return sc_error_set(err, SC_EINPUT,
		                    "headers: the value of \"%s\" contains a line "
		                    "break; put it on one line",
		                    name);
	if (!strcasecmp(name, "MIME-Version") || !strncasecmp(name, "Content-", 8))
		return sc_error_set(err, SC_EINPUT,
		                    "headers: \"%s\" is set by the connector from "
		                    "the message's structure; remove it",
		                    name);
	char *enc = NULL;
	int rc = SC_OK;
	if (is_address_header(name)) {
		struct sc_address_list l = {NULL, 0};
		char *what = sc_asprintf("headers.%s", name);
		rc = parse_list(what ? what : "headers", value, &l, err);
		free(what);
		if (!rc && l.n == 0)
			rc = sc_error_set(err, SC_EINPUT, "headers: \"%s\" has no address", name);
		if (!rc && !strcasecmp(name, "From") && l.n != 1)
			rc = sc_error_set(err, SC_EINPUT,
			                  "headers.From: must hold exactly one address");
		if (!rc && !(enc = sc_address_list_format(name, &l, c->smtputf8)))
			rc = sc_error_set(err, SC_ENOMEM, "out of memory");
		if (!rc && !strcasecmp(name, "From")) {
			free(c->header_from.display);
			free(c->header_from.addr);
			c->header_from = l.v[0];
			memset(&l.v[0], 0, sizeof l.v[0]);
		}
		sc_address_list_free(&l);
	} else if (!(enc = sc_header_encode_unstructured(name, value, c->smtputf8))) {
		rc = sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	if (!rc)
		rc = sc_message_header(c->msg, name, enc, err);
	free(enc);
	return rc;
}

static int custom_headers(struct compose *c, const cJSON *params, struct sc_error *err)
{
	struct sc_error jerr = SC_ERROR_INIT;
	cJSON *h = compose_json_param(params, "headers", &jerr);
	if (jerr.code) {
		sc_error_set(err, jerr.code, "%s", jerr.message);
		sc_error_clear(&jerr);
		return err->code;
	}
	int rc = SC_OK;
	if (h && !cJSON_IsObject(h))
		rc = sc_error_set(err, SC_EINPUT,
		                  "headers: must be a JSON object of header names to "
		                  "string values, such as {\"Reply-To\": \"soc@corp.example\"}");
	const cJSON *e, *obj = rc ? NULL : h;
	cJSON_ArrayForEach(e, obj)
	{
		if (!cJSON_IsString(e)) {
			rc = sc_error_set(
			    err, SC_EINPUT,
			    "headers: the value of \"%s\" must be a "
			    "string, not %s",
			    e->string, cJSON_IsNumber(e) ? "a number" : "a non-string JSON value");
			break;
		}
		if ((rc = custom_header(c, e->string, e->valuestring, err)))
			break;
	}
	cJSON_Delete(h);
	return rc;
}

static int set_subject(struct compose *c, const char *s, struct sc_error *err)
{
	if (!s || !*s)
		return SC_OK;
	if (has_crlf(s))
		return sc_error_set(err, SC_EINPUT,
		                    "subject: contains a line break; put the "
		                    "subject on one line");
	char *enc = sc_header_encode_unstructured("Subject", s, c->smtputf8);
	int rc = enc ? sc_message_header(c->msg, "Subject", enc, err)
	             : sc_error_set(err, SC_ENOMEM, "out of memory");
	free(enc);
	return rc;
}

int compose_check_text(const struct compose *c, const char *what, const char *text,
                       struct sc_error *err)
{
	if (c->allow_8bit || !sc_str_8bit(text))
		return SC_OK;
	return sc_error_set(err, SC_EINPUT,
	                    "%s: contains non-ASCII characters, but the asset "
	                    "sets encoding: false; set \"encoding\": true (Enable Unicode support) "
	                    "or remove the characters",
	                    what);
}

int compose_begin(struct sc_ctx *ctx, const cJSON *params, const char *subject, struct sc_result *r,
                  struct compose *c, struct sc_error *err)
{
	memset(c, 0, sizeof *c);
	c->allow_8bit = sc_asset_bool(ctx, "encoding", 1);
	c->msg = sc_message_new();
	if (!c->msg)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	int rc = resolve_sender(ctx, params, c, err);
	if (!rc)
		rc = recipients(params, "to", &c->to, err);
	if (!rc && c->to.n == 0)
		rc = sc_error_set(err, SC_EINPUT, "to: no recipient address; give at least one");
	if (!rc)
		rc = recipients(params, "cc", &c->cc, err);
	if (!rc)
		rc = recipients(params, "bcc", &c->bcc, err);
	if (!rc && build_envelope(c))
		rc = sc_error_set(err, SC_ENOMEM, "out of memory");
	if (!rc && !c->allow_8bit && c->smtputf8)
		rc = sc_error_set(err, SC_EINPUT,
		                  "to/cc/bcc/from: a non-ASCII address needs "
		                  "\"encoding\": true in the asset");
	if (!rc && has_crlf(c->from.addr))
		rc = sc_error_set(err, SC_EINPUT, "from: contains a line break");
	struct sc_address_list one = {&c->from, 1};
	if (!rc)
		rc = set_list_header(c, "From", &one, err);
	if (!rc)
		rc = set_list_header(c, "To", &c->to, err);
	if (!rc)
		rc = set_list_header(c, "Cc", &c->cc, err);
	if (!rc)
		rc = set_subject(c, subject ? subject : compose_param_string(params, "subject"),
		                 err);
	if (!rc)
		rc = custom_headers(c, params, err);
	if (!rc && c->header_from.addr && !c->from_given) {
		/* As the SOAR app: without a "from" parameter, a From in the
		 * headers JSON is the sender, envelope included. */
		free(c->from.addr);
		c->from.addr = strdup(c->header_from.addr);
		if (!c->from.addr)
			rc = sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	const char *at = strrchr(c->from.addr ? c->from.addr : "", '@');
	if (!rc && !sc_message_ensure_ids(c->msg, at ? at + 1 : NULL))
		rc = sc_error_set(err, SC_ENOMEM, "cannot make a Message-ID");
	if (!rc) {
		/* As the SOAR app: parameter.from becomes the effective From
		 * (the headers JSON's, when it set one). */
		char *eff = sc_address_format(c->header_from.addr ? &c->header_from : &c->from, 1);
		cJSON *p = sc_result_parameter(r);
		if (eff && p) {
			cJSON_DeleteItemFromObjectCaseSensitive(p, "from");
			cJSON_AddStringToObject(p, "from", eff);
		}
		free(eff);
	}
	return rc;
}

int compose_send(struct sc_ctx *ctx, struct compose *c, struct sc_result *r, struct sc_error *err)
{
	const char **rcpt = calloc(c->envelope.n + 1, sizeof *rcpt);
	if (!rcpt)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	for (size_t i = 0; i < c->envelope.n; i++)
		rcpt[i] = c->envelope.v[i].addr;
	struct sc_envelope env = {c->from.addr, rcpt, c->envelope.n, c->smtputf8, 0};
	/* SC_PENDING with max_connections > 1: the core keeps the message
	 * and copies the envelope (message.h) */
	int rc = sc_send_async(ctx, &env, c->msg, r, err);
	free(rcpt);
	return rc;
}

void compose_free(struct compose *c)
{
	free(c->from.display);
	free(c->from.addr);
	free(c->header_from.display);
	free(c->header_from.addr);
	sc_address_list_free(&c->to);
	sc_address_list_free(&c->cc);
	sc_address_list_free(&c->bcc);
	sc_address_list_free(&c->envelope);
	sc_message_free(c->msg);
	memset(c, 0, sizeof *c);
}
