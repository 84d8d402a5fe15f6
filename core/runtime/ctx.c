/* Request context: typed access to the asset and envelope for plugins,
 * the per-asset state directory and key. */
#include "ctx.h"
#include "session.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int core_ctx_init(struct sc_ctx *ctx, struct core_runtime *rt, const cJSON *request)
{
	memset(ctx, 0, sizeof *ctx);
	ctx->rt = rt;
	ctx->request = request;
	ctx->asset = cJSON_GetObjectItemCaseSensitive(request, "asset");
	core_asset_parse(ctx->asset, &ctx->cfg);
	return SC_OK;
}

void core_ctx_release(struct sc_ctx *ctx)
{
	free(ctx->asset_key);
	free(ctx->state_dir);
	memset(ctx, 0, sizeof *ctx);
}

const cJSON *sc_asset(const struct sc_ctx *ctx)
{
	return ctx->asset;
}

const char *sc_asset_string(const struct sc_ctx *ctx, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(ctx->asset, key);
	if (!cJSON_IsString(v) || !v->valuestring[0])
		return NULL;
	return v->valuestring;
}

int sc_asset_bool(const struct sc_ctx *ctx, const char *key, int dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(ctx->asset, key);
	return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

long sc_asset_long(const struct sc_ctx *ctx, const char *key, long dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(ctx->asset, key);
	return cJSON_IsNumber(v) ? (long)v->valuedouble : dflt;
}

double sc_asset_double(const struct sc_ctx *ctx, const char *key, double dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(ctx->asset, key);
	return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

const char *sc_request_string(const struct sc_ctx *ctx, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(ctx->request, key);
	return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

const char *sc_platform_string(const struct sc_ctx *ctx, const char *key)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(ctx->request, "platform");
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, key);
	return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

const char *sc_action_name(const struct sc_ctx *ctx)
{
	return ctx->action ? ctx->action->desc->name : "";
}

int core_sha256_hex(const char *data, size_t len, char out[65])
{
	static const char hx[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32)
		return -1;
	for (unsigned i = 0; i < 32; i++) {
		out[2 * i] = hx[md[i] >> 4];
		out[2 * i + 1] = hx[md[i] & 15];
	}
	out[64] = '\0';
	return 0;
}

/* Without an asset_id, state is keyed by what identifies the account:
 * server, port and user. Hashed so no user name lands in a file name. */
const char *sc_asset_key(const struct sc_ctx *ctx)
{
	struct sc_ctx *c = (struct sc_ctx *)ctx;
	if (c->asset_key)
		return c->asset_key;
	const char *id = sc_request_string(ctx, "asset_id");
	if (id) {
		c->asset_key = strdup(id);
	} else {
		const char *server = ctx->cfg.server;
		const char *user = ctx->cfg.username;
		char *src = sc_asprintf("%s\n%ld\n%s", server ? server : "",
					  ctx->cfg.port, user ? user : "");
		char hex[65];
		if (src && core_sha256_hex(src, strlen(src), hex) == 0)
			c->asset_key = sc_asprintf("asset-%.24s", hex);
		free(src);
	}
	return c->asset_key ? c->asset_key : "asset";
}

static int mkdir_p(const char *path, mode_t mode)
{
	char *p = strdup(path);
	if (!p)
		return -1;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) && errno != EEXIST) {
			free(p);
			return -1;
		}
		*s = '/';
	}
	int rc = mkdir(p, mode);
	free(p);
	return rc && errno != EEXIST ? -1 : 0;
}

const char *sc_state_dir(struct sc_ctx *ctx, struct sc_error *err)
{
	if (ctx->state_dir)
		return ctx->state_dir;
	const char *opt = ctx->rt ? ctx->rt->state_dir_opt : NULL;
	const char *env = getenv("SMTP_CONNECTOR_STATE_DIR");
	const char *xdg = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");
	char *dir = NULL;
	if (opt && *opt)
		dir = strdup(opt);
	else if (env && *env)
		dir = strdup(env);
	else if (xdg && *xdg == '/')
		dir = sc_asprintf("%s/smtp-connector", xdg);
	else if (home && *home == '/')
		dir = sc_asprintf("%s/.local/state/smtp-connector", home);
	if (!dir) {
		sc_error_set(err, SC_EIO, "no state directory: set --state-dir or SMTP_CONNECTOR_STATE_DIR");
		return NULL;
	}
	if (dir[0] != '/') {
		sc_error_set(err, SC_EIO, "state directory \"%s\" must be an absolute path", dir);
		free(dir);
		return NULL;
	}
	struct stat st;
	if (mkdir_p(dir, 0700) || stat(dir, &st) || !S_ISDIR(st.st_mode)) {
		sc_error_set(err, SC_EIO, "cannot create state directory %s: %s", dir, strerror(errno));
		free(dir);
		return NULL;
	}
	if ((st.st_mode & 077) && chmod(dir, 0700)) {
		sc_error_set(err, SC_EIO, "state directory %s is readable by others and cannot be made 0700: %s",
			     dir, strerror(errno));
		free(dir);
		return NULL;
	}
	ctx->state_dir = dir;
	return dir;
}

struct sc_session *core_ctx_session(struct sc_ctx *ctx, struct sc_error *err)
{
	if (!ctx->session)
		ctx->session = core_session_get(ctx, err);
	return ctx->session;
}
