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
	/* The pre-request check (session.c's prereq(), between the connect
	 * phase and the first command of each transfer). */
	int want_auth;                       /* credentials with a user name are set */
	int past_auth;                       /* this transfer got past the connect phase */
	const struct sc_envelope *check_env; /* checked against EHLO; NULL: none */
	struct sc_error prereq_err;          /* why the check stopped the transfer */
	/* Parallel sessions (asset max_connections > 1, parallel.c). The
	 * asset's session (in rt->sessions) owns the pool. */
	struct core_pool *pool;     /* NULL: one session */
	struct core_worker *worker; /* its thread, from when it joined the pool */
	struct core_job *job;       /* the message its thread is sending (pool's mutex) */
	int busy;                   /* has a job (main thread's view) */
	int retired;                /* the server refused this extra session */
	int delivered;              /* a message went out on it (send_run) */
	CURLcode last_rc;           /* of the last transfer */
};

/* libcurl 7.88 refuses more than 300 KiB of replies in one transfer
 * ("Too large response headers"): about 4,800 RCPT replies. RFC 5321
 * limits a reply line to 512 octets, so 500 recipients stay inside it
 * whatever the server says; a longer list goes as several transactions of
 * the same message on the same connection. */
#define RCPT_PER_TRANSACTION 500

/* What an authentication attempt runs once the credentials are set and a
 * fresh connection is asked for: the caller's first transfer (the
 * message, or core_auth_probe's NOOP). SC_OK, or the code of its
 * failure; session->past_auth says whether it got past AUTH. */
struct core_auth_attempt {
	int (*run)(struct sc_session *s, void *arg, struct sc_error *err);
	void *arg;
};
extern const struct core_auth_attempt core_auth_probe;

void core_session_free(struct sc_session *s);
/* A parallel session of `p`'s asset: a duplicate of `proto` (p's handle
 * copied while it carried no message: curl_easy_duphandle copies a MIME
 * tree with our callbacks' data, which would then be freed twice), so the
 * same options and credentials, and its own transcript. */
struct sc_session *core_session_clone(struct sc_session *p, CURL *proto, struct sc_error *err);
/* Checks, signature and throttle slot of a message before it is sent. */
int core_send_prepare(struct sc_session *s, const struct sc_envelope *env, struct sc_message *m,
                      struct sc_error *err);
/* After one transaction's transfer (cr): the RCPT outcomes into out,
 * recipients deferred by 452 into again[]; SC_OK when it delivered,
 * SC_ESEND with *all_refused when every RCPT was refused, else the
 * failure (err). */
int core_transaction_outcome(struct sc_session *s, CURLcode cr, const struct sc_envelope *env,
                             const size_t *idx, size_t n, int *all_refused, struct sc_delivery *out,
                             size_t *again, size_t *nagain, struct sc_error *err);
/* The transfer failed (not by a timeout, not stopped by our own check)
 * before MAIL FROM was accepted: the server took nothing of the message,
 * so it may go again on another connection (perform's reconnect, a
 * parallel session the server refused). */
int core_failed_before_mail(const struct sc_session *s, CURLcode rc);
struct curl_slist *core_rcpt_list(const struct sc_envelope *env, const size_t *idx, size_t n);
/* A transaction broke off after an earlier one delivered: the recipients
 * left are listed as not sent (err cleared). */
int core_not_sent(const struct sc_envelope *env, const size_t *idx, size_t n,
                  struct sc_delivery *out, struct sc_error *err);
/* SC_ESEND "every recipient was refused", with their replies. */
int core_all_refused(const struct sc_delivery *out, struct sc_error *err);

/* The transactions of one message, checked by core_send_prepare already
 * (a parallel session's thread runs this). */
int core_send_run(struct sc_session *s, const struct sc_envelope *env, struct sc_message *m,
                  struct sc_delivery *out, struct sc_error *err);

/* The end of every send, serial (sc_send, sc_send_async) or parallel
 * (parallel.c): the delivery fields, message_id, or the failure prefixed
 * "Email send failed". One function, so that a message sent on a parallel
 * session gets the result it would have got alone. */
void core_send_report(const struct sc_session *s, struct sc_message *m, const struct sc_delivery *d,
                      int rc, struct sc_result *r, struct sc_error *err);

/* parallel.c: up to max_connections sessions of one asset, each on its
 * own thread. */
struct core_report;
int core_pool_new(struct core_runtime *rt, struct sc_session *s, long max, struct sc_error *err);
/* Stop the pool's threads, free its clones (every job is done). */
void core_pool_free(struct core_pool *pool);
/* Wait until no message of the pool is in flight (the primary may then be
 * used synchronously). */
void core_pool_quiesce(struct core_pool *pool);
/* Queue `m` for `env` on a free session (SC_PENDING), waiting until one
 * is free; result rep->results[idx] (of `action`, whose name outlives
 * the job) is completed when it ends. */
int core_pool_submit(struct core_pool *pool, const struct sc_envelope *env, struct sc_message *m,
                     struct core_report *rep, size_t idx, const char *action, struct sc_error *err);

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
/* core_session_fail, or the pre-request check's own error when it was
 * what stopped the transfer. */
int core_session_transfer_fail(struct sc_session *s, CURLcode rc, struct sc_error *err);

/* auth.c */
void core_credentials_clear(struct sc_credentials *c);
/* Walk auth_type or the Automatic order, running `how` for each method
 * until one gets past AUTH (s->open is then set and the attempts are
 * recorded). Returns what that transfer returned (its error in err), or
 * the authentication failure with s->open unset. */
int core_session_authenticate(struct sc_ctx *ctx, struct sc_session *s,
                              const struct core_auth_attempt *how, struct sc_error *err);
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
/* One more reference: the message survives one more sc_message_free. */
struct sc_message *core_message_ref(struct sc_message *m);
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
