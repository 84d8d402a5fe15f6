/* The request for one message: the payload object (smtp-pigeon's fields
 * plus message_id, headers and attachments), the URL, headers and body
 * rendered from it. Built from the message file and its envelope, so a
 * spooled message renders the same on every retry. */
#include "http_sink.h"

#include <curl/curl.h>
#include <smtp-connector/message.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "dev"
#endif

static int add_str(cJSON *o, const char *k, const char *v)
{
	return cJSON_AddStringToObject(o, k, v ? v : "") ? 0 : -1;
}

cJSON *hs_envelope(const struct sc_inbound *m)
{
	cJSON *e = cJSON_CreateObject(), *r = cJSON_AddArrayToObject(e, "rcpt");
	int bad = !e || !r || add_str(e, "id", m->id) || add_str(e, "mail_from", m->mail_from) ||
	          !cJSON_AddNumberToObject(e, "received", (double)m->received) ||
	          !cJSON_AddNumberToObject(e, "received_usec", (double)m->received_usec) ||
	          add_str(e, "client_addr", m->client_addr) ||
	          !cJSON_AddNumberToObject(e, "client_port", m->client_port) ||
	          add_str(e, "helo", m->helo) || !cJSON_AddBoolToObject(e, "tls", m->tls) ||
	          (m->tls_version && add_str(e, "tls_version", m->tls_version)) ||
	          (m->auth_user && add_str(e, "auth_user", m->auth_user));
	for (size_t i = 0; !bad && i < m->nrcpt; i++)
		bad = !cJSON_AddItemToArray(r, cJSON_CreateString(m->rcpt[i]));
	if (bad) {
		cJSON_Delete(e);
		return NULL;
	}
	return e;
}

static const char *env_str(const cJSON *env, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(env, k);
	return cJSON_IsString(v) ? v->valuestring : "";
}

/* RFC 3339 in UTC, as smtp-pigeon writes it (whole seconds). */
static int add_timestamp(cJSON *p, const cJSON *env)
{
	const cJSON *r = cJSON_GetObjectItemCaseSensitive(env, "received");
	time_t t = cJSON_IsNumber(r) ? (time_t)r->valuedouble : time(NULL);
	struct tm tm;
	char text[32];
	if (!gmtime_r(&t, &tm) || !strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm))
		return -1;
	return add_str(p, "timestamp", text);
}

/* Move summary[k] into p (null when missing). */
static int take(cJSON *p, cJSON *summary, const char *k)
{
	cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(summary, k);
	if (!v)
		v = cJSON_CreateNull();
	return v && cJSON_AddItemToObject(p, k, v) ? 0 : -1;
}

static int payload(const cJSON *env, const char *path, const char *held, size_t len,
                   size_t max_body, cJSON **out, struct sc_error *err)
{
	cJSON *s = NULL;
	int rc = held ? sc_inbound_summary_mem(held, len, max_body, &s, err)
	              : sc_inbound_summary(path, max_body, &s, err);
	if (rc)
		return rc;
	cJSON *p = cJSON_CreateObject();
	int bad = !p || add_str(p, "id", env_str(env, "id")) || add_timestamp(p, env) ||
	          add_str(p, "sender", env_str(env, "mail_from"));
	if (!bad) {
		const cJSON *r = cJSON_GetObjectItemCaseSensitive(env, "rcpt");
		cJSON *rcpt = cJSON_IsArray(r) ? cJSON_Duplicate(r, 1) : cJSON_CreateArray();
		bad = !rcpt || !cJSON_AddItemToObject(p, "recipients", rcpt);
		if (bad)
			cJSON_Delete(rcpt);
	}
	bad = bad || take(p, s, "subject") || take(p, s, "body") || take(p, s, "message_id") ||
	      take(p, s, "headers") || take(p, s, "attachments");
	if (!bad && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "body_truncated")))
		bad = !cJSON_AddTrueToObject(p, "body_truncated");
	cJSON_Delete(s);
	if (bad) {
		cJSON_Delete(p);
		return sc_error_set(err, SC_ENOMEM, "out of memory building the payload");
	}
	*out = p;
	return SC_OK;
}

