/* The spool: what was answered 250 survives a crash. Maildir's recipe:
 * write into tmp/ (or a recycled file in free/), make it durable, rename
 * into new/, make the rename durable. Both flushes are the host's group
 * commit (sink.h, sc_commit_wait): one syncfs() shared by every delivery
 * running at once, where each delivery used to fsync two files and the
 * directory (bench/results.md). Each
 * message is <id>.eml (the received bytes) beside <id>.env (its envelope,
 * JSON), renamed in that order so that new/<id>.eml always has its
 * envelope; <id>.retry holds the attempts so far. failed/ keeps refused
 * and expired messages with <id>.reason. */
#define _GNU_SOURCE /* copy_file_range */
#include "http_sink.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

char *hs_spool_path(const struct hs_spool *sp, const char *box, const char *id, const char *ext)
{
	return sc_asprintf("%s/%s/%s%s", sp->dir, box, id, ext);
}

static int mkdir_0700(const char *path, struct sc_error *err)
{
	if (sc_dir_make(path))
		return sc_error_set(err, SC_EIO, "spool_dir: cannot create %s: %s", path,
		                    strerror(errno));
	return SC_OK;
}

int hs_spool_open(struct hs_spool *sp, const char *dir, struct sc_error *err)
{
	sp->lock_fd = -1;
	if (!(sp->dir = strdup(dir)))
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	static const char *const boxes[] = {"", "/tmp", "/new", "/failed", "/free"};
	for (size_t i = 0; i < sizeof boxes / sizeof *boxes; i++) {
		char *p = sc_asprintf("%s%s", dir, boxes[i]);
		int rc = p ? mkdir_0700(p, err) : sc_error_set(err, SC_ENOMEM, "out of memory");
		free(p);
		if (rc)
			return rc;
	}
	/* Two listeners on one spool would POST each message twice and
	 * clear each other's tmp/. The lock goes with the process, kill -9
	 * included. */
	char *lock = sc_asprintf("%s/lock", dir);
	sp->lock_fd = lock ? open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600) : -1;
	free(lock);
	if (sp->lock_fd < 0)
		return sc_error_set(err, SC_EIO, "spool_dir: cannot open %s/lock: %s", dir,
		                    strerror(errno));
	if (flock(sp->lock_fd, LOCK_EX | LOCK_NB))
		return sc_error_set(
		    err, SC_EIO,
		    "spool_dir: %s is in use by another smtp-connector serve; give each "
		    "listener its own spool_dir",
		    dir);
	int rc = hs_free_open(sp, err);
	return rc ? rc : sc_commit_open(dir, &sp->commit, err);
}

void hs_spool_close(struct hs_spool *sp)
{
	sc_commit_close(sp->commit);
	sp->commit = NULL;
	hs_free_close(sp);
	if (sp->lock_fd >= 0)
		close(sp->lock_fd);
	free(sp->dir);
	sp->dir = NULL;
	sp->lock_fd = -1;
}

/* Write text to path (made durable by the caller's commit); 0 or -1
 * with errno. The file may be a recycled one (spool_free.c): overwritten
 * in place and cut to length, which reuses its block instead of freeing
 * and allocating one. */
static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	size_t n = strlen(text), done = 0;
	int rc = 0;
	while (!rc && done < n) {
		ssize_t w = pwrite(fd, text + done, n - done, (off_t)done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			rc = -1;
		else
			done += (size_t)w;
	}
	if (!rc)
		rc = ftruncate(fd, (off_t)n);
	int e = errno;
	if (close(fd) && !rc)
		return -1;
	errno = e;
	return rc;
}

static int copy_fd(int in, int out)
{
	for (;;) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 20, 0);
		if (n == 0)
			return 0;
		if (n > 0)
			continue;
		if (errno == EINTR)
			continue;
		if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP)
			return -1;
		break; /* fall back to read/write */
	}
	char chunk[65536];
	for (;;) {
		ssize_t n = read(in, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return (int)n;
		if (sc_write_all(out, chunk, (size_t)n))
			return -1;
	}
}

/* The message into `dst`, copied (2 KB cost less than a new inode): a
 * recycled file when one is free (hs_free_take), else in tmp/; cut to
 * length (made durable by the caller's commit). Not a hard link: the
 * listener may reuse its file once deliver() returns, and every spool
 * file must be ours to recycle. */
