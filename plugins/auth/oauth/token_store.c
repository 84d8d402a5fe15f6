/* The token store: one JSON file per asset key in <state_dir>/oauth/
 * (directory 0700, files 0600), replaced atomically (temp file, fsync,
 * rename) so a reader never sees half a file, and guarded by an flock on
 * a separate lock file held across read-refresh-write: two playbooks
 * refreshing at once would otherwise both spend the refresh token, and
 * with servers that rotate it, the one written last would be revoked.
 *
 * Stored: access and refresh token, scope, times, the grant, and a
 * SHA-256 of the client_id (a changed client_id invalidates the tokens).
 * Never the client secret. */
#include "oauth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STORE_VERSION 1
#define MAX_STORE (256 * 1024) /* a token file is a few KiB */
#define PENDING_MAX_AGE 3600

/* asset_id is free text: keep [A-Za-z0-9_-], percent-encode the rest
 * (so "../x" cannot leave the directory and names stay distinct). */
static char *file_key(const char *key)
{
	struct sc_buf b = {.wipe = 1}; /* may hold a secret */
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
		int ok = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		         (*p >= '0' && *p <= '9') || *p == '_' || *p == '-';
		if (sc_buf_add(&b, ok ? (const char *)p : e, ok ? 1 : 3)) {
			sc_buf_wipe(&b);
			return NULL;
		}
	}
	return sc_buf_take(&b);
}

int oauth_store_open(struct sc_ctx *ctx, struct oauth_store *st, struct sc_error *err)
{
	memset(st, 0, sizeof *st);
	st->lock_fd = -1;
	/* Long enough for another process's token request, which is bounded
	 * by its own timeout (the same asset's). */
	st->wait_s = (long)(sc_asset_double(ctx, "timeout", 30) * 2) + 10;
	const char *state = sc_state_dir(ctx, err);
	if (!state)
		return err->code;
	char *dir = sc_asprintf("%s/oauth", state);
	char *key = file_key(sc_asset_key(ctx));
	if (!dir || !key) {
		free(dir);
		free(key);
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	struct stat sb;
	int rc = SC_OK;
	if (mkdir(dir, 0700) && errno != EEXIST)
		rc = sc_error_set(err, SC_EIO, "cannot create the token directory %s: %s", dir,
		                  strerror(errno));
	else if (lstat(dir, &sb) || !S_ISDIR(sb.st_mode))
		rc = sc_error_set(err, SC_EIO, "token directory %s is not a directory", dir);
	else if ((sb.st_mode & 077) && chmod(dir, 0700))
		rc = sc_error_set(
		    err, SC_EIO, "token directory %s is open to others and cannot be made 0700: %s",
		    dir, strerror(errno));
	if (!rc) {
		st->path = sc_asprintf("%s/%s.json", dir, key);
		st->lock_path = sc_asprintf("%s/%s.lock", dir, key);
		if (!st->path || !st->lock_path)
			rc = sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	free(dir);
	free(key);
	if (rc)
		oauth_store_close(st);
	return rc;
}

int oauth_store_lock(struct oauth_store *st, struct sc_error *err)
{
	long wait_s = st->wait_s;
	if (st->lock_fd >= 0)
		return SC_OK;
	int fd = open(st->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return sc_error_set(err, SC_EIO, "cannot open the token lock %s: %s", st->lock_path,
		                    strerror(errno));
	/* Bounded: the holder is another connector inside a token request,
	 * itself bounded by the asset timeout. */
	struct timespec start, now, pause = {0, 20 * 1000 * 1000};
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (flock(fd, LOCK_EX | LOCK_NB)) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			int e = errno;
			close(fd);
			return sc_error_set(err, SC_EIO, "cannot lock %s: %s", st->lock_path,
			                    strerror(e));
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= wait_s) {
			close(fd);
			return sc_error_set(err, SC_EIO,
			                    "the token store %s stayed locked for %ld s by another "
			                    "smtp-connector process",
			                    st->path, wait_s);
		}
		nanosleep(&pause, NULL);
	}
	st->lock_fd = fd;
	return SC_OK;
}

void oauth_store_unlock(struct oauth_store *st)
{
	if (st->lock_fd >= 0) {
		flock(st->lock_fd, LOCK_UN);
		close(st->lock_fd);
	}
	st->lock_fd = -1;
}

void oauth_store_close(struct oauth_store *st)
{
	oauth_store_unlock(st);
	free(st->path);
	free(st->lock_path);
	st->path = st->lock_path = NULL;
}

/* Read a whole small file; SC_ESKIP when absent. Caller wipes `out`. */
static int read_file(const char *path, struct sc_buf *out, struct sc_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return SC_ESKIP;
		return sc_error_set(err, SC_EIO, "cannot read %s: %s", path, strerror(errno));
	}
	struct stat sb;
	if (fstat(fd, &sb) == 0 && (sb.st_mode & 077)) {
		sc_log(SC_LOG_WARN, "%s was readable by others; made it 0600", path);
		fchmod(fd, 0600);
	}
	/* the caller's buffer is a wiping one: the chunks are wiped too */
	int rc = sc_buf_read_fd(out, fd, MAX_STORE);
	if (rc == SC_EIO)
		rc = sc_error_set(err, SC_EIO, "cannot read %s: %s", path, strerror(errno));
	else if (rc == SC_ENOMEM)
		rc = sc_error_set(err, SC_ENOMEM, "out of memory");
	/* SC_EINPUT: too big, treated as corrupt by the caller */
	close(fd);
	return rc;
}

