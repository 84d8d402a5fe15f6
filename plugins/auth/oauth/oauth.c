/* OAuth 2.0: bearer tokens over SASL XOAUTH2 (OAUTHBEARER when the
 * asset's auth_mechanism says so; the runtime applies it).
 *
 * Grants (asset oauth_grant_type):
 *  - authorization_code (default): tokens come from `smtp-connector
 *    authorize` (authorize.c). Actions never start an interactive flow;
 *    without a stored token OAuth is skipped (SC_ESKIP), so Automatic
 *    moves on to Basic.
 *  - client_credentials: app-only token from token_url, no user.
 * Tokens are cached in the token store and renewed before they expire;
 * on a refusal they are renewed once and the runtime retries once. */
#include "oauth.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* What users are told when even a fresh token is refused. */
#define REFUSED_HINT                                                                               \
	"a freshly obtained token was refused too: check that scopes grant SMTP sending "          \
	"(Microsoft: "                                                                             \
	"https://outlook.office.com/SMTP.Send offline_access, or "                                 \
	"https://outlook.office365.com/.default "                                                  \
	"with SMTP.SendAsApp for client_credentials; Gmail: https://mail.google.com/), that the "  \
	"user or an "                                                                              \
	"admin consented to them, that username is the mailbox the token belongs to, and that "    \
	"SMTP AUTH is "                                                                            \
	"enabled for the mailbox or tenant (Exchange Online 5.7.139)"

const char *oauth_grant_name(enum oauth_grant g)
{
	return g == GRANT_CLIENT_CREDENTIALS ? "client_credentials" : "authorization_code";
}

void oauth_tokens_clear(struct oauth_tokens *t)
{
	sc_secret_free(t->access_token);
	sc_secret_free(t->refresh_token);
	free(t->scope);
	memset(t, 0, sizeof *t);
}

int oauth_tokens_fresh(const struct oauth_tokens *t, time_t now)
{
	if (!t->access_token)
		return 0;
	if (!t->expires_at)
		return 1;
	long long lifetime = t->expires_at - t->obtained_at;
	long long margin = 60;
	if (lifetime / 2 < margin)
		margin = lifetime / 2;
	return (long long)now < t->expires_at - margin;
}

int oauth_config_read(struct sc_ctx *ctx, struct oauth_config *cfg, int for_authorize,
                      struct sc_error *err)
{
	memset(cfg, 0, sizeof *cfg);
	const char *g = sc_asset_string(ctx, "oauth_grant_type");
	cfg->grant = g && strcmp(g, "client_credentials") == 0 ? GRANT_CLIENT_CREDENTIALS
	                                                       : GRANT_AUTHORIZATION_CODE;
	cfg->username = sc_asset_string(ctx, "username");
	cfg->client_id = sc_asset_string(ctx, "client_id");
	cfg->client_secret = sc_asset_string(ctx, "client_secret");
	cfg->auth_url = sc_asset_string(ctx, "auth_url");
	cfg->token_url = sc_asset_string(ctx, "token_url");
	cfg->scopes = sc_asset_string(ctx, "scopes");
	cfg->redirect_uri = sc_asset_string(ctx, "redirect_uri");
	int cc = cfg->grant == GRANT_CLIENT_CREDENTIALS;
	struct {
		const char *name;
		int missing;
	} need[] = {
	    {"username", !cfg->username},
	    {"client_id", !cfg->client_id},
	    {"token_url", !cfg->token_url},
	    {"client_secret", cc && !cfg->client_secret},
	    {"auth_url", !cc && for_authorize && !cfg->auth_url},
	};
	struct sc_buf list = {.wipe = 1}; /* may hold a secret */
	for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
		if (!need[i].missing)
			continue;
		if ((list.len && sc_buf_str(&list, ", ")) || sc_buf_str(&list, need[i].name)) {
			sc_buf_wipe(&list);
			return sc_error_set(err, SC_ENOMEM, "out of memory");
		}
	}
	if (!list.len)
		return SC_OK;
	sc_error_set(err, SC_ESKIP, "OAuth authentication (%s grant) needs %s; missing: %s",
	             oauth_grant_name(cfg->grant),
	             cc              ? "username, client_id, client_secret and token_url"
	             : for_authorize ? "username, client_id, auth_url and token_url"
	                             : "username, client_id and token_url",
	             list.p);
	sc_buf_wipe(&list);
	return SC_ESKIP;
}

