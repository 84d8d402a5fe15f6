/* Token endpoint requests (RFC 6749 §4.1.3, §4.4, §6): form-encoded POST
 * with libcurl under the asset's TLS and timeout rules (sc_http_apply_policy:
 * verification, ca_file, no redirects, no .netrc), to an https token_url
 * (http only to a loopback host). The client secret goes
 * in the body (client_secret_post), as the SOAR app sends it and as Google
 * and Microsoft accept.
 *
 * Every failure message names the endpoint and says what to do; none
 * carries the form (it holds the secret) or a token. */
#include "oauth.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* A token response is a few KiB; anything past this is not one. */
#define MAX_RESPONSE (1024 * 1024)

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct sc_buf *b = arg;
	size_t n = size * nmemb;
	if (b->len + n > MAX_RESPONSE || sc_buf_add(b, data, n))
		return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
	return n;
}

/* `{"error": ...}` from the endpoint, as a message that says what to do. */
static int endpoint_error(const char *url, long status, const cJSON *j, int grant_refresh,
                          struct sc_error *err)
{
	const char *code = oauth_json_str(j, "error");
	const char *d = oauth_json_str(j, "error_description");
	char *desc = d ? oauth_printable(d, 300) : NULL;
	char *shown = oauth_printable(code, 100); /* the server's text, unbounded */
	const char *todo;
	if (strcmp(code, "invalid_client") == 0 || strcmp(code, "unauthorized_client") == 0)
		todo = "check client_id and client_secret (and that the client may use this grant)";
	else if (strcmp(code, "invalid_grant") == 0)
		todo = grant_refresh ? "the refresh token expired or was revoked: run "
		                       "`smtp-connector authorize` again"
		                     : "the code or credentials were not accepted: run "
		                       "`smtp-connector authorize` again";
	else if (strcmp(code, "invalid_scope") == 0)
		todo = "check scopes";
	else
		todo = "check the OAuth settings of the asset";
	sc_error_set(err, SC_EAUTH, "token endpoint %s refused the request (HTTP %ld, %s%s%s): %s",
	             url, status, shown ? shown : "error", desc ? ": " : "", desc ? desc : "",
	             todo);
	free(shown);
	free(desc);
	return SC_EAUTH;
}

/* Fill `out` from a successful token response. */
static int parse_tokens(const char *url, const cJSON *j, struct oauth_tokens *out,
                        struct sc_error *err)
{
	const char *at = oauth_json_str(j, "access_token");
	if (!at)
		return sc_error_set(err, SC_EAUTH,
		                    "token endpoint %s answered without an access_token", url);
	const char *tt = oauth_json_str(j, "token_type");
	if (tt && strcasecmp(tt, "bearer") != 0) {
		char *shown = oauth_printable(tt, 40);
		sc_error_set(err, SC_EAUTH,
		             "token endpoint %s issued a \"%s\" token; SMTP needs a bearer token",
		             url, shown ? shown : "non-bearer");
		free(shown);
		return SC_EAUTH;
	}
	const cJSON *ei = cJSON_GetObjectItemCaseSensitive(j, "expires_in");
	/* Some servers send expires_in as a string. Without it, assume an
	 * hour (the usual lifetime) so that refresh still happens early;
	 * a refusal renews it anyway. */
	long long lifetime = cJSON_IsNumber(ei)   ? (long long)ei->valuedouble
	                     : cJSON_IsString(ei) ? atoll(ei->valuestring)
	                                          : 3600;
	if (lifetime < 0)
		lifetime = 0;
	char *access = strdup(at);
	const char *rt = oauth_json_str(j, "refresh_token");
	char *refresh = rt ? strdup(rt) : NULL;
	const char *sc = oauth_json_str(j, "scope");
	char *scope = sc ? strdup(sc) : NULL;
	if (!access || (rt && !refresh) || (sc && !scope)) {
		sc_secret_free(access);
		sc_secret_free(refresh);
		free(scope);
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	sc_secret_free(out->access_token);
	out->access_token = access;
	if (refresh) { /* else keep the old one: Google's refreshes carry none */
		sc_secret_free(out->refresh_token);
		out->refresh_token = refresh;
	}
	if (scope) {
		free(out->scope);
		out->scope = scope;
	}
	out->obtained_at = (long long)time(NULL);
	out->expires_at = out->obtained_at + lifetime;
	return SC_OK;
}

/* The form carries the client secret, a refresh token or a code: only
 * over https, or plain http to this host (a local proxy, a test server).
 * Checked before anything is sent. */
static int check_token_url(const char *url, struct sc_error *err)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	int ok = u && !curl_url_set(u, CURLUPART_URL, url, 0) &&
	         !curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) &&
	         !curl_url_get(u, CURLUPART_HOST, &host, 0);
	int rc = SC_OK;
	if (!ok)
		rc = sc_error_set(
		    err, SC_EAUTH,
		    "token_url %s is not a URL: give the token endpoint's https:// address", url);
	else if (strcmp(scheme, "https") != 0 &&
	         !(strcmp(scheme, "http") == 0 &&
	           (strcmp(host, "127.0.0.1") == 0 || strcasecmp(host, "localhost") == 0 ||
	            strcmp(host, "[::1]") == 0)))
		rc = sc_error_set(
		    err, SC_EAUTH,
		    "token_url %s is not https: the client secret and tokens would cross the "
		    "network in clear (plain http only to 127.0.0.1, localhost or [::1])",
		    url);
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return rc;
}