/* Write `text` to `path` via a temp file in the same directory. */
static int write_atomic(const char *path, const char *text, struct sc_error *err)
{
	char *tmp = sc_asprintf("%s.tmp.%ld", path, (long)getpid());
	if (!tmp)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	unlink(tmp); /* a leftover of a crashed run of this pid */
	int rc = SC_OK;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = sc_error_set(err, SC_EIO, "cannot create %s: %s", tmp, strerror(errno));
		free(tmp);
		return rc;
	}
	size_t len = strlen(text), off = 0;
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = sc_error_set(err, SC_EIO, "cannot write %s: %s", tmp, strerror(errno));
			break;
		}
		off += (size_t)n;
	}
	if (!rc && fsync(fd))
		rc = sc_error_set(err, SC_EIO, "cannot write %s: %s", tmp, strerror(errno));
	close(fd);
	if (!rc && rename(tmp, path))
		rc = sc_error_set(err, SC_EIO, "cannot replace %s: %s", path, strerror(errno));
	if (rc)
		unlink(tmp);
	free(tmp);
	return rc;
}

static long long jnum(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsNumber(v) ? (long long)v->valuedouble : 0;
}

static int corrupt(struct oauth_store *st, const char *why, struct sc_error *err)
{
	sc_log(SC_LOG_WARN,
	       "the token store %s is corrupt (%s); removing it: run `smtp-connector authorize` "
	       "again if this asset uses the authorization code grant",
	       st->path, why);
	unlink(st->path);
	return sc_error_set(err, SC_ESKIP,
	                    "the stored OAuth token was corrupt and has been removed");
}

int oauth_store_load(struct oauth_store *st, const struct oauth_config *cfg, struct oauth_tokens *t,
                     struct sc_error *err)
{
	struct sc_buf b = {.wipe = 1}; /* may hold a secret */
	int rc = read_file(st->path, &b, err);
	if (rc == SC_ESKIP) {
		sc_buf_wipe(&b);
		return sc_error_set(err, SC_ESKIP, "no OAuth token is stored for this asset (%s)",
		                    st->path);
	}
	if (rc == SC_EINPUT) {
		sc_buf_wipe(&b);
		return corrupt(st, "larger than any token file", err);
	}
	if (rc) {
		sc_buf_wipe(&b);
		return rc;
	}
	cJSON *j = cJSON_ParseWithLength(b.p ? b.p : "", b.len);
	sc_buf_wipe(&b);
	char *want = oauth_sha256_b64url(cfg->client_id);
	const char *at = oauth_json_str(j, "access_token");
	const char *rt = oauth_json_str(j, "refresh_token");
	const char *hash = oauth_json_str(j, "client_id_sha256");
	const char *grant = oauth_json_str(j, "grant");
	if (!cJSON_IsObject(j) || jnum(j, "version") != STORE_VERSION || (!at && !rt) || !hash ||
	    !grant) {
		rc = corrupt(st, cJSON_IsObject(j) ? "fields missing" : "not JSON", err);
	} else if (!want || strcmp(want, hash) != 0) {
		rc = sc_error_set(err, SC_ESKIP,
		                  "the stored OAuth token was issued to another client_id "
		                  "(client_id changed), so it was not used");
	} else if (strcmp(grant, oauth_grant_name(cfg->grant)) != 0) {
		rc =
		    sc_error_set(err, SC_ESKIP,
		                 "the stored OAuth token is for the %s grant, but oauth_grant_type "
		                 "is %s",
		                 grant, oauth_grant_name(cfg->grant));
	} else {
		oauth_tokens_clear(t);
		t->access_token = at ? strdup(at) : NULL;
		t->refresh_token = rt ? strdup(rt) : NULL;
		t->scope = oauth_json_str(j, "scope") ? strdup(oauth_json_str(j, "scope")) : NULL;
		t->obtained_at = jnum(j, "obtained_at");
		t->expires_at = jnum(j, "expires_at");
		if ((at && !t->access_token) || (rt && !t->refresh_token)) {
			oauth_tokens_clear(t);
			rc = sc_error_set(err, SC_ENOMEM, "out of memory");
		}
	}
	free(want);
	oauth_json_wipe_delete(j);
	return rc;
}

