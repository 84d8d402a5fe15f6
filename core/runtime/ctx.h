/* The runtime's state for one process (struct core_runtime) and for one
 * request (struct sc_ctx, opaque to plugins). */
#ifndef SC_CTX_H
#define SC_CTX_H

#include "core.h"
#include "asset.h"
#include "loader.h"

struct core_runtime {
	struct core_loader *loader;
	const char *state_dir_opt;   /* --state-dir, or NULL */
	const char *secrets_dir_opt; /* --secrets-dir, or NULL */
	struct sc_session *sessions; /* one per asset, reused across requests */
	cJSON *asset_schema;         /* asset.json + auth plugins' keys */
	cJSON *request_schema;
	struct core_parallel *par; /* parallel sessions' shared state, or NULL */
	struct core_queued *queue; /* results not yet printed, in request order */
	struct core_queued *queue_tail;
	int status; /* worst exit status of the results printed so far */
};

struct sc_ctx {
	struct core_runtime *rt;
	const cJSON *request;
	const cJSON *asset;
	struct core_asset cfg; /* the asset parsed once (asset.h) */
	const struct core_plugin *action;
	char *asset_key;
	char *state_dir;
	struct sc_session *session; /* created lazily, owned by rt */
	struct core_report *report; /* the request's results (sc_send_async) */
};

/* runtime.c: a result of `rep` was handed to a parallel session, and is
 * now complete (rc its code); the request's line is printed once all its
 * results and all before it are complete. */
struct core_report;
void core_runtime_result_pending(struct core_runtime *rt, struct core_report *rep);
void core_runtime_result_done(struct core_runtime *rt, struct core_report *rep, int rc);
/* runtime.c: the end of one result, serial (run_sets) or parallel
 * (parallel.c), so that both are the same to the byte: the default text
 * "<action> failed (<code>)" when the failure has none, the error logged,
 * the session's auth fields, the status. */
struct sc_result;
void core_runtime_result_close(struct core_report *rep, struct sc_result *r, const char *action,
                               const struct sc_session *s, int rc, struct sc_error *err);
/* parallel.c: wait until no message is in flight; or until `fd` is
 * readable; free what is left (after core_sessions_close). */
void core_parallel_drain(struct core_runtime *rt);
void core_parallel_wait_input(struct core_runtime *rt, int fd);
void core_parallel_free(struct core_runtime *rt);

int core_ctx_init(struct sc_ctx *ctx, struct core_runtime *rt, const cJSON *request);
void core_ctx_release(struct sc_ctx *ctx);
/* The session object for this ctx's asset (created, not connected). */
struct sc_session *core_ctx_session(struct sc_ctx *ctx, struct sc_error *err);

#endif