/* POST `form` to cfg->token_url and parse the answer into `out`. */
static int token_post(struct sc_ctx *ctx, const struct oauth_config *cfg, struct sc_buf *form,
                      int grant_refresh, struct oauth_tokens *out, struct sc_error *err)
{
	const char *url = cfg->token_url;
	struct sc_buf body = {.wipe = 1}; /* may hold a secret */
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdr = NULL;
	cJSON *j = NULL;
	int rc = check_token_url(url, err);
	if (rc)
		return rc;
	CURL *c = curl_easy_init();
	if (!c)
		return sc_error_set(err, SC_ENOMEM,
		                    "cannot create an HTTP handle for the token endpoint");
	rc = sc_http_apply_policy(ctx, c, err);
	if (rc)
		goto out;
	hdr = curl_slist_append(hdr, "Accept: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "smtp-connector-oauth");
	/* POSTFIELDS, not COPYPOSTFIELDS: the form holds the secret and we
	 * wipe our one copy after the transfer. */
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, form->p);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)form->len);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	sc_log(SC_LOG_DEBUG, "oauth: POST %s (%s grant)", url,
	       grant_refresh ? "refresh_token" : oauth_grant_name(cfg->grant));
	CURLcode cc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (cc == CURLE_WRITE_ERROR && body.len >= MAX_RESPONSE) {
		rc = sc_error_set(
		    err, SC_EAUTH,
		    "token endpoint %s sent more than %d bytes; that is not a token response", url,
		    MAX_RESPONSE);
		goto out;
	}
	if (cc != CURLE_OK) {
		int tls = cc == CURLE_SSL_CONNECT_ERROR || cc == CURLE_PEER_FAILED_VERIFICATION ||
		          cc == CURLE_SSL_CACERT_BADFILE;
		/* SC_EAUTH, not ECONNECT: the SMTP server may be fine, and
		 * Automatic should go on to the next method. */
		rc = sc_error_set(
		    err, SC_EAUTH, "token endpoint %s could not be reached: %s%s", url,
		    errbuf[0] ? errbuf : curl_easy_strerror(cc),
		    tls ? " (check ca_file, or verify_server_cert on a test system only)"
		        : " (check token_url and that this host may connect to it)");
		goto out;
	}
	j = body.p ? cJSON_ParseWithLength(body.p, body.len) : NULL;
	if (j && cJSON_IsObject(j) && oauth_json_str(j, "error")) {
		rc = endpoint_error(url, status, j, grant_refresh, err);
	} else if (status >= 500) {
		rc = sc_error_set(
		    err, SC_EAUTH,
		    "token endpoint %s failed with HTTP %ld (a server error): try again later", url,
		    status);
	} else if (!j || !cJSON_IsObject(j)) {
		char *ctype = NULL;
		curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ctype);
		rc = sc_error_set(
		    err, SC_EAUTH,
		    "token endpoint %s answered HTTP %ld with a body that is not JSON "
		    "(Content-Type %s): check token_url (it must be the token endpoint, not the "
		    "authorization page)",
		    url, status, ctype ? ctype : "none");
	} else if (status != 200) {
		rc = sc_error_set(err, SC_EAUTH,
		                  "token endpoint %s answered HTTP %ld without an error code", url,
		                  status);
	} else {
		rc = parse_tokens(url, j, out, err);
	}
