/* The spool: what was answered 250 survives a crash. Each message is
 * <id>.eml (the received bytes) beside <id>.env (its envelope, JSON),
 * written into tmp/ (or a recycled file in free/) and renamed into new/
 * in that order, so that new/<id>.eml always has its envelope; <id>.retry
 * holds the attempts so far. failed/ keeps refused and expired messages
 * with <id>.reason.
 *
 * Durability is the host's write-ahead journal (sink.h, sc_journal_*, in
 * <dir>/journal/): a message up to HS_JOURNAL_MAX is appended to it as
 * one record (envelope and bytes), and the 250 waits for one fdatasync()
 * shared by every delivery running at once; the spool files themselves
 * are written without a flush and made durable later, a second's worth
 * at a time, by the journal's checkpoint. Why: making each small file
 * durable costs its data, inode and directory blocks before the 250, and
 * even shared by a group commit that was 3,800-8,200 files/s on the
 * benchmark VM, against 14,000-67,000 journal records/s
 * (bench/durability.sh). After a crash
 * the journal puts back whatever the checkpoint had not covered
 * (spool_replay.c), before the rescan. A delivered message is journaled
 * as "done" without waiting (lost, the message is POSTed again with the
 * same Idempotency-Key: at-least-once). A larger message goes the older
 * way, two group commits (sc_commit_wait: syncfs) around its renames, so
 * that its bytes are not written twice. */
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
	if (!rc)
		rc = sc_commit_open(dir, &sp->commit, err);
	if (!rc) {
		/* replays into new/ what no checkpoint covered, before the rescan */
		const struct sc_journal_hooks hooks = {sp, NULL, NULL, hs_spool_replay};
		char *p = sc_asprintf("%s/journal", dir);
		rc = p ? sc_journal_open(p, &hooks, &sp->journal, err)
		       : sc_error_set(err, SC_ENOMEM, "out of memory");
		free(p);
	}
	return rc;
}

/* After the workers have stopped: no append may be in flight. */
void hs_spool_close(struct hs_spool *sp)
{
	sc_journal_close(sp->journal);
	sp->journal = NULL;
	sc_commit_close(sp->commit);
	sp->commit = NULL;
	hs_free_close(sp);
	if (sp->lock_fd >= 0)
		close(sp->lock_fd);
	free(sp->dir);
	sp->dir = NULL;
	sp->lock_fd = -1;
}

