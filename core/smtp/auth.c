/* Authentication: which auth plugin to try, in what order, and what
 * happened. libcurl authenticates at the start of a transfer, so each
 * attempt is the caller's first real transfer on a fresh connection: the
 * message itself (sc_send), or a NOOP when there is none (test
 * connectivity's probe). A refusal at AUTH stops that transfer before MAIL
 * FROM, so the next method can send the same message again: nothing was
 * half-sent. A refusal is retried at most once (after the plugin renewed
 * its credentials): the SOAR app's unbounded refresh loop is what we
 * avoid. */
#include "session.h"
#include "result.h"
#include "schema.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int set_secret(char **dst, const char *src)
{
	sc_secret_free(*dst);
	*dst = NULL;
	if (src && !(*dst = strdup(src)))
		return SC_ENOMEM;
	return SC_OK;
}

int sc_credentials_login(struct sc_credentials *c, const char *username, const char *password)
{
	int rc = set_secret(&c->username, username);
	return rc ? rc : set_secret(&c->password, password);
}

int sc_credentials_bearer(struct sc_credentials *c, const char *username, const char *token)
{
	int rc = set_secret(&c->username, username);
	return rc ? rc : set_secret(&c->bearer, token);
}

int sc_credentials_mechanism(struct sc_credentials *c, const char *mech)
{
	return set_secret(&c->mechanism, mech);
}

void core_credentials_clear(struct sc_credentials *c)
{
	sc_secret_free(c->username);
	sc_secret_free(c->password);
	sc_secret_free(c->bearer);
	sc_secret_free(c->mechanism);
	memset(c, 0, sizeof *c);
}

static void record(struct sc_session *s, const char *method, const char *outcome,
                   const char *reason)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "method", method);
	cJSON_AddStringToObject(o, "outcome", outcome);
	if (reason)
		cJSON_AddStringToObject(o, "reason", reason);
	cJSON_AddItemToArray(s->attempts, o);
	sc_log(SC_LOG_INFO, "auth %s: %s%s%s", method, outcome, reason ? ": " : "",
	       reason ? reason : "");
}

/* Hand credentials to libcurl (it copies them); every later connection
 * of the session authenticates with them too. */
static void set_credentials(struct sc_session *s, const struct sc_credentials *c,
                            const char *forced_mech)
{
	CURL *h = s->curl;
	const char *mech = forced_mech ? forced_mech : c->mechanism;
	char *opts = mech ? sc_asprintf("AUTH=%s", mech) : NULL;
	curl_easy_setopt(h, CURLOPT_USERNAME, c->username);
	curl_easy_setopt(h, CURLOPT_PASSWORD, c->bearer ? NULL : c->password);
	curl_easy_setopt(h, CURLOPT_XOAUTH2_BEARER, c->bearer);
	/* Never CURLOPT_HTTPAUTH: with it, libcurl < 8.6 adds AUTH= to its
	 * own choice instead of forcing it, and picks OAUTHBEARER on Gmail. */
	curl_easy_setopt(h, CURLOPT_LOGIN_OPTIONS, opts);
	free(opts);
	/* session.c's pre-request check refuses to go on past the connect
	 * phase when these credentials were not used (no AUTH offered). */
	s->want_auth = c->username != NULL;
}

/* One attempt: credentials, a fresh connection, the caller's transfer. */
static int attempt(struct sc_session *s, const struct sc_credentials *c, const char *forced_mech,
                   const struct core_auth_attempt *how, struct sc_error *err)
{
	set_credentials(s, c, forced_mech);
	curl_easy_setopt(s->curl, CURLOPT_FRESH_CONNECT, 1L);
	int rc = how->run(s, how->arg, err);
	curl_easy_setopt(s->curl, CURLOPT_FRESH_CONNECT, 0L);
	return rc;
}

/* The probe: NOOP, for an action with no message to send. */
static int probe(struct sc_session *s, void *arg, struct sc_error *err)
{
	(void)arg;
	CURL *h = s->curl;
	curl_easy_setopt(h, CURLOPT_MAIL_RCPT, NULL);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "NOOP");
	CURLcode rc = core_session_transfer(s);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
	return rc == CURLE_OK ? SC_OK : core_session_transfer_fail(s, rc, err);
}