out:
	oauth_json_wipe_delete(j);
	sc_buf_wipe(&body);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	return rc;
}

static int client_params(struct sc_buf *f, const struct oauth_config *cfg)
{
	int rc = oauth_buf_param(f, "client_id", cfg->client_id);
	if (!rc && cfg->client_secret)
		rc = oauth_buf_param(f, "client_secret", cfg->client_secret);
	return rc;
}

static int post(struct sc_ctx *ctx, const struct oauth_config *cfg, struct sc_buf *f, int rc,
                int refresh, struct oauth_tokens *out, struct sc_error *err)
{
	if (!rc)
		rc = client_params(f, cfg);
	if (rc)
		rc = sc_error_set(err, SC_ENOMEM, "out of memory");
	else
		rc = token_post(ctx, cfg, f, refresh, out, err);
	sc_buf_wipe(f);
	return rc;
}

int oauth_fetch_client_credentials(struct sc_ctx *ctx, const struct oauth_config *cfg,
                                   struct oauth_tokens *out, struct sc_error *err)
{
	struct sc_buf f = {.wipe = 1}; /* may hold a secret */
	int rc = oauth_buf_param(&f, "grant_type", "client_credentials");
	if (!rc && cfg->scopes)
		rc = oauth_buf_param(&f, "scope", cfg->scopes);
	return post(ctx, cfg, &f, rc, 0, out, err);
}

int oauth_fetch_refresh(struct sc_ctx *ctx, const struct oauth_config *cfg, struct oauth_tokens *io,
                        struct sc_error *err)
{
	struct sc_buf f = {.wipe = 1}; /* may hold a secret */
	int rc = oauth_buf_param(&f, "grant_type", "refresh_token");
	if (!rc)
		rc = oauth_buf_param(&f, "refresh_token", io->refresh_token);
	/* Microsoft's v2 endpoint may require scope on refresh (AADSTS900144). */
	if (!rc && cfg->scopes)
		rc = oauth_buf_param(&f, "scope", cfg->scopes);
	return post(ctx, cfg, &f, rc, 1, io, err);
}

int oauth_fetch_code(struct sc_ctx *ctx, const struct oauth_config *cfg, const char *code,
                     const char *redirect_uri, const char *verifier, struct oauth_tokens *out,
                     struct sc_error *err)
{
	struct sc_buf f = {.wipe = 1}; /* may hold a secret */
	int rc = oauth_buf_param(&f, "grant_type", "authorization_code");
	if (!rc)
		rc = oauth_buf_param(&f, "code", code);
	if (!rc)
		rc = oauth_buf_param(&f, "redirect_uri", redirect_uri);
	if (!rc)
		rc = oauth_buf_param(&f, "code_verifier", verifier);
	return post(ctx, cfg, &f, rc, 0, out, err);
}
