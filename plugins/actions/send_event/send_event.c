/* send event: one event or detection as mail, as LimaCharlie's SMTP
 * output sends it (seed-systems.md §1):
 *
 *   readable false  text/plain: the event as pretty-printed JSON (or the
 *                   "template" rendered without escaping)
 *   readable true   multipart/alternative [text: key: value lines,
 *                   html: nested tables (or the "template" rendered with
 *                   HTML escaping)]
 *   attach_json     the above inside multipart/mixed, plus event.json
 *                   (default: on when readable)
 *
 * The subject is a Mustache template over the event (no escaping; then
 * RFC 2047-encoded as every subject), else a short line from the event.
 * Sender, recipients, headers and sending are compose's, as for send
 * email; batches, throttle and signatures come with it. */
#include "compose.h"
#include "event.h"
#include "html.h"

#include <smtp-connector/template.h>
#include <stdlib.h>
#include <string.h>

#include "params_schema.h"

struct event_mail {
	cJSON *owned;    /* the event parsed from a string, or NULL */
	const cJSON *ev; /* the event */
	int readable, attach;
	const char *body_template;
	char *subject;
};

static int bool_param(const cJSON *params, const char *key, int dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, key);
	return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

/* "event": an object, or a string holding one (what a playbook has when
 * the event went through a text field). */
static int read_event(const cJSON *params, struct event_mail *m, struct sc_error *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, "event");
	if (cJSON_IsObject(v)) {
		m->ev = v;
		return SC_OK;
	}
	if (!cJSON_IsString(v))
		return sc_error_set(err, SC_EINPUT,
		                    "event: must be a JSON object, or a string "
		                    "that holds one");
	const char *end = NULL;
	m->owned = cJSON_ParseWithOpts(v->valuestring, &end, 1);
	if (!m->owned)
		return sc_error_set(err, SC_EINPUT,
		                    "event: the string is not JSON (error near byte "
		                    "%zu); give the event as a JSON object, or its JSON text",
		                    end ? (size_t)(end - v->valuestring) : 0);
	if (!cJSON_IsObject(m->owned))
		return sc_error_set(err, SC_EINPUT,
		                    "event: the string holds JSON but not an object; "
		                    "an event is a JSON object ({...})");
	m->ev = m->owned;
	return SC_OK;
}