/* Renew `t` by the grant's means (refresh token or a new client
 * credentials token). */
static int renew(struct sc_ctx *ctx, const struct oauth_config *cfg, struct oauth_tokens *t,
                 struct sc_error *err)
{
	if (cfg->grant == GRANT_CLIENT_CREDENTIALS)
		return oauth_fetch_client_credentials(ctx, cfg, t, err);
	if (!t->refresh_token)
		return sc_error_set(
		    err, SC_ESKIP,
		    "the stored OAuth token has expired and no refresh token was issued "
		    "(Microsoft needs the offline_access scope; Google gets one through "
		    "`authorize`): "
		    "run `smtp-connector authorize` again");
	int rc = oauth_fetch_refresh(ctx, cfg, t, err);
	if (rc)
		sc_error_prefix(err, "refreshing the OAuth token failed");
	return rc;
}

int oauth_get_token(struct sc_ctx *ctx, const struct oauth_config *cfg, int force, const char *used,
                    struct oauth_tokens *out, struct sc_error *err)
{
	struct oauth_store st;
	int rc = oauth_store_open(ctx, &st, err);
	if (rc)
		return rc;
	rc = oauth_store_lock(&st, err);
	if (rc)
		goto out;
	struct oauth_tokens t = {0};
	struct sc_error why = SC_ERROR_INIT;
	int have = oauth_store_load(&st, cfg, &t, &why);
	if (have != SC_OK && have != SC_ESKIP) {
		rc = have;
		sc_error_set(err, why.code, "%s", why.message);
	} else if (have == SC_ESKIP && cfg->grant == GRANT_AUTHORIZATION_CODE) {
		/* Never interactive here: say how to get a token. */
		rc =
		    sc_error_set(err, SC_ESKIP,
		                 "%s; run `smtp-connector authorize < request.json` for this asset "
		                 "to store one",
		                 why.message);
	} else {
		/* Another process may have renewed the token since the server
		 * refused ours: then the stored one is new and good to try. */
		int replaced = used && t.access_token && strcmp(used, t.access_token) != 0;
		if (have == SC_ESKIP || (force && !replaced) ||
		    !oauth_tokens_fresh(&t, time(NULL))) {
			sc_log(SC_LOG_DEBUG, "oauth: %s the access token",
			       have == SC_ESKIP ? "requesting" : "renewing");
			rc = renew(ctx, cfg, &t, err);
			if (!rc)
				rc = oauth_store_save(&st, cfg, &t, err);
		} else {
			sc_log(SC_LOG_DEBUG,
			       "oauth: using the stored access token (expires in %lld s)",
			       t.expires_at ? t.expires_at - (long long)time(NULL) : -1LL);
		}
		if (!rc) {
			*out = t;
			memset(&t, 0, sizeof t);
		}
	}
	sc_error_clear(&why);
	oauth_tokens_clear(&t);
out:
	oauth_store_close(&st);
	return rc;
}

/* Per-session state: the token in use, to tell on a refusal whether
 * another process has replaced it meanwhile. */
struct oauth_priv {
	char *used;
};

static int set_creds(struct oauth_config *cfg, struct oauth_tokens *t, struct sc_credentials *creds,
                     struct oauth_priv *p, struct sc_error *err)
{
	sc_secret_free(p->used);
	p->used = strdup(t->access_token);
	if (!p->used || sc_credentials_bearer(creds, cfg->username, t->access_token) ||
	    sc_credentials_mechanism(creds, "XOAUTH2"))
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	return SC_OK;
}