int hs_spool_write_file(const char *path, const char *text, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	size_t done = 0;
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

/* The message (`in`, read from its position) into `dst`, copied (2 KB
 * cost less than a new inode): a recycled file when one is free
 * (hs_free_take), else in tmp/; cut to length, *len set to it. Not made
 * durable here (the journal or the caller's commit does). Not a hard
 * link: the listener may reuse its file once deliver() returns, and
 * every spool file must be ours to recycle. */
static int place_message(int in, const char *dst, unsigned long long *len)
{
	int out = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	int rc = out < 0 ? -1 : copy_fd(in, out);
	off_t end = rc ? 0 : lseek(out, 0, SEEK_CUR);
	if (!rc)
		rc = end < 0 ? -1 : ftruncate(out, end);
	int e = errno;
	if (out >= 0 && close(out) && !rc)
		rc = -1;
	errno = e;
	*len = rc ? 0 : (unsigned long long)end;
	return rc;
}

int hs_spool_paths(struct hs_spool *sp, const char *id, struct hs_paths *p)
{
	/* a recycled file is written where it lies in free/ (as private as
	 * tmp/, emptied at start) and renamed from there into new/ */
	*p = (struct hs_paths){hs_free_take(sp), hs_spool_path(sp, "new", id, ".env"),
	                       hs_free_take(sp), hs_spool_path(sp, "new", id, ".eml")};
	if (!p->tenv)
		p->tenv = hs_spool_path(sp, "tmp", id, ".env");
	if (!p->teml)
		p->teml = hs_spool_path(sp, "tmp", id, ".eml");
	if (p->tenv && p->nenv && p->teml && p->neml)
		return SC_OK;
	hs_spool_paths_free(p);
	return SC_ENOMEM;
}

void hs_spool_paths_free(struct hs_paths *p)
{
	free(p->tenv), free(p->nenv), free(p->teml), free(p->neml);
	*p = (struct hs_paths){NULL, NULL, NULL, NULL};
}

char *hs_spool_record_meta(const char *op, const char *id, const char *env_text)
{
	if (!hs_id_ok(id))
		return NULL; /* a file someone else put in new/: not ours to journal */
	return env_text ? sc_asprintf("{\"op\":\"%s\",\"id\":\"%s\",\"env\":%s}", op, id, env_text)
	                : sc_asprintf("{\"op\":\"%s\",\"id\":\"%s\"}", op, id);
}

int hs_spool_append_done(struct hs_spool *sp, const char *id, struct sc_journal_ticket *t)
{
	char *meta = hs_spool_record_meta("done", id, NULL);
	if (!meta) {
		errno = ENOMEM;
		return -1;
	}
	const struct sc_journal_entry e = {meta, strlen(meta), NULL, 0, -1, 0};
	int rc = sc_journal_append(sp->journal, &e, t) ? -1 : 0;
	int en = errno;
	free(meta);
	errno = en;
	return rc;
}

int hs_spool_journal_done(struct hs_spool *sp, const char *id)
{
	struct sc_journal_ticket t;
	if (hs_spool_append_done(sp, id, &t))
		return -1;
	int rc = sc_journal_wait(sp->journal, &t) ? -1 : 0;
	int en = errno;
	sc_journal_done(sp->journal, &t);
	errno = en;
	return rc;
}

/* One add in progress: its paths, its envelope text and the listener's
 * file (copied into the spool, and into the journal from offset 0). */
struct add {
	struct hs_paths p;
	char *env_text;
	int in;
	unsigned long long len; /* bytes copied */
	const char *step;       /* what failed, for the error */
	int renamed;            /* a name may be in new/ */
};

/* Small message: one record holding its envelope and bytes, flushed
 * (shared fdatasync), then the renames; the files themselves are made
 * durable by the journal's checkpoint. 0 or -1 with errno, a->step set. */
static int commit_journaled(struct hs_spool *sp, const struct sc_inbound *msg, struct add *a)
{
	a->step = "journal";
	char *meta = hs_spool_record_meta("add", msg->id, a->env_text);
	if (!meta) {
		errno = ENOMEM;
		return -1;
	}
	const struct sc_journal_entry e = {meta, strlen(meta), NULL, 0, a->in, a->len};
	struct sc_journal_ticket t;
	int rc = sc_journal_append(sp->journal, &e, &t) ? -1 : 0;
	free(meta);
	if (rc)
		return -1;
	if ((a->step = "sync", sc_journal_wait(sp->journal, &t)))
		rc = -1;
	if (!rc && (a->renamed = 1, a->step = "rename", rename(a->p.tenv, a->p.nenv)))
		rc = -1;
	if (!rc && rename(a->p.teml, a->p.neml))
		rc = -1;
	int en = errno;
	if (rc)
		/* the record may be on disk: take it back before the 451, or a
		 * replay would deliver what the client is told to retry */
		hs_spool_journal_done(sp, msg->id);
	sc_journal_done(sp->journal, &t);
	errno = en;
	return rc;
}

/* Large message: both files durable before either name is in new/ (a
 * crash never leaves a partial message there for the rescan to POST),
 * then the renames made durable. 0 or -1 with errno, a->step set. */
static int commit_synced(struct hs_spool *sp, struct add *a)
{
	if ((a->step = "sync", sc_commit_wait(sp->commit)))
		return -1;
	a->renamed = 1;
	if ((a->step = "rename", rename(a->p.tenv, a->p.nenv)) || rename(a->p.teml, a->p.neml))
		return -1;
	return (a->step = "sync", sc_commit_wait(sp->commit)) ? -1 : 0;
}

int hs_spool_add(struct hs_spool *sp, const struct sc_inbound *msg, const cJSON *env,
                 struct sc_error *err)
{
	struct add a = {.in = -1, .step = "add"};
	if (hs_spool_paths(sp, msg->id, &a.p))
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	if (!(a.env_text = cJSON_PrintUnformatted(env))) {
		hs_spool_paths_free(&a.p);
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	struct stat st;
	int rc = lstat(a.p.neml, &st) == 0 ? -1 : 0;
	if (rc)
		errno = EEXIST;
	if (!rc && (a.step = "read", (a.in = open(msg->path, O_RDONLY | O_CLOEXEC)) < 0))
		rc = -1;
	if (!rc &&
	    (a.step = "write", hs_spool_write_file(a.p.tenv, a.env_text, strlen(a.env_text))))
		rc = -1;
	if (!rc && (a.step = "copy", place_message(a.in, a.p.teml, &a.len)))
		rc = -1;
	if (!rc)
		rc = msg->size <= HS_JOURNAL_MAX && a.len <= HS_JOURNAL_MAX
		         ? commit_journaled(sp, msg, &a)
		         : commit_synced(sp, &a);
	if (rc) {
		int e = errno;
		/* not answered 250: leave nothing a rescan would deliver (an
		 * existing new/<id>.eml is not ours to remove) */
		if (a.renamed)
			unlink(a.p.neml), unlink(a.p.nenv);
		if (strcmp(a.step, "add"))
			unlink(a.p.teml), unlink(a.p.tenv);
		sc_error_set(err, SC_EIO, "spool %s: cannot %s %s: %s", sp->dir, a.step, msg->id,
		             strerror(e));
	}
	if (a.in >= 0)
		close(a.in);
	free(a.env_text), hs_spool_paths_free(&a.p);
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
	/* not waited for: lost in a crash, it only means one more POST with
	 * the same Idempotency-Key (at-least-once); appended before the
	 * files go, so a replay's "add" of them is always followed by it */
	struct sc_journal_ticket t;
	int journaled = hs_spool_append_done(sp, id, &t) == 0;
	if (!journaled)
		sc_log(SC_LOG_WARN,
		       "%s: delivered, but cannot journal it: %s; after a crash it may be POSTed "
		       "again",
		       id, strerror(errno));
	if (eml)
		hs_free_give(sp, eml);
	if (env)
		hs_free_give(sp, env);
	if (retry)
		unlink(retry);
	if (journaled)
		sc_journal_done(sp->journal, &t);
	free(eml), free(env), free(retry);
}