static int make_subject(const cJSON *params, struct event_mail *m, struct sc_error *err)
{
	const char *t = compose_param_string(params, "subject");
	if (!t || !*t) {
		m->subject = event_default_subject(m->ev);
		return m->subject ? SC_OK : sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	int rc = sc_template_expand(t, m->ev, SC_ESCAPE_NONE, &m->subject, err);
	if (rc) {
		sc_error_prefix(err, "subject");
		return rc;
	}
	/* a subject is one line: control characters from event values
	 * become spaces rather than failing the mail */
	sc_str_one_line(m->subject);
	return SC_OK;
}

static int add_json_attachment(curl_mime *mime, const cJSON *ev, struct sc_error *err)
{
	char *json = cJSON_Print(ev);
	curl_mimepart *part = json ? curl_mime_addpart(mime) : NULL;
	int bad = !part || curl_mime_data(part, json, CURL_ZERO_TERMINATED) ||
	          curl_mime_type(part, "application/json") ||
	          curl_mime_filename(part, "event.json") || curl_mime_encoder(part, "base64");
	free(json);
	return bad ? sc_error_set(err, SC_ENOMEM, "cannot attach event.json") : SC_OK;
}

/* text and html into an alternative under `parent` (or as the root),
 * borrowed: the message keeps both (build_body). */
static int add_alternative(curl_mime *alt, const char *text, const char *html, struct sc_error *err)
{
	if (!sc_mime_add_text_ref(alt, "text/plain", text, strlen(text), err) ||
	    !sc_mime_add_text_ref(alt, "text/html", html, strlen(html), err))
		return err->code ? err->code : SC_ENOMEM;
	return SC_OK;
}

static int readable_parts(struct event_mail *m, char **text, char **html, struct sc_error *err)
{
	if (m->body_template) {
		int rc = sc_template_expand(m->body_template, m->ev, SC_ESCAPE_HTML, html, err);
		if (rc) {
			sc_error_prefix(err, "template");
			return rc;
		}
		*text = html_to_text(*html, strlen(*html), err);
	} else {
		*html = event_render_html(m->ev, m->subject, err);
		*text = *html ? event_render_text(m->ev, err) : NULL;
	}
	return *html && *text ? SC_OK : (err->code ? err->code : SC_ENOMEM);
}

static int machine_text(struct event_mail *m, char **text, struct sc_error *err)
{
	if (m->body_template) {
		int rc = sc_template_expand(m->body_template, m->ev, SC_ESCAPE_NONE, text, err);
		if (rc)
			sc_error_prefix(err, "template");
		return rc;
	}
	*text = cJSON_Print(m->ev);
	return *text ? SC_OK : sc_error_set(err, SC_ENOMEM, "out of memory");
}

static int build_body(struct sc_ctx *ctx, struct compose *c, struct event_mail *m,
                      struct sc_error *err)
{
	char *text = NULL, *html = NULL;
	int rc = m->readable ? readable_parts(m, &text, &html, err) : machine_text(m, &text, err);
	if (rc) {
		free(text);
		free(html);
		return rc;
	}
	/* As send email: the parts borrow the texts, encoded as they are
	 * sent, and the message frees them (it may outlive this run under
	 * sc_send_async). sc_message_keep takes each even when it fails. */
	rc = sc_message_keep(c->msg, text, err);
	int kept = sc_message_keep(c->msg, html, err);
	if (!rc)
		rc = kept;
	if (!rc)
		rc = compose_check_text(c, m->body_template ? "template" : "event", text, err);
	if (rc)
		return rc;
	if (!m->readable && !m->attach)
		return sc_message_body_text(c->msg, "text/plain; charset=utf-8", text, strlen(text),
		                            err);
	curl_mime *root = sc_mime_new(ctx);
	if (!root)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	if (!m->attach) {
		rc = add_alternative(root, text, html, err);
		if (!rc)
			return sc_message_body_mime(c->msg, root, "multipart/alternative", err);
		curl_mime_free(root);
		return rc;
	}
	if (m->readable) {
		/* root owns the nested tree; sc_mime_add_multipart folds its
		 * Content-Type as every other nested part's */
		curl_mime *alt = sc_mime_add_multipart(root, "multipart/alternative", err);
		rc = alt ? add_alternative(alt, text, html, err) : (int)err->code;
	} else if (!sc_mime_add_text_ref(root, "text/plain", text, strlen(text), err)) {
		rc = err->code ? err->code : SC_ENOMEM;
	}
	if (!rc)
		rc = add_json_attachment(root, m->ev, err);
	if (!rc)
		return sc_message_body_mime(c->msg, root, "multipart/mixed", err);
	curl_mime_free(root);
	return rc;
}

static int send_event_run(struct sc_ctx *ctx, const cJSON *params, struct sc_result *r,
                          struct sc_error *err)
{
	struct event_mail m = {0};
	struct compose c;
	int begun = 0;
	int rc = read_event(params, &m, err);
	if (!rc) {
		m.readable = bool_param(params, "readable", 0);
		m.attach = bool_param(params, "attach_json", m.readable);
		m.body_template = compose_param_string(params, "template");
		rc = make_subject(params, &m, err);
	}
	if (!rc) {
		begun = 1;
		/* the rendered subject, not the template in params */
		rc = compose_begin(ctx, params, m.subject, r, &c, err);
	}
	if (!rc)
		rc = build_body(ctx, &c, &m, err);
	if (!rc)
		rc = compose_send(ctx, &c, r, err);
	if (!rc || rc == SC_PENDING) {
		cJSON *d = sc_result_data(r);
		if (d) {
			cJSON_AddStringToObject(d, "subject", m.subject);
			cJSON_AddStringToObject(d, "format", m.readable ? "readable" : "json");
		}
	}
	if (begun)
		compose_free(&c);
	cJSON_Delete(m.owned);
	free(m.subject);
	return rc;
}

static const struct sc_action_ops send_event_ops = {
    .run = send_event_run,
};

static const char *const outputs[] = {SC_SEND_OUTPUTS, "subject:string", "format:string", NULL};

const struct sc_plugin sc_plugin = {
    .abi = SC_PLUGIN_ABI,
    .kind = SC_PLUGIN_ACTION,
    .name = "send event",
    .identifier = "send_event",
    .version = "1.0",
    .description = "Mail an event or detection: JSON for machines, or readable HTML tables",
    .schema = schema_params,
    .action = &send_event_ops,
    .outputs = outputs,
};