const struct core_auth_attempt core_auth_probe = {probe, NULL};

/* Whether an attempt got past authentication: the server took the
 * credentials (or needed none) and the transfer went on to its command. */
static int authenticated(const struct sc_session *s, int rc)
{
	return rc == SC_OK || s->past_auth;
}

/* `refused_by` names a method whose credentials the server refused earlier
 * in this Automatic run, or is NULL. */
static int try_method(struct sc_ctx *ctx, struct sc_session *s, const struct core_plugin *p,
                      const char *refused_by, const struct core_auth_attempt *how, void **priv,
                      struct sc_error *err)
{
	const struct sc_auth_ops *ops = p->desc->auth;
	struct sc_credentials c;
	memset(&c, 0, sizeof c);
	int rc = ops->acquire(ctx, &c, priv, err);
	if (rc == SC_OK && refused_by && !c.username) {
		/* The asset means to log in and the server said no: going on
		 * unauthenticated would report success and fail at MAIL FROM,
		 * hiding the real error. */
		rc = sc_error_set(err, SC_ESKIP,
		                  "not tried: the server refused the %s credentials; "
		                  "fix them instead of sending unauthenticated",
		                  refused_by);
	} else if (rc == SC_OK) {
		rc = attempt(s, &c, ctx->cfg.auth_mechanism, how, err);
		if (rc == SC_EAUTH && !s->past_auth && ops->refused && s->tr.auth_sent) {
			/* as fail_auth: an XOAUTH2 error ends at its "334 <challenge>" */
			const char *reply = s->tr.auth_reply   ? s->tr.auth_reply
			                    : s->tr.last_reply ? s->tr.last_reply
			                                       : "";
			struct sc_error e2 = SC_ERROR_INIT;
			if (ops->refused(ctx, reply, &c, priv, &e2) == SC_OK) {
				sc_log(
				    SC_LOG_INFO,
				    "auth %s: refused (%s); retrying once with renewed credentials",
				    p->desc->name, reply);
				sc_error_clear(err);
				rc = attempt(s, &c, ctx->cfg.auth_mechanism, how, err);
				/* refused may leave a hint for a second refusal (plugin.h). */
				if (rc == SC_EAUTH && e2.message && err->message) {
					char *m = sc_asprintf("%s; %s", err->message, e2.message);
					if (m)
						sc_error_set(err, SC_EAUTH, "%s", m);
					free(m);
				}
			} else if (e2.message) {
				sc_error_prefix(err, "%s", e2.message);
			}
			sc_error_clear(&e2);
		}
	}
	core_credentials_clear(&c);
	return rc;
}

static cJSON *auth_order(const struct sc_ctx *ctx)
{
	const char *t = ctx->cfg.auth_type;
	const cJSON *order = ctx->cfg.auth_order;
	if (t && strcasecmp(t, "Automatic")) {
		cJSON *a = cJSON_CreateArray();
		cJSON_AddItemToArray(a, cJSON_CreateString(t));
		return a;
	}
	if (order)
		return cJSON_Duplicate(order, 1);
	const char *def[] = {"OAuth", "Basic", "Passwordless"};
	return cJSON_CreateStringArray(def, 3);
}

