/* Vault ids resolve to files in the request's vault_dir (interface.md §5).
 * Every check runs before the SMTP connection opens: a missing,
 * unreadable or altered attachment fails the action with its id named,
 * instead of the SOAR app's silent skip. */
#include "session.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
	const char *ext, *type;
} types[] = {
    {"pdf", "application/pdf"},
    {"txt", "text/plain"},
    {"log", "text/plain"},
    {"csv", "text/csv"},
    {"htm", "text/html"},
    {"html", "text/html"},
    {"json", "application/json"},
    {"xml", "application/xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"svg", "image/svg+xml"},
    {"bmp", "image/bmp"},
    {"ico", "image/vnd.microsoft.icon"},
    {"eml", "message/rfc822"},
    {"ics", "text/calendar"},
    {"doc", "application/msword"},
    {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    {"xls", "application/vnd.ms-excel"},
    {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
    {"ppt", "application/vnd.ms-powerpoint"},
    {"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
    {"zip", "application/zip"},
    {"pcap", "application/vnd.tcpdump.pcap"},
    {"md", "text/markdown"},
    {"yaml", "application/yaml"},
    {"yml", "application/yaml"},
};

/* Compressed files go as application/octet-stream, as in the SOAR app,
 * so no client tries to render them. */
static const char *type_of(const char *name)
{
	const char *dot = strrchr(name, '.');
	if (!dot)
		return "application/octet-stream";
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		if (strcasecmp(dot + 1, types[i].ext) == 0)
			return types[i].type;
	return "application/octet-stream";
}

static int id_ok(const char *id)
{
	if (!*id || strlen(id) > 255 || !strcmp(id, ".") || !strcmp(id, ".."))
		return 0;
	for (const char *p = id; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-')
			return 0;
	return 1;
}

static int type_ok(const char *t)
{
	const char *slash = strchr(t, '/');
	if (!slash || slash == t || !slash[1])
		return 0;
	for (const char *p = t; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("/!#$&^_.+-", *p))
			return 0;
	return strchr(slash + 1, '/') == NULL;
}

static int is_sha1(const char *id)
{
	if (strlen(id) != 40)
		return 0;
	for (const char *p = id; *p; p++)
		if (!isxdigit((unsigned char)*p))
			return 0;
	return 1;
}

/* SHA-1 of the content, read through the checked descriptor. */
static int check_sha1(const char *param, const char *id, int fd, const char *path,
                      struct sc_error *err)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char buf[65536], sum[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	ssize_t got = 0;
	off_t at = 0;
	int ok = md && EVP_DigestInit_ex(md, EVP_sha1(), NULL);
	while (ok && (got = pread(fd, buf, sizeof buf, at)) > 0) {
		ok = EVP_DigestUpdate(md, buf, (size_t)got);
		at += got;
	}
	ok = ok && got == 0 && EVP_DigestFinal_ex(md, sum, &n);
	EVP_MD_CTX_free(md);
	if (!ok)
		return sc_error_set(err, SC_EIO, "%s: vault id %s: cannot read %s", param, id,
		                    path);
	char hex[41];
	for (unsigned i = 0; i < 20; i++)
		snprintf(hex + 2 * i, 3, "%02x", sum[i]);
	if (strcasecmp(hex, id))
		return sc_error_set(err, SC_EIO,
		                    "%s: vault id %s does not match the SHA-1 of its content "
		                    "(%s): the file was changed or the id is wrong",
		                    param, id, hex);
	return SC_OK;
}

/* Open `name` inside the directory `dirfd` so that nothing outside
 * vault_dir can be read through it: O_NOFOLLOW refuses a symbolic link
 * (a vault entry linked to /etc/passwd was mailed before), the name has
 * no '/' (id_ok), so it is the only component below vault_dir, and only a
 * regular file is accepted (O_NONBLOCK: a FIFO must not hang the action).
 * The caller reads through the returned descriptor and never opens the
 * path again, so the file checked is the file sent. -1 + err, or -1 with
 * *missing set and err untouched when the name does not exist. */
static int open_in_vault(int dirfd, const char *param, const char *id, const char *name,
                         const char *path, int *missing, struct sc_error *err)
{
	*missing = 0;
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	if (fd < 0 && errno == ENOENT) {
		*missing = 1;
		return -1;
	}
	if (fd < 0 && errno == ELOOP) {
		sc_error_set(err, SC_EIO,
		             "%s: vault id %s: %s is a symbolic link, and vault files "
		             "are read only from inside vault_dir; copy the file into vault_dir "
		             "instead of linking it. Nothing was sent",
		             param, id, path);
		return -1;
	}
	if (fd < 0) {
		sc_error_set(err, SC_EIO, "%s: vault id %s: cannot read %s: %s; nothing was sent",
		             param, id, path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		sc_error_set(err, SC_EIO,
		             "%s: vault id %s: %s is not a regular file; put the file "
		             "itself in vault_dir. Nothing was sent",
		             param, id, path);
		return -1;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	return fd;
}

/* A metadata file is a name and a type: anything larger is not one. */
#define META_MAX 65536

/* <id>.json: {"name": ..., "content_type": ...}, both optional; opened
 * with the same rules as the content. */
static int read_meta(int dirfd, const char *param, const char *id, const char *path,
                     struct sc_vault_file *out, struct sc_error *err)
{
	char *mpath = sc_asprintf("%s.json", path);
	char *mname = sc_asprintf("%s.json", id);
	if (!mpath || !mname) {
		free(mpath);
		free(mname);
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	int missing = 0, rc = SC_OK;
	int fd = open_in_vault(dirfd, param, id, mname, mpath, &missing, err);
	free(mname);
	if (fd < 0) {
		free(mpath);
		return missing ? SC_OK : err->code;
	}
	/* sc_buf_read_fd, not a read that stops at the bound: a cut file
	 * would be reported as "not a JSON object" */
	struct sc_buf b = {0};
	rc = sc_buf_read_fd(&b, fd, META_MAX);
	int e = errno;
	close(fd);
	if (rc == SC_EINPUT)
		rc = sc_error_set(err, SC_EIO,
		                  "%s: vault id %s: %s is larger than %d bytes; it should hold "
		                  "only \"name\" and \"content_type\"",
		                  param, id, mpath, META_MAX);
	else if (rc == SC_EIO)
		rc = sc_error_set(err, SC_EIO, "%s: vault id %s: cannot read %s: %s", param, id,
		                  mpath, strerror(e));
	else if (rc)
		rc = sc_error_set(err, rc, "out of memory");
	if (rc) {
		sc_buf_free(&b);
		free(mpath);
		return rc;
	}
	cJSON *j = cJSON_Parse(b.p);
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name");
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "content_type");
	if (!cJSON_IsObject(j))
		rc = sc_error_set(err, SC_EIO, "%s: vault id %s: %s is not a JSON object", param,
		                  id, mpath);
	else if (name && (!cJSON_IsString(name) || !name->valuestring[0] ||
	                  strpbrk(name->valuestring, "\r\n")))
		rc = sc_error_set(err, SC_EIO,
		                  "%s: vault id %s: \"name\" in %s must be a one-line string",
		                  param, id, mpath);
	else if (type && (!cJSON_IsString(type) || !type_ok(type->valuestring)))
		rc = sc_error_set(err, SC_EIO,
		                  "%s: vault id %s: \"content_type\" in %s must look like "
		                  "type/subtype, e.g. application/pdf",
		                  param, id, mpath);
	if (!rc && name) {
		const char *base = strrchr(name->valuestring, '/');
		out->name = strdup(base && base[1] ? base + 1 : name->valuestring);
	}
	if (!rc && type)
		out->content_type = strdup(type->valuestring);
	cJSON_Delete(j);
	sc_buf_free(&b);
	free(mpath);
	return rc;
}

/* The content: open, metadata, SHA-1 when the id is one. */
static int resolve_in(int dirfd, const char *param, const char *id, const char *path,
                      struct sc_vault_file *out, struct sc_error *err)
{
	int missing = 0;
	out->fd = open_in_vault(dirfd, param, id, id, path, &missing, err);
	if (out->fd < 0 && missing)
		return sc_error_set(err, SC_EIO,
		                    "%s: vault id %s not found (no file %s); nothing "
		                    "was sent",
		                    param, id, path);
	if (out->fd < 0)
		return err->code;
	struct stat st;
	if (fstat(out->fd, &st))
		return sc_error_set(err, SC_EIO, "%s: vault id %s: cannot read %s: %s", param, id,
		                    path, strerror(errno));
	out->size = st.st_size;
	int rc = read_meta(dirfd, param, id, path, out, err);
	if (!rc && is_sha1(id))
		rc = check_sha1(param, id, out->fd, path, err);
	return rc;
}

int sc_vault_resolve(struct sc_ctx *ctx, const char *param, const char *id,
                     struct sc_vault_file *out, struct sc_error *err)
{
	memset(out, 0, sizeof *out);
	out->fd = -1;
	const char *dir = sc_request_string(ctx, "vault_dir");
	if (!dir)
		return sc_error_set(err, SC_EINPUT,
		                    "%s: vault id %s given, but the request has no "
		                    "\"vault_dir\" to find it in",
		                    param, id);
	if (!id_ok(id))
		return sc_error_set(err, SC_EINPUT,
		                    "%s: \"%s\" is not a vault id (letters, digits, "
		                    "'.', '_' and '-' only)",
		                    param, id);
	char *path = sc_asprintf("%s/%s", dir, id);
	if (!path)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;
	if (dirfd < 0)
		rc = sc_error_set(err, SC_EIO,
		                  "%s: vault id %s: cannot open vault_dir %s: %s; "
		                  "nothing was sent",
		                  param, id, dir, strerror(errno));
	else
		rc = resolve_in(dirfd, param, id, path, out, err);
	if (dirfd >= 0)
		close(dirfd);
	if (!rc && !(out->id = strdup(id)))
		rc = sc_error_set(err, SC_ENOMEM, "out of memory");
	if (rc) {
		if (out->fd >= 0)
			close(out->fd);
		out->fd = -1;
		free(path);
		sc_vault_file_free(out);
		return rc;
	}
	out->path = path;
	if (!out->name)
		out->name = strdup(id);
	if (!out->content_type)
		out->content_type = strdup(type_of(out->name));
	if (!out->id || !out->name || !out->content_type) {
		sc_vault_file_free(out);
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	return SC_OK;
}

void sc_vault_file_free(struct sc_vault_file *f)
{
	free(f->id);
	free(f->path);
	free(f->name);
	free(f->content_type);
	/* Only a resolved file (id set) owns its descriptor: a struct that
	 * was zeroed and never resolved has fd 0, which is stdin. */
	if (f->id && f->fd >= 0)
		close(f->fd);
	memset(f, 0, sizeof *f);
	f->fd = -1;
}

/* ------------------------------------------------------------------ */
/* Files by path (Velociraptor's Generic.Utils.SendEmail FilesToUpload) */
/* ------------------------------------------------------------------ */

/* The allowed directory (a real path) that holds `real`, or NULL. */
static char *containing_dir(const cJSON *dirs, const char *real)
{
	const cJSON *d;
	cJSON_ArrayForEach(d, dirs)
	{
		if (!cJSON_IsString(d))
			continue;
		char *rd = realpath(d->valuestring, NULL);
		size_t n = rd ? strlen(rd) : 0;
		if (rd && strncmp(real, rd, n) == 0 && (real[n] == '/' || (n == 1 && rd[0] == '/')))
			return rd;
		free(rd);
	}
	return NULL;
}

/* Open `rest` (a relative path) below the directory `dirfd` one
 * component at a time with O_NOFOLLOW, so that a link swapped in after
 * realpath() cannot lead outside: the file read is the file checked. */
static int open_below(int dirfd, const char *rest, struct sc_error *err, const char *param,
                      const char *shown)
{
	char *copy = strdup(rest), *save = NULL;
	if (!copy)
		return sc_error_set(err, SC_ENOMEM, "out of memory"), -1;
	int fd = dup(dirfd);
	for (char *c = strtok_r(copy, "/", &save); c && fd >= 0; c = strtok_r(NULL, "/", &save)) {
		int last = save == NULL || *save == '\0';
		int next = openat(fd, c,
		                  O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY |
		                      (last ? O_NONBLOCK : O_DIRECTORY));
		close(fd);
		fd = next;
	}
	free(copy);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		sc_error_set(err, SC_EIO,
		             "%s: %s changed while it was opened, or is not a regular "
		             "file; nothing was sent",
		             param, shown);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	return fd;
}

int sc_file_resolve(struct sc_ctx *ctx, const char *param, const char *path, const char *filename,
                    struct sc_vault_file *out, struct sc_error *err)
{
	memset(out, 0, sizeof *out);
	out->fd = -1;
	const cJSON *dirs = ctx->cfg.attachment_dirs;
	if (!cJSON_IsArray(dirs) || !dirs->child)
		return sc_error_set(err, SC_EINPUT,
		                    "%s: files are read only from directories the asset "
		                    "lists in \"attachment_dirs\", and it lists none; add the "
		                    "directory of %s there",
		                    param, path);
	if (path[0] != '/')
		return sc_error_set(err, SC_EINPUT, "%s: \"%s\" is not an absolute path", param,
		                    path);
	char *real = realpath(path, NULL);
	if (!real)
		return sc_error_set(err, SC_EIO, "%s: cannot read %s: %s; nothing was sent", param,
		                    path, strerror(errno));
	char *dir = containing_dir(dirs, real);
	if (!dir) {
		int rc = sc_error_set(err, SC_EINPUT,
		                      "%s: %s is not inside any of the asset's "
		                      "attachment_dirs (a symbolic link out of them counts as "
		                      "outside); copy the file there or add its directory",
		                      param, path);
		free(real);
		return rc;
	}
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	size_t n = strlen(dir);
	out->fd =
	    dirfd < 0 ? -1 : open_below(dirfd, real + n + (dir[n - 1] != '/'), err, param, path);
	if (dirfd < 0)
		sc_error_set(err, SC_EIO, "%s: cannot open %s: %s", param, dir, strerror(errno));
	if (dirfd >= 0)
		close(dirfd);
	free(dir);
	struct stat st;
	if (out->fd < 0 || fstat(out->fd, &st)) {
		free(real);
		if (out->fd >= 0)
			close(out->fd);
		out->fd = -1;
		return err->code ? err->code : SC_EIO;
	}
	const char *base = strrchr(real, '/');
	out->size = st.st_size;
	out->id = strdup(path);
	out->path = real;
	out->name = strdup(filename && *filename ? filename : base + 1);
	out->content_type = out->name ? strdup(type_of(out->name)) : NULL;
	if (!out->id || !out->name || !out->content_type) {
		sc_vault_file_free(out);
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	return SC_OK;
}