static int place_message(const char *src, const char *dst)
{
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -1;
	int out = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	int rc = out < 0 ? -1 : copy_fd(in, out);
	off_t end = rc ? 0 : lseek(out, 0, SEEK_CUR);
	if (!rc)
		rc = end < 0 ? -1 : ftruncate(out, end);
	int e = errno;
	close(in);
	if (out >= 0 && close(out) && !rc)
		rc = -1;
	errno = e;
	return rc;
}

struct add_paths {
	char *tenv, *nenv, *teml, *neml;
};

static void free_paths(struct add_paths *p)
{
	free(p->tenv), free(p->nenv), free(p->teml), free(p->neml);
}

int hs_spool_add(struct hs_spool *sp, const struct sc_inbound *msg, const cJSON *env,
                 struct sc_error *err)
{
	/* a recycled file is written where it lies in free/ (as private as
	 * tmp/, emptied at start) and renamed from there into new/ */
	struct add_paths p = {hs_free_take(sp), hs_spool_path(sp, "new", msg->id, ".env"),
	                      hs_free_take(sp), hs_spool_path(sp, "new", msg->id, ".eml")};
	if (!p.tenv)
		p.tenv = hs_spool_path(sp, "tmp", msg->id, ".env");
	if (!p.teml)
		p.teml = hs_spool_path(sp, "tmp", msg->id, ".eml");
	char *text = cJSON_PrintUnformatted(env);
	if (!text || !p.tenv || !p.nenv || !p.teml || !p.neml) {
		free(text), free_paths(&p);
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	const char *step = "exists";
	struct stat st;
	int rc = lstat(p.neml, &st) == 0 ? -1 : 0;
	if (rc)
		errno = EEXIST;
	if (!rc && (step = "write", write_file(p.tenv, text)))
		rc = -1;
	if (!rc && (step = "copy", place_message(msg->path, p.teml)))
		rc = -1;
	/* both files durable before either name is in new/: a crash never
	 * leaves a partial message there for the rescan to POST */
	if (!rc && (step = "sync", sc_commit_wait(sp->commit)))
		rc = -1;
	if (!rc && (step = "rename", rename(p.tenv, p.nenv)))
		rc = -1;
	if (!rc && (step = "rename", rename(p.teml, p.neml)))
		rc = -1;
	if (!rc && (step = "sync", sc_commit_wait(sp->commit)))
		rc = -1;
	if (rc) {
		int e = errno;
		/* not answered 250: leave nothing a rescan would deliver */
		if (strcmp(step, "exists"))
			unlink(p.neml), unlink(p.nenv);
		unlink(p.teml), unlink(p.tenv);
		sc_error_set(err, SC_EIO, "spool %s: cannot %s %s: %s", sp->dir,
		             strcmp(step, "exists") ? step : "add", msg->id, strerror(e));
	}
	free(text), free_paths(&p);
	return rc ? SC_EIO : SC_OK;
}

/* An envelope: JSON written by hs_spool_add, bounded like any input. */
static cJSON *read_json(const char *path)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct sc_buf b = {0};
	int bad = sc_buf_read_fd(&b, fd, 1u << 24);
	close(fd);
	cJSON *j = bad ? NULL : hs_json_parse(b.p, b.len);
	sc_buf_free(&b);
	return j;
}

cJSON *hs_spool_envelope(const struct hs_spool *sp, const char *id, struct sc_error *err)
{
	char *path = hs_spool_path(sp, "new", id, ".env");
	cJSON *j = path ? read_json(path) : NULL;
	if (!j)
		sc_error_set(err, SC_EIO, "spool: cannot read the envelope %s", path ? path : id);
	free(path);
	return j;
}

void hs_spool_done(struct hs_spool *sp, const char *id, int retried)
{
	char *eml = hs_spool_path(sp, "new", id, ".eml"),
	     *env = hs_spool_path(sp, "new", id, ".env"),
	     *retry = retried ? hs_spool_path(sp, "new", id, ".retry") : NULL;
	if (eml)
		hs_free_give(sp, eml);
	if (env)
		hs_free_give(sp, env);
	if (retry)
		unlink(retry);
	free(eml), free(env), free(retry);
}