static int append(struct curl_slist **l, const char *name, const char *value)
{
	/* "Name;" is curl's way of sending an empty header ("Name:" drops it) */
	char *line = *value ? sc_asprintf("%s: %s", name, value) : sc_asprintf("%s;", name);
	struct curl_slist *n = line ? curl_slist_append(*l, line) : NULL;
	free(line);
	if (!n)
		return -1;
	*l = n;
	return 0;
}

static int overridden(const struct hs_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nheaders; i++)
		if (strcasecmp(cfg->headers[i].name, name) == 0)
			return 1;
	return 0;
}

static int build_headers(const struct hs_config *cfg, const cJSON *p, const char *id,
                         struct curl_slist **out, struct sc_error *err)
{
	/* "Expect:" off: waiting for 100-continue only delays every POST */
	if (append(out, "Idempotency-Key", id) || curl_slist_append(*out, "Expect:") == NULL ||
	    append(out, "Content-Type", cfg->content_type) ||
	    (!overridden(cfg, "User-Agent") &&
	     append(out, "User-Agent", "smtp-connector/" PACKAGE_VERSION " (sink http)")))
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	for (size_t i = 0; i < cfg->nheaders; i++) {
		char *v = NULL;
		int rc = sc_template_render(cfg->headers[i].value, p, NULL, SC_ESCAPE_NONE, &v,
		                            NULL, err);
		if (rc) {
			sc_error_prefix(err, "headers.%s", cfg->headers[i].name);
			return rc;
		}
		/* a header value is one line: a template fed by message
		 * content must not add headers of its own (CR LF injection) */
		sc_str_one_line(v);
		rc = append(out, cfg->headers[i].name, v);
		free(v);
		if (rc)
			return sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	return SC_OK;
}

static int build_url(const struct hs_config *cfg, const cJSON *p, char **out, struct sc_error *err)
{
	/* {{x}} percent-encodes a value (a subject in a query); {{{x}}} is for
	 * a value that is itself part of a URL */
	int rc = sc_template_render(cfg->url, p, NULL, SC_ESCAPE_URL, out, NULL, err);
	if (rc) {
		sc_error_prefix(err, "url");
		return rc;
	}
	for (const char *c = *out; *c; c++)
		if ((unsigned char)*c <= 0x20 || *c == 0x7f)
			return sc_error_set(
			    err, SC_EINPUT,
			    "url: the rendered URL holds a space or control character; "
			    "use values that are URL-safe");
	if (strncasecmp(*out, "http://", 7) && strncasecmp(*out, "https://", 8))
		return sc_error_set(err, SC_EINPUT,
		                    "url: the rendered URL is not http:// or https://");
	return SC_OK;
}

int hs_request_build(const struct hs_config *cfg, const cJSON *env, const char *path,
                     const char *held, size_t len, struct hs_request *req, struct sc_error *err)
{
	memset(req, 0, sizeof *req);
	cJSON *p = NULL;
	int rc = payload(env, path, held, len, cfg->max_body, &p, err);
	if (!rc)
		rc = build_url(cfg, p, &req->url, err);
	if (!rc)
		rc = build_headers(cfg, p, env_str(env, "id"), &req->headers, err);
	if (!rc && cfg->body) {
		rc = sc_template_render(cfg->body, p, NULL, cfg->escape, &req->body, &req->body_len,
		                        err);
		if (rc)
			sc_error_prefix(err, "template");
	} else if (!rc) {
		req->body = cJSON_PrintUnformatted(p);
		req->body_len = req->body ? strlen(req->body) : 0;
		if (!req->body)
			rc = sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	cJSON_Delete(p);
	if (rc)
		hs_request_free(req);
	return rc;
}

void hs_request_free(struct hs_request *req)
{
	free(req->url);
	curl_slist_free_all(req->headers);
	free(req->body);
	memset(req, 0, sizeof *req);
}