static int oauth_acquire(struct sc_ctx *ctx, struct sc_credentials *creds, void **priv,
                         struct sc_error *err)
{
	struct oauth_config cfg;
	int rc = oauth_config_read(ctx, &cfg, 0, err);
	if (rc)
		return rc;
	struct oauth_priv *p = *priv ? *priv : calloc(1, sizeof *p);
	if (!p)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	*priv = p;
	struct oauth_tokens t = {0};
	rc = oauth_get_token(ctx, &cfg, 0, NULL, &t, err);
	if (!rc)
		rc = set_creds(&cfg, &t, creds, p, err);
	oauth_tokens_clear(&t);
	/* An unusable token store fails OAuth only: Automatic goes on. */
	if (rc == SC_EIO)
		err->code = rc = SC_EAUTH;
	return rc;
}

/* XOAUTH2 errors come as "334 <base64 JSON>" (Google's and Microsoft's
 * {"status":"401","schemes":"bearer","scope":...}): decoded, it says
 * what was wrong, where the base64 says nothing to a reader. */
static char *decoded_challenge(const char *reply)
{
	if (strncmp(reply, "334 ", 4) != 0)
		return NULL;
	const char *b64 = reply + 4;
	size_t n = strcspn(b64, "\r\n");
	if (n == 0 || n % 4 || n > 4096)
		return NULL;
	unsigned char *raw = malloc(n / 4 * 3 + 1);
	if (!raw)
		return NULL;
	int len = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)n);
	char *out = NULL;
	if (len > 0) {
		while (len > 0 && raw[len - 1] == '\0') /* EVP_DecodeBlock counts padding */
			len--;
		raw[len] = '\0';
		out = oauth_printable((const char *)raw, 300);
	}
	free(raw);
	return out;
}

static int oauth_refused(struct sc_ctx *ctx, const char *reply, struct sc_credentials *creds,
                         void **priv, struct sc_error *err)
{
	struct oauth_priv *p = *priv;
	struct oauth_config cfg;
	if (!p || oauth_config_read(ctx, &cfg, 0, err))
		return SC_EAUTH;
	/* A new token cannot switch SMTP AUTH on for a tenant. */
	if (strstr(reply, "5.7.139") || strstr(reply, "SmtpClientAuthentication"))
		return sc_error_set(
		    err, SC_EAUTH,
		    "not retrying with a new token (the refusal is not about the token)");
	struct oauth_tokens t = {0};
	int rc = oauth_get_token(ctx, &cfg, 1, p->used, &t, err);
	if (!rc)
		rc = set_creds(&cfg, &t, creds, p, err);
	oauth_tokens_clear(&t);
	if (rc)
		return rc;
	/* SC_OK with a message: the hint the runtime adds if the retry is
	 * refused as well (plugin.h). */
	char *said = decoded_challenge(reply);
	sc_error_set(err, SC_EAUTH, "%s%s%s%s", said ? "the server's XOAUTH2 error was " : "",
	             said ? said : "", said ? "; " : "", REFUSED_HINT);
	free(said);
	return SC_OK;
}

static void oauth_release(void *priv)
{
	struct oauth_priv *p = priv;
	if (!p)
		return;
	sc_secret_free(p->used);
	free(p);
}

static const struct sc_auth_ops oauth_ops = {
    .acquire = oauth_acquire,
    .refused = oauth_refused,
    .release = oauth_release,
    .authorize = oauth_authorize,
};

const struct sc_plugin sc_plugin = {
    .abi = SC_PLUGIN_ABI,
    .kind = SC_PLUGIN_AUTH,
    .name = "OAuth",
    .identifier = "oauth",
    .version = "1.0",
    .description =
        "OAuth 2.0 bearer tokens over SASL XOAUTH2 (or OAUTHBEARER): authorization code with "
        "PKCE via `smtp-connector authorize`, or client credentials; tokens cached and refreshed",
    .schema = NULL,
    .auth = &oauth_ops,
};
