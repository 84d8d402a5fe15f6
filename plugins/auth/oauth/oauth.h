/* OAuth 2.0 auth plugin: what its files share. Internal to the plugin.
 *
 *   oauth.c        descriptor, acquire/refused/release, field checks
 *   token_store.c  per-asset token file, locking, atomic replace
 *   token_http.c   form-encoded POSTs to the token endpoint
 *   authorize.c    `smtp-connector authorize`: code + PKCE, loopback
 *   util.c         growable buffers, URL/form encoding, base64url, JSON wipe
 *
 * Every char * holding a token, secret or PKCE verifier is freed with
 * sc_secret_free (wiped first); buffers that held one are wiped.
 */
#ifndef SC_OAUTH_H
#define SC_OAUTH_H

#include <smtp-connector/plugin.h>
#include <stddef.h>
#include <time.h>

/* ---------------------------------------------------------------- config */

enum oauth_grant { GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS };

/* "authorization_code" or "client_credentials": the asset's spelling,
 * also what the store and the result record. */
const char *oauth_grant_name(enum oauth_grant g);

/* The asset's OAuth fields (borrowed from the request: not owned). */
struct oauth_config {
	enum oauth_grant grant;
	const char *username;
	const char *client_id;
	const char *client_secret; /* may be NULL for public clients (PKCE) */
	const char *auth_url;
	const char *token_url;
	const char *scopes;       /* may be NULL */
	const char *redirect_uri; /* may be NULL */
};

/* Read and check the fields the grant needs (`for_authorize` adds
 * auth_url for the code grant). SC_ESKIP names every missing field. */
int oauth_config_read(struct sc_ctx *ctx, struct oauth_config *cfg, int for_authorize,
                      struct sc_error *err);

/* ---------------------------------------------------------------- tokens */

struct oauth_tokens {
	char *access_token;    /* secret */
	char *refresh_token;   /* secret; NULL when none was issued */
	char *scope;           /* as granted, may be NULL */
	long long obtained_at; /* epoch seconds */
	long long expires_at;  /* epoch seconds; 0 = unknown */
};

void oauth_tokens_clear(struct oauth_tokens *t);
/* True while the access token is usable for a whole session: it expires
 * more than a margin from now (60 s, at most half its lifetime, so that
 * short-lived tokens are still reused for a while). */
int oauth_tokens_fresh(const struct oauth_tokens *t, time_t now);

/* ---------------------------------------------------------------- store */

struct oauth_store {
	char *path;      /* <state>/oauth/<key>.json */
	char *lock_path; /* <state>/oauth/<key>.lock */
	int lock_fd;     /* -1 when not locked */
	long wait_s;     /* how long oauth_store_lock waits (from the asset timeout) */
};

/* Paths for ctx's asset; creates <state>/oauth (0700). */
int oauth_store_open(struct sc_ctx *ctx, struct oauth_store *st, struct sc_error *err);
/* Exclusive flock on the lock file, waiting at most st->wait_s seconds:
 * held around read-refresh-write so two processes never both spend (and
 * one lose) a refresh token. */
int oauth_store_lock(struct oauth_store *st, struct sc_error *err);
void oauth_store_unlock(struct oauth_store *st);
void oauth_store_close(struct oauth_store *st);
/* Load tokens issued to `cfg` (client_id and grant must match). Returns
 * SC_OK with tokens, SC_ESKIP with a reason when there are none usable
 * (absent, other client_id, other grant, corrupt: corrupt ones are
 * reported with sc_log and removed). */
int oauth_store_load(struct oauth_store *st, const struct oauth_config *cfg, struct oauth_tokens *t,
                     struct sc_error *err);
/* Replace the file atomically (temp file 0600 + fsync + rename). */
int oauth_store_save(struct oauth_store *st, const struct oauth_config *cfg,
                     const struct oauth_tokens *t, struct sc_error *err);
/* A pending authorization (state, PKCE verifier, redirect_uri), kept so
 * that a later run given the redirected URL (SMTP_CONNECTOR_REDIRECT_URL)
 * can finish it; valid for an hour, removed once used. */
int oauth_pending_save(struct oauth_store *st, const char *state, const char *verifier,
                       const char *redirect_uri, struct sc_error *err);
int oauth_pending_load(struct oauth_store *st, char **state, char **verifier, char **redirect_uri,
                       struct sc_error *err);
void oauth_pending_remove(struct oauth_store *st);

/* ---------------------------------------------------------------- HTTP */

/* The grants' token requests. Each fills `out` (keeping out's refresh
 * token when the response carries none, as Google's refreshes do). */
int oauth_fetch_client_credentials(struct sc_ctx *ctx, const struct oauth_config *cfg,
                                   struct oauth_tokens *out, struct sc_error *err);
int oauth_fetch_refresh(struct sc_ctx *ctx, const struct oauth_config *cfg, struct oauth_tokens *io,
                        struct sc_error *err);
int oauth_fetch_code(struct sc_ctx *ctx, const struct oauth_config *cfg, const char *code,
                     const char *redirect_uri, const char *verifier, struct oauth_tokens *out,
                     struct sc_error *err);

/* ---------------------------------------------------------------- authorize */

int oauth_authorize(struct sc_ctx *ctx, cJSON *data, struct sc_error *err);
/* Get a usable token for cfg (store, refresh or fetch), under the lock.
 * `force` renews even a fresh token unless another process already
 * replaced `used` (the token the server just refused). */
int oauth_get_token(struct sc_ctx *ctx, const struct oauth_config *cfg, int force, const char *used,
                    struct oauth_tokens *out, struct sc_error *err);

/* ---------------------------------------------------------------- util */

/* Growable buffers are the host API's struct sc_buf (plugin.h); the
 * plugin's own hold tokens and secrets, so each sets .wipe = 1. */
/* Append "&key=value" (no '&' first), application/x-www-form-urlencoded. */
int oauth_buf_param(struct sc_buf *b, const char *key, const char *value);

/* RFC 4648 §5 base64url without padding; allocated. */
char *oauth_b64url(const unsigned char *data, size_t n);
/* `n` random bytes as base64url (RAND_bytes); allocated, NULL on error. */
char *oauth_random_b64url(size_t n);
/* SHA-256 of `s` as base64url (PKCE S256 challenge, client_id hash). */
char *oauth_sha256_b64url(const char *s);
/* The value of `key` in a query string ("a=1&b=2"), percent- and
 * '+'-decoded; allocated, NULL when absent. */
char *oauth_query_get(const char *query, const char *key);
/* A non-empty string member of object `o`, or NULL. */
const char *oauth_json_str(const cJSON *o, const char *key);
/* Overwrite every string in a cJSON tree, then delete it. */
void oauth_json_wipe_delete(cJSON *j);
/* A copy of server-supplied text fit for a message: at most `max`
 * bytes, control characters replaced. */
char *oauth_printable(const char *s, size_t max);

#endif
