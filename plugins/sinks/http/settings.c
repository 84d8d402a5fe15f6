/* The sink's settings: already validated against schemas/sinks/http.json
 * by the runtime, so only what a schema cannot say is checked here
 * (header names, templates that compile, where the spool goes). */
#include "http_sink.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static double num(const cJSON *s, const char *key, double dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, key);
	return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static const char *str(const cJSON *s, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, key);
	return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

static int compile(const char *field, const char *text, struct sc_template **out,
                   struct sc_error *err)
{
	int rc = sc_template_compile(text, strlen(text), out, err);
	if (rc)
		sc_error_prefix(err, "%s", field);
	return rc;
}

/* RFC 9110 token characters: a header name is nothing else. */
static int valid_header_name(const char *n)
{
	if (!*n)
		return 0;
	for (; *n; n++)
		if (!isalnum((unsigned char)*n) && !strchr("!#$%&'*+-.^_`|~", *n))
			return 0;
	return 1;
}

/* The escaping a body template gets: what the receiver will parse. */
static enum sc_escape escape_for(const char *ct)
{
	size_t n = strcspn(ct, "; \t");
	if ((n == 16 && strncasecmp(ct, "application/json", n) == 0) ||
	    (n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0))
		return SC_ESCAPE_JSON;
	if (n == 9 && strncasecmp(ct, "text/html", n) == 0)
		return SC_ESCAPE_HTML;
	return SC_ESCAPE_NONE;
}

static int parse_headers(const cJSON *hs, struct hs_config *cfg, struct sc_error *err)
{
	int n = cJSON_GetArraySize(hs);
	if (n <= 0)
		return SC_OK;
	cfg->headers = calloc((size_t)n, sizeof *cfg->headers);
	if (!cfg->headers)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	const cJSON *h;
	cJSON_ArrayForEach(h, hs)
	{
		if (!valid_header_name(h->string))
			return sc_error_set(
			    err, SC_EINPUT,
			    "headers: \"%s\" is not a header name; use letters, digits and - only",
			    h->string);
		if (strcasecmp(h->string, "Idempotency-Key") == 0)
			return sc_error_set(
			    err, SC_EINPUT,
			    "headers.Idempotency-Key: the sink sets it (the message id, the same "
			    "on every retry); remove it");
		if (strcasecmp(h->string, "Content-Type") == 0)
			return sc_error_set(
			    err, SC_EINPUT,
			    "headers.Content-Type: set content_type instead (it also chooses how "
			    "the template escapes message text; a header of its own could "
			    "disagree)");
		struct hs_header *d = &cfg->headers[cfg->nheaders++];
		d->name = strdup(h->string);
		if (!d->name)
			return sc_error_set(err, SC_ENOMEM, "out of memory");
		char *field = sc_asprintf("headers.%s", h->string);
		int rc = field ? compile(field, h->valuestring, &d->value, err)
		               : sc_error_set(err, SC_ENOMEM, "out of memory");
		free(field);
		if (rc)
			return rc;
	}
	return SC_OK;
}

static int dup_opt(const char *s, char **out, struct sc_error *err)
{
	if (s && !(*out = strdup(s)))
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	return SC_OK;
}

static int parse_spool(const cJSON *s, const struct sc_sink_host *host, struct hs_config *cfg,
                       struct sc_error *err)
{
	const char *dir = str(s, "spool_dir");
	if (dir)
		return dup_opt(dir, &cfg->spool_dir, err);
	if (!host || !host->state_dir || !*host->state_dir)
		return sc_error_set(
		    err, SC_EINPUT,
		    "spool_dir: not given and the listener has no state directory; set spool_dir");
	cfg->spool_dir = sc_asprintf("%s/http-spool", host->state_dir);
	return cfg->spool_dir ? SC_OK : sc_error_set(err, SC_ENOMEM, "out of memory");
}

int hs_config_parse(const cJSON *s, const struct sc_sink_host *host, struct hs_config *cfg,
                    struct sc_error *err)
{
	const char *url = str(s, "url"), *mode = str(s, "mode"), *tpl;
	if (!url)
		return sc_error_set(err, SC_EINPUT,
		                    "url: required; give the endpoint (http:// or https://)");
	int rc = compile("url", url, &cfg->url, err);
	if (!rc)
		rc = parse_headers(cJSON_GetObjectItemCaseSensitive(s, "headers"), cfg, err);
	if (!rc && (tpl = str(s, "template")))
		rc = compile("template", tpl, &cfg->body, err);
	if (!rc)
		rc = dup_opt(str(s, "content_type") ? str(s, "content_type") : "application/json",
		             &cfg->content_type, err);
	if (rc)
		return rc;
	if (strpbrk(cfg->content_type, "\r\n"))
		return sc_error_set(err, SC_EINPUT, "content_type: must be one line");
	cfg->escape = escape_for(cfg->content_type);
	cfg->sync = mode && strcmp(mode, "sync") == 0;
	cfg->timeout = num(s, "timeout", 30);
	cfg->verify = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(s, "verify"));
	cfg->max_age = num(s, "max_age", 86400);
	cfg->retry_base = num(s, "retry_base_delay", 1);
	cfg->retry_max = num(s, "retry_max_delay", 600);
	if (cfg->retry_max < cfg->retry_base)
		return sc_error_set(
		    err, SC_EINPUT,
		    "retry_max_delay: %g is less than retry_base_delay (%g); raise it",
		    cfg->retry_max, cfg->retry_base);
	cfg->workers = (int)num(s, "workers", 4);
	cfg->max_body = (size_t)num(s, "max_body", 10485760);
	rc = dup_opt(str(s, "ca_file"), &cfg->ca_file, err);
	if (!rc && !cfg->sync)
		rc = parse_spool(s, host, cfg, err);
	return rc;
}

static void tfree(struct sc_template *t)
{
	if (t)
		sc_template_free(t);
}

void hs_config_free(struct hs_config *cfg)
{
	tfree(cfg->url);
	for (size_t i = 0; i < cfg->nheaders; i++) {
		free(cfg->headers[i].name);
		tfree(cfg->headers[i].value);
	}
	free(cfg->headers);
	tfree(cfg->body);
	free(cfg->content_type);
	free(cfg->spool_dir);
	free(cfg->ca_file);
	memset(cfg, 0, sizeof *cfg);
}