int core_session_authenticate(struct sc_ctx *ctx, struct sc_session *s,
                              const struct core_auth_attempt *how, struct sc_error *err)
{
	const char *t = ctx->cfg.auth_type;
	int explicit = t && strcasecmp(t, "Automatic");
	cJSON *order = auth_order(ctx);
	cJSON_Delete(s->attempts);
	s->attempts = cJSON_CreateArray();
	int rc = SC_EAUTH;
	const char *refused_by = NULL;
	struct sc_error first_refusal = SC_ERROR_INIT;
	const cJSON *m;
	cJSON_ArrayForEach(m, order)
	{
		const struct core_plugin *p =
		    core_loader_find_auth(ctx->rt->loader, m->valuestring);
		s->tr.auth_sent = 0;
		struct sc_error e = SC_ERROR_INIT;
		if (!p) {
			record(s, m->valuestring, "skipped", "no such auth plugin is installed");
			continue;
		}
		void *priv = NULL;
		s->past_auth = 0;
		rc = try_method(ctx, s, p, refused_by, how, &priv, &e);
		if (authenticated(s, rc)) {
			/* The method worked; a failure after AUTH (a refused
			 * recipient, a broken-off DATA) is the message's own
			 * outcome, reported as it is. */
			record(s, p->desc->name, "success", NULL);
			s->open = 1;
			s->auth = p;
			s->auth_priv = priv;
			if (rc) {
				sc_error_set(err, rc, "%s", e.message ? e.message : "failed");
				sc_error_clear(&e);
			}
			break;
		}
		record(s, p->desc->name, rc == SC_ESKIP ? "skipped" : "failed", e.message);
		if (rc == SC_EAUTH && s->tr.auth_sent && !refused_by) {
			refused_by = p->desc->name;
			sc_error_set(&first_refusal, SC_EAUTH, "%s",
			             e.message ? e.message : "refused");
		}
		if (p->desc->auth->release)
			p->desc->auth->release(priv);
		/* Another method cannot help when the connection itself fails. */
		int fatal = rc != SC_ESKIP && rc != SC_EAUTH;
		if (explicit || fatal) {
			if (rc == SC_ESKIP)
				sc_error_set(err, SC_EAUTH, "%s authentication cannot run: %s",
				             p->desc->name, e.message ? e.message : "");
			else {
				sc_error_set(err, rc, "%s", e.message ? e.message : "failed");
			}
			sc_error_clear(&e);
			sc_error_clear(&first_refusal);
			cJSON_Delete(order);
			return err->code;
		}
		sc_error_clear(&e);
	}
	cJSON_Delete(order);
	if (s->open) {
		sc_error_clear(&first_refusal);
		return rc;
	}
	char *list = NULL;
	cJSON_ArrayForEach(m, s->attempts)
	{
		const cJSON *r = cJSON_GetObjectItemCaseSensitive(m, "reason");
		char *n = sc_asprintf("%s%s%s %s%s%s", list ? list : "", list ? "; " : "",
		                      cJSON_GetObjectItemCaseSensitive(m, "method")->valuestring,
		                      cJSON_GetObjectItemCaseSensitive(m, "outcome")->valuestring,
		                      r ? ": " : "", r ? r->valuestring : "");
		free(list);
		list = n;
	}
	if (first_refusal.message)
		sc_error_set(err, SC_EAUTH, "%s (methods tried: %s)", first_refusal.message,
		             list ? list : "");
	else
		sc_error_set(err, SC_EAUTH, "Authentication failed with every method tried (%s)",
		             list ? list : "none configured");
	sc_error_clear(&first_refusal);
	free(list);
	return SC_EAUTH;
}

/* `smtp-connector authorize`: the interactive set-up of the auth plugin
 * named by auth_type (OAuth when Automatic). */
int core_authorize(struct core_runtime *rt, const cJSON *req, struct core_report *rep,
                   struct sc_error *err)
{
	struct sc_ctx ctx;
	int rc = core_loader_auth_all(rt->loader, err);
	if (rc)
		return core_exit_status(rc);
	core_ctx_init(&ctx, rt, req);
	const char *t = ctx.cfg.auth_type;
	const char *name = t && strcasecmp(t, "Automatic") ? t : "OAuth";
	const struct core_plugin *p = core_loader_find_auth(rt->loader, name);
	int status;
	if (!ctx.asset || !cJSON_IsObject(ctx.asset)) {
		sc_error_set(err, SC_EINPUT, "request: \"asset\" is required for authorize");
		status = core_exit_status(SC_EINPUT);
	} else if (!p || !p->desc->auth->authorize) {
		sc_error_set(err, SC_EINPUT,
		             "asset.auth_type: \"%s\" has no interactive authorization; "
		             "authorize is for OAuth",
		             name);
		status = core_exit_status(SC_EINPUT);
	} else {
		struct sc_result *r = core_report_add(rep, NULL);
		cJSON_DeleteItemFromObjectCaseSensitive(r->obj, "parameter");
		rc = p->desc->auth->authorize(&ctx, sc_result_data(r), err);
		if (rc == SC_OK)
			sc_result_message(r, "Authorization complete: tokens stored for asset %s",
			                  sc_asset_key(&ctx));
		core_report_close(rep, r, rc, err);
		sc_error_clear(err);
		status = core_exit_status(rc);
	}
	core_ctx_release(&ctx);
	return status;
}
