/* The serve configuration: defaults, then --config (validated against
 * schemas/serve.json first, so every value here has the right type and
 * range), then the flags (cli.c). */
#include "serve_config.h"
#include "schema.h"
#include "serve_schema.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void serve_config_defaults(struct serve_config *c)
{
	memset(c, 0, sizeof *c);
	c->max_size = 26214400ULL; /* 25 MiB: what large mail providers accept */
	c->max_rcpt = 100;         /* RFC 5321 §4.5.3.1.8: at least 100 */
	c->max_conn = 200;
	c->line_length = 10000;
	c->max_errors = 20;
	c->t_command = 300000; /* RFC 5321 §4.5.3.2.7 */
	c->t_data = 180000;    /* §4.5.3.2.5 */
	c->greet_delay = 0;
	c->shutdown_grace = 30000;
	/* a delivery mostly waits (the group commit, an endpoint): with 4,
	 * at most 4 deliveries shared a flush and the rest queued; 16 took
	 * maildir from 2,197-2,425 to 2,703-2,735 msgs/s (bench/results.md) */
	c->workers = 16;
	c->auth_required = 1;
}

void serve_config_free(struct serve_config *c)
{
	for (size_t i = 0; i < c->nlisten; i++) {
		free(c->listen[i].host);
		free(c->listen[i].port);
	}
	free(c->listen);
	free(c->domain);
	free(c->tls_cert);
	free(c->tls_key);
	serve_users_free(c->users, c->nusers);
	free(c->nets);
	free(c->spool_dir);
	free(c->plugin);
	free(c->secret_key_file);
	sc_secret_free(c->secret_key);
	cJSON_Delete(c->settings);
	memset(c, 0, sizeof *c);
}

static const cJSON *get(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k);
}

static void set_str(char **dst, const cJSON *v)
{
	if (cJSON_IsString(v)) {
		free(*dst);
		*dst = strdup(v->valuestring);
	}
}

static void set_ms(long *dst, const cJSON *v)
{
	if (cJSON_IsNumber(v))
		*dst = (long)(v->valuedouble * 1000.0 + 0.5);
}

static void set_size(size_t *dst, const cJSON *v)
{
	if (cJSON_IsNumber(v))
		*dst = (size_t)v->valuedouble;
}

static int read_file(const char *path, char **out, struct sc_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sc_error_set(err, SC_EINPUT, "--config: cannot open %s: %s", path,
		                    strerror(errno));
	struct sc_buf b = {0};
	int rc = sc_buf_read_fd(&b, fd, 16 * 1024 * 1024);
	int e = errno;
	close(fd);
	if (rc == SC_EINPUT)
		rc = sc_error_set(err, SC_EINPUT, "--config: %s is over 16 MiB", path);
	else if (rc == SC_EIO)
		rc =
		    sc_error_set(err, SC_EINPUT, "--config: cannot read %s: %s", path, strerror(e));
	else if (rc)
		rc = sc_error_set(err, SC_ENOMEM, "out of memory");
	if (rc) {
		sc_buf_free(&b);
		return rc;
	}
	*out = sc_buf_take(&b);
	return *out ? SC_OK : sc_error_set(err, SC_ENOMEM, "out of memory");
}

static int apply_listen(struct serve_config *c, const cJSON *arr, struct sc_error *err)
{
	size_t n = (size_t)cJSON_GetArraySize(arr), i = 0;
	c->listen = calloc(n, sizeof *c->listen);
	if (!c->listen)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	const cJSON *e;
	cJSON_ArrayForEach(e, arr)
	{
		const cJSON *h = get(e, "host");
		c->listen[i].host = strdup(cJSON_IsString(h) ? h->valuestring : "127.0.0.1");
		c->listen[i].port = sc_asprintf("%d", get(e, "port")->valueint);
		c->listen[i].implicit_tls = cJSON_IsTrue(get(e, "tls"));
		c->nlisten = ++i;
	}
	return SC_OK;
}

