/* Named secrets: see secrets.h. The file is read by
 * core_private_file_read (private_file.c): every check on the
 * descriptor that is read. */
#include "secrets.h"

#include <stdlib.h>
#include <string.h>

/* The secrets directory: dir_opt (--secrets-dir), else
 * $XDG_CONFIG_HOME/smtp-connector/secrets, else
 * ~/.config/smtp-connector/secrets. Allocated; NULL when no home is known. */
static char *secrets_dir(const char *dir_opt)
{
	if (dir_opt && *dir_opt)
		return strdup(dir_opt);
	const char *xdg = getenv("XDG_CONFIG_HOME");
	if (xdg && xdg[0] == '/')
		return sc_asprintf("%s/smtp-connector/secrets", xdg);
	const char *home = getenv("HOME");
	if (home && home[0] == '/')
		return sc_asprintf("%s/.config/smtp-connector/secrets", home);
	return NULL;
}

static int valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 128 || !strcmp(s, ".") || !strcmp(s, ".."))
		return 0;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* Move the secret's keys into asset; none may be set in both. */
static int merge(cJSON *asset, cJSON *secret, const char *path, struct sc_error *err)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, secret)
	{
		if (cJSON_GetObjectItemCaseSensitive(asset, e->string))
			return sc_error_set(err, SC_EINPUT,
			                    "asset.%s: set both in the request and in "
			                    "the secret %s; remove it from one of them",
			                    e->string, path);
	}
	cJSON *next;
	for (cJSON *item = secret->child; item; item = next) {
		next = item->next;
		cJSON *moved = cJSON_DetachItemViaPointer(secret, item);
		cJSON_AddItemToObject(asset, moved->string, moved);
	}
	return SC_OK;
}

int core_secrets_apply(const char *dir_opt, cJSON *req, struct sc_error *err)
{
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(req, "secret");
	if (!name)
		return SC_OK;
	if (!cJSON_IsString(name) || !valid_name(name->valuestring))
		return sc_error_set(err, SC_EINPUT,
		                    "secret: must be the name of a secret file: "
		                    "letters, digits, '.', '_' and '-' (not . or ..)");
	cJSON *asset = cJSON_GetObjectItemCaseSensitive(req, "asset");
	if (asset && !cJSON_IsObject(asset))
		return sc_error_set(err, SC_EINPUT, "asset: must be an object");
	char *dir = secrets_dir(dir_opt);
	char *path = dir ? sc_asprintf("%s/%s.json", dir, name->valuestring) : NULL;
	free(dir);
	if (!path)
		return sc_error_set(err, SC_EINPUT,
		                    "secret: no secrets directory: set HOME or "
		                    "XDG_CONFIG_HOME, or give --secrets-dir");
	char *text = NULL;
	size_t len;
	int rc = core_private_file_read(path, "secret",
	                                "; create it (a JSON object of asset keys, chmod 600)",
	                                &text, &len, err);
	/* The request's own checks (no string cut at \u0000, UTF-8 only). */
	cJSON *secret = rc ? NULL : sc_json_parse(text, len, "secret", err);
	if (text) {
		sc_secret_wipe(text, len);
		free(text);
	}
	if (!rc && !secret)
		rc = err->code;
	else if (!rc && !cJSON_IsObject(secret))
		rc = sc_error_set(
		    err, SC_EINPUT,
		    "secret: %s must hold a JSON object of asset keys, "
		    "such as {\"server\": \"smtp.corp.example\", \"password\": \"...\"}",
		    path);
	if (!rc && !asset) {
		asset = cJSON_AddObjectToObject(req, "asset");
		if (!asset)
			rc = sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	if (!rc)
		rc = merge(asset, secret, path, err);
	cJSON_Delete(secret);
	free(path);
	return rc;
}
