/* The SMTP session over libcurl (internal side of message.h's API). */
#ifndef SC_SESSION_H
#define SC_SESSION_H

#include "core.h"
#include "ctx.h"
#include "transcript.h"
#include <curl/curl.h>

struct sc_credentials {
	char *username;
	char *password;
	char *bearer;
	char *mechanism;
};

struct sc_session {
	struct sc_session *next;
	char *key; /* SHA-256 of asset_id + asset: one session per asset */
	CURL *curl;
	char errbuf[CURL_ERROR_SIZE];
	struct core_transcript tr;
	int open;          /* connected and authenticated */
	double idle_since; /* monotonic end of the last transfer that kept the connection, or 0 */
	int kept_after_message; /* ... and that transfer sent a message (not the auth NOOP) */
	char *host;             /* for messages */
	long port;
	char *ssl_config;
	int allow_smtputf8;
	long timeout;
	const struct core_plugin *auth;
	void *auth_priv;
	cJSON *attempts;          /* [{method, outcome, reason}] */
	double throttle;          /* throttle_period, seconds */
	double throttle_max_wait; /* longest wait; 0 in drop mode, <0 unbounded */
	char *throttle_path;      /* its state file, when throttle > 0 */
	char *secret_key;         /* secret_key for the signature header */
};

/* Find or create the (unconnected) session for ctx's asset. */
struct sc_session *core_session_get(struct sc_ctx *ctx, struct sc_error *err);
/* Add "auth" and "auth_attempts" to a result's data. */
void core_session_report(const struct sc_session *s, struct sc_result *r);
/* QUIT and close every session (at exit). */
void core_sessions_close(struct core_runtime *rt);
/* One curl_easy_perform with a fresh transcript (and the QUIT after a
 * failure bounded, transcript.h). */
CURLcode core_session_transfer(struct sc_session *s);
/* Apply a curl result to err with stage, server reply and hint (failure.c). */
int core_session_fail(struct sc_session *s, CURLcode rc, struct sc_error *err);

/* auth.c */
void core_credentials_clear(struct sc_credentials *c);
int core_session_authenticate(struct sc_ctx *ctx, struct sc_session *s, struct sc_error *err);
int core_session_probe(struct sc_session *s, const struct sc_credentials *c,
                       const char *forced_mech, struct sc_error *err);
/* `smtp-connector authorize` (runtime.c calls it). */
struct core_report;
int core_authorize(struct core_runtime *rt, const cJSON *req, struct core_report *rep,
                   struct sc_error *err);

/* throttle.c */
char *core_throttle_path(struct sc_ctx *ctx, struct sc_error *err);
/* Wait for this asset's next send slot and take it. A wait longer than
 * max_wait (max_wait >= 0; 0 is throttle_mode drop) takes nothing and is
 * SC_ETHROTTLED with the time left; SC_EIO for the state file. */
int core_throttle_wait(const char *path, double period, double max_wait, struct sc_error *err);

/* message.c: what session.c needs to send a message. */
int core_message_apply(struct sc_message *m, CURL *curl, struct sc_error *err);
void core_message_detach(struct sc_message *m, CURL *curl);
int core_message_is_8bit(const struct sc_message *m);
/* The Message-ID in use (a raw message's own, or the one added); may be NULL. */
const char *core_message_id(struct sc_message *m);
/* Add the X-SMTP-Connector-Signature header (HMAC-SHA256, see message.c). */
int core_message_sign(struct sc_message *m, const char *key, struct sc_error *err);
/* After a transfer that succeeded: a signed MIME message must have been
 * uploaded exactly as the signing pass read it (same octet count). SC_OK,
 * or SC_EINTERNAL saying what was sent. */
int core_message_check_sent(const struct sc_message *m, CURL *curl, struct sc_error *err);

#endif