static int apply_networks(struct serve_config *c, const cJSON *arr, struct sc_error *err)
{
	size_t n = (size_t)cJSON_GetArraySize(arr), i = 0;
	c->nets = calloc(n, sizeof *c->nets);
	if (!c->nets)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	const cJSON *e;
	cJSON_ArrayForEach(e, arr)
	{
		if (serve_net_parse(e->valuestring, &c->nets[i]))
			return sc_error_set(
			    err, SC_EINPUT,
			    "config.networks[%zu]: \"%s\" is not an address or a network; write "
			    "192.0.2.0/24, 2001:db8::/32 or 127.0.0.1",
			    i, e->valuestring);
		c->nnets = ++i;
	}
	return SC_OK;
}

int serve_config_load(struct serve_config *c, const char *path, struct sc_error *err)
{
	char *text = NULL;
	int rc = read_file(path, &text, err);
	if (rc)
		return rc;
	/* the request's own checks: a \u0000 would cut a header value or the
	 * url short, and invalid UTF-8 would reach the sinks */
	char *label = sc_asprintf("--config %s", path);
	cJSON *doc = label ? sc_json_parse(text, strlen(text), label, err) : NULL;
	free(label);
	if (!doc) {
		free(text);
		return err->code ? (int)err->code : sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	free(text);
	cJSON *schema = cJSON_Parse(schema_serve);
	rc = schema ? core_schema_check(schema, err)
	            : sc_error_set(err, SC_EINTERNAL, "the embedded serve schema is not JSON");
	if (!rc)
		rc = core_schema_validate(schema, doc, "config", NULL, NULL, err);
	cJSON_Delete(schema);
	if (!rc)
		rc = serve_config_apply(c, doc, err);
	cJSON_Delete(doc);
	return rc;
}

int serve_config_apply(struct serve_config *c, const cJSON *doc, struct sc_error *err)
{
	int rc = SC_OK;
	const cJSON *v;
	if ((v = get(doc, "listen")))
		rc = apply_listen(c, v, err);
	set_str(&c->domain, get(doc, "domain"));
	set_str(&c->spool_dir, get(doc, "spool_dir"));
	if ((v = get(doc, "tls"))) {
		set_str(&c->tls_cert, get(v, "cert_file"));
		set_str(&c->tls_key, get(v, "key_file"));
		c->require_tls = cJSON_IsTrue(get(v, "require_tls"));
	}
	if (!rc && (v = get(doc, "auth"))) {
		rc =
		    serve_users_load(get(v, "users_file")->valuestring, &c->users, &c->nusers, err);
		c->auth_required = !cJSON_IsFalse(get(v, "required"));
		c->allow_plaintext_auth = cJSON_IsTrue(get(v, "allow_plaintext_auth"));
	}
	if (!rc && (v = get(doc, "networks")))
		rc = apply_networks(c, v, err);
	if ((v = get(doc, "limits"))) {
		const cJSON *ms = get(v, "message_size");
		if (cJSON_IsNumber(ms))
			c->max_size = (unsigned long long)ms->valuedouble;
		set_size(&c->max_rcpt, get(v, "recipients"));
		set_size(&c->max_conn, get(v, "connections"));
		set_size(&c->line_length, get(v, "line_length"));
		set_size(&c->max_errors, get(v, "errors"));
		const cJSON *w = get(v, "delivery_workers");
		if (cJSON_IsNumber(w))
			c->workers = w->valueint;
	}
	if ((v = get(doc, "timeouts"))) {
		set_ms(&c->t_command, get(v, "command"));
		set_ms(&c->t_data, get(v, "data"));
		set_ms(&c->greet_delay, get(v, "greet_delay"));
		set_ms(&c->shutdown_grace, get(v, "shutdown_grace"));
	}
	if ((v = get(doc, "require_signature")))
		c->require_signature = cJSON_IsTrue(v);
	set_str(&c->secret_key_file, get(doc, "secret_key_file"));
	if ((v = get(doc, "delivery"))) {
		set_str(&c->plugin, get(v, "plugin"));
		cJSON_Delete(c->settings);
		c->settings = cJSON_Duplicate(v, 1);
		cJSON_DeleteItemFromObjectCaseSensitive(c->settings, "plugin");
	}
	return rc;
}
