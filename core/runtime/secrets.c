/* Named secrets: see secrets.h. The file is opened once with O_NOFOLLOW
 * and every check (type, owner, mode) is made on that descriptor, so the
 * file checked is the file read. */
#include "secrets.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A secret holds a few keys; anything larger is not one. */
#define SECRET_MAX (64 * 1024)

char *core_secrets_dir(const char *dir_opt)
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

static int read_secret(const char *path, char **out, struct sc_error *err)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return sc_error_set(err, SC_EINPUT, "secret: cannot open %s: %s%s", path,
		                    strerror(errno),
		                    errno == ELOOP ? " (a symbolic link; put the file itself there)"
		                    : errno == ENOENT ? "; create it (a JSON object of asset keys, "
		                                        "chmod 600)"
		                                      : "");
	struct stat st;
	int rc = SC_OK;
	if (fstat(fd, &st))
		rc = sc_error_set(err, SC_EINPUT, "secret: %s: %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		rc = sc_error_set(err, SC_EINPUT, "secret: %s is not a regular file", path);
	else if (st.st_uid != geteuid())
		rc = sc_error_set(err, SC_EINPUT,
		                  "secret: %s is owned by uid %u, not by this user "
		                  "(uid %u); chown it or use a secret of your own",
		                  path, (unsigned)st.st_uid, (unsigned)geteuid());
	else if (st.st_mode & 077)
		rc = sc_error_set(err, SC_EINPUT,
		                  "secret: %s has mode %03o: others may read it; run "
		                  "chmod 600 %s",
		                  path, (unsigned)(st.st_mode & 0777), path);
	else if (st.st_size > SECRET_MAX)
		rc = sc_error_set(err, SC_EINPUT,
		                  "secret: %s is larger than %d bytes; a secret is a "
		                  "small JSON object of asset keys",
		                  path, SECRET_MAX);
	struct sc_buf b = {0};
	char chunk[4096];
	ssize_t n;
	while (!rc && (n = read(fd, chunk, sizeof chunk)) != 0) {
		if (n < 0)
			rc = sc_error_set(err, SC_EINPUT, "secret: cannot read %s: %s", path,
			                  strerror(errno));
		else if (b.len + (size_t)n > SECRET_MAX)
			rc = sc_error_set(err, SC_EINPUT, "secret: %s grew past %d bytes", path,
			                  SECRET_MAX);
		else if (sc_buf_add(&b, chunk, (size_t)n))
			rc = sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	sc_secret_wipe(chunk, sizeof chunk);
	close(fd);
	if (rc) {
		sc_buf_wipe(&b);
		return rc;
	}
	*out = sc_buf_take(&b);
	return *out ? SC_OK : sc_error_set(err, SC_ENOMEM, "out of memory");
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
	char *dir = core_secrets_dir(dir_opt);
	char *path = dir ? sc_asprintf("%s/%s.json", dir, name->valuestring) : NULL;
	free(dir);
	if (!path)
		return sc_error_set(err, SC_EINPUT,
		                    "secret: no secrets directory: set HOME or "
		                    "XDG_CONFIG_HOME, or give --secrets-dir");
	char *text = NULL;
	int rc = read_secret(path, &text, err);
	/* The request's own checks (no string cut at \u0000, UTF-8 only). */
	cJSON *secret = rc || !text ? NULL : sc_json_parse(text, strlen(text), "secret", err);
	if (text) {
		sc_secret_wipe(text, strlen(text));
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