int oauth_store_save(struct oauth_store *st, const struct oauth_config *cfg,
                     const struct oauth_tokens *t, struct sc_error *err)
{
	cJSON *j = cJSON_CreateObject();
	char *hash = oauth_sha256_b64url(cfg->client_id);
	char *text = NULL;
	int rc = SC_OK;
	if (!j || !hash || !cJSON_AddNumberToObject(j, "version", STORE_VERSION) ||
	    !cJSON_AddStringToObject(j, "grant", oauth_grant_name(cfg->grant)) ||
	    !cJSON_AddStringToObject(j, "client_id_sha256", hash) ||
	    (t->access_token && !cJSON_AddStringToObject(j, "access_token", t->access_token)) ||
	    (t->refresh_token && !cJSON_AddStringToObject(j, "refresh_token", t->refresh_token)) ||
	    (t->scope && !cJSON_AddStringToObject(j, "scope", t->scope)) ||
	    !cJSON_AddNumberToObject(j, "obtained_at", (double)t->obtained_at) ||
	    !cJSON_AddNumberToObject(j, "expires_at", (double)t->expires_at) ||
	    !(text = cJSON_Print(j)))
		rc = sc_error_set(err, SC_ENOMEM, "out of memory");
	else
		rc = write_atomic(st->path, text, err);
	sc_secret_free(text);
	free(hash);
	oauth_json_wipe_delete(j);
	return rc;
}

static char *pending_path(const struct oauth_store *st)
{
	size_t n = strlen(st->path) - strlen(".json");
	return sc_asprintf("%.*s.pending.json", (int)n, st->path);
}

int oauth_pending_save(struct oauth_store *st, const char *state, const char *verifier,
                       const char *redirect_uri, struct sc_error *err)
{
	cJSON *j = cJSON_CreateObject();
	char *path = pending_path(st);
	char *text = NULL;
	int rc;
	if (!j || !path || !cJSON_AddStringToObject(j, "state", state) ||
	    !cJSON_AddStringToObject(j, "code_verifier", verifier) ||
	    !cJSON_AddStringToObject(j, "redirect_uri", redirect_uri) ||
	    !cJSON_AddNumberToObject(j, "created_at", (double)time(NULL)) ||
	    !(text = cJSON_Print(j)))
		rc = sc_error_set(err, SC_ENOMEM, "out of memory");
	else
		rc = write_atomic(path, text, err);
	sc_secret_free(text);
	free(path);
	oauth_json_wipe_delete(j);
	return rc;
}

int oauth_pending_load(struct oauth_store *st, char **state, char **verifier, char **redirect_uri,
                       struct sc_error *err)
{
	char *path = pending_path(st);
	struct sc_buf b = {.wipe = 1}; /* may hold a secret */
	if (!path)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	int rc = read_file(path, &b, err);
	cJSON *j = rc ? NULL : cJSON_ParseWithLength(b.p ? b.p : "", b.len);
	sc_buf_wipe(&b);
	if (rc == SC_ESKIP || rc == SC_EINPUT ||
	    (!rc && (!oauth_json_str(j, "state") || !oauth_json_str(j, "code_verifier") ||
	             !oauth_json_str(j, "redirect_uri")))) {
		rc = sc_error_set(err, SC_EINPUT,
		                  "no pending authorization for this asset (%s): run "
		                  "`smtp-connector authorize` without SMTP_CONNECTOR_REDIRECT_URL "
		                  "first, open the URL "
		                  "it prints, then pass the URL the browser was sent to",
		                  path);
	} else if (!rc && time(NULL) - jnum(j, "created_at") > PENDING_MAX_AGE) {
		unlink(path); /* its PKCE verifier is of no use any more */
		rc = sc_error_set(err, SC_EINPUT,
		                  "the pending authorization is more than an hour old: run "
		                  "`smtp-connector authorize` again");
	} else if (!rc) {
		*state = strdup(oauth_json_str(j, "state"));
		*verifier = strdup(oauth_json_str(j, "code_verifier"));
		*redirect_uri = strdup(oauth_json_str(j, "redirect_uri"));
		if (!*state || !*verifier || !*redirect_uri)
			rc = sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	oauth_json_wipe_delete(j);
	free(path);
	return rc;
}

void oauth_pending_remove(struct oauth_store *st)
{
	char *path = pending_path(st);
	if (path)
		unlink(path);
	free(path);
}
