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
};

int core_ctx_init(struct sc_ctx *ctx, struct core_runtime *rt, const cJSON *request);
void core_ctx_release(struct sc_ctx *ctx);
/* The session object for this ctx's asset (created, not connected). */
struct sc_session *core_ctx_session(struct sc_ctx *ctx, struct sc_error *err);

#endif
