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
		char *src = sc_asprintf("%s\n%ld\n%s", server ? server : "", ctx->cfg.port,
		                        user ? user : "");
		char hex[65];
		if (src && core_sha256_hex(src, strlen(src), hex) == 0)
			c->asset_key = sc_asprintf("asset-%.24s", hex);
		free(src);
	}
	return c->asset_key ? c->asset_key : "asset";
}

/* Creates the missing directories of path, each 0700; 1 when path itself
 * was created here, 0 when it was already there, -1 (errno) on failure.
 * Existing directories are left as they are. */
static int mkdir_p(const char *path)
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
	int rc = mkdir(p, 0700);
	free(p);
	if (rc == 0)
		return 1;
	return errno == EEXIST ? 0 : -1;
}

/* Where the state dir comes from, and the name of that setting. */
static char *state_dir_path(const struct sc_ctx *ctx, const char **from)
{
	const char *opt = ctx->rt ? ctx->rt->state_dir_opt : NULL;
	const char *env = getenv("SMTP_CONNECTOR_STATE_DIR");
	const char *xdg = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");
	*from = "--state-dir";
	if (opt && *opt)
		return strdup(opt);
	*from = "SMTP_CONNECTOR_STATE_DIR";
	if (env && *env)
		return strdup(env);
	*from = "XDG_STATE_HOME";
	if (xdg && *xdg == '/')
		return sc_asprintf("%s/smtp-connector", xdg);
	*from = "HOME";
	if (home && *home == '/')
		return sc_asprintf("%s/.local/state/smtp-connector", home);
	return NULL;
}

/* The state dir holds OAuth tokens and throttle state: whoever can write
 * it can replace them or plant a symlink for the next write. A directory
 * created here is 0700 from the start (mkdir; the umask only narrows). An
 * existing one is never chmod'ed: it may be /tmp or someone's shared
 * directory, and "fixing" its mode breaks whoever relies on it (the old
 * code turned a 1777 /tmp into 0700). It must be ours and not writable by
 * group or others, or it is refused with the fix named. */
static int check_existing(const char *dir, const char *from, const struct stat *st,
                          struct sc_error *err)
{
	const char *opt =
	    strcmp(from, "SMTP_CONNECTOR_STATE_DIR") ? "--state-dir" : "SMTP_CONNECTOR_STATE_DIR";
	if (!S_ISDIR(st->st_mode))
		return sc_error_set(err, SC_EIO,
		                    "state directory %s (from %s) is not a directory; "
		                    "choose another %s",
		                    dir, from, opt);
	if (st->st_uid != geteuid())
		return sc_error_set(
		    err, SC_EIO,
		    "state directory %s (from %s) belongs to uid %ld, not "
		    "to this user (uid %ld); choose another %s, a directory of your own",
		    dir, from, (long)st->st_uid, (long)geteuid(), opt);
	if (st->st_mode & (S_IWGRP | S_IWOTH))
		return sc_error_set(
		    err, SC_EIO,
		    "state directory %s (from %s) can be written by "
		    "others (mode %04o), who could replace its tokens; chmod 700 %s or "
		    "choose another %s",
		    dir, from, (unsigned)(st->st_mode & 07777), dir, opt);
	if (st->st_mode & 077)
		sc_log(SC_LOG_WARN,
		       "state directory %s is readable by others (mode %04o); its files "
		       "are 0600, but chmod 700 %s keeps even their names private",
		       dir, (unsigned)(st->st_mode & 07777), dir);
	return SC_OK;
}

const char *sc_state_dir(struct sc_ctx *ctx, struct sc_error *err)
{
	if (ctx->state_dir)
		return ctx->state_dir;
	const char *from;
	char *dir = state_dir_path(ctx, &from);
	if (!dir) {
		sc_error_set(err, SC_EIO,
		             "no state directory: set --state-dir or SMTP_CONNECTOR_STATE_DIR");
		return NULL;
	}
	if (dir[0] != '/') {
		sc_error_set(err, SC_EIO,
		             "state directory \"%s\" (from %s) must be an absolute path", dir,
		             from);
		free(dir);
		return NULL;
	}
	struct stat st;
	int made = mkdir_p(dir);
	if (made < 0 || stat(dir, &st)) {
		sc_error_set(err, SC_EIO, "cannot create state directory %s (from %s): %s", dir,
		             from, strerror(errno));
		free(dir);
		return NULL;
	}
	if (!made && check_existing(dir, from, &st, err)) {
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
