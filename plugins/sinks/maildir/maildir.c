/* sink_maildir: each message into a Maildir (https://cr.yp.to/proto/maildir.html):
 * in new/ whole (never seen partial) and durable before the 250. Above
 * the received bytes, unchanged: Return-Path and, per recipient,
 * X-Original-To and Delivered-To, as a delivery agent writes them. Then
 * one line in DIR/index.jsonl.
 *
 * Durability is the host's write-ahead journal (sink.h, sc_journal_*, in
 * DIR/journal/): the file as written to new/ is appended to the journal
 * with its index line; once one fdatasync() shared by every delivery
 * running at once has covered it, the file is written into new/ in one
 * step (write_new: O_TMPFILE, linked in), then the 250. The Maildir's
 * files are flushed later, a second's worth at a time, by the journal's checkpoint. After a
 * crash the journal puts back whatever the flush had not covered
 * (replay.c). A message over MAILDIR_JOURNAL_MAX goes the older way, tmp/
 * and two group commits (sc_commit_wait: syncfs) around its rename, so its bytes
 * are not written twice. Either way a crash never leaves a partial
 * message in new/ that stays there (bench/results.md has the figures). */
#define _GNU_SOURCE /* O_TMPFILE */
#include "maildir.h"
#include "settings_schema.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int mkdir_one(const char *path, struct sc_error *err)
{
	if (sc_dir_make(path))
		return sc_error_set(err, SC_EIO, "delivery.dir: cannot create %s: %s", path,
		                    strerror(errno));
	return SC_OK;
}

/* gethostname() with the two characters a Maildir name cannot hold
 * escaped as the spec says (\057 and \072). */
static char *host_part(void)
{
	char h[256] = "localhost";
	gethostname(h, sizeof h - 1);
	h[sizeof h - 1] = '\0';
	struct sc_buf b = {0};
	for (const char *p = h; *p; p++) {
		if (*p == '/')
			sc_buf_str(&b, "\\057");
		else if (*p == ':')
			sc_buf_str(&b, "\\072");
		else
			sc_buf_add(&b, p, 1);
	}
	return sc_buf_take(&b);
}

static void md_free(struct maildir *m)
{
	sc_journal_close(m->journal);
	if (m->index_fd >= 0)
		close(m->index_fd);
	sc_commit_close(m->commit);
	pthread_mutex_destroy(&m->mu);
	free(m->dir);
	free(m->newdir);
	free(m->host);
	free(m);
}

static int md_start(const cJSON *settings, const struct sc_sink_host *host, void **priv,
                    struct sc_error *err)
{
	(void)host;
	struct maildir *m = calloc(1, sizeof *m);
	if (!m)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	pthread_mutex_init(&m->mu, NULL);
	m->index_fd = -1;
	m->pid = (long)getpid();
	const cJSON *dir = cJSON_GetObjectItemCaseSensitive(settings, "dir");
	m->fsync = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(settings, "fsync"));
	int index = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(settings, "index"));
	m->dir = strdup(dir->valuestring);
	m->newdir = sc_asprintf("%s/new", dir->valuestring);
	m->host = host_part();
	int rc =
	    m->dir && m->newdir && m->host ? SC_OK : sc_error_set(err, SC_ENOMEM, "out of memory");
	static const char *const sub[] = {"", "/tmp", "/new", "/cur"};
	for (size_t i = 0; !rc && i < 4; i++) {
		char *p = sc_asprintf("%s%s", m->dir, sub[i]);
		rc = p ? mkdir_one(p, err) : sc_error_set(err, SC_ENOMEM, "out of memory");
		free(p);
	}
	if (!rc && index) {
		char *p = sc_asprintf("%s/index.jsonl", m->dir);
		m->index_fd = p ? open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600) : -1;
		if (m->index_fd < 0)
			rc = sc_error_set(err, SC_EIO, "delivery.dir: cannot open %s: %s",
			                  p ? p : "index.jsonl", strerror(errno));
		free(p);
	}
	if (!rc && m->fsync)
		rc = sc_commit_open(m->dir, &m->commit, err);
	if (!rc && m->fsync) {
		const struct sc_journal_hooks hooks = {m, maildir_mark, maildir_replay_begin,
		                                       maildir_replay};
		char *p = sc_asprintf("%s/journal", m->dir);
		rc = p ? sc_journal_open(p, &hooks, &m->journal, err)
		       : sc_error_set(err, SC_ENOMEM, "out of memory");
		free(p);
	}
	if (rc) {
		md_free(m);
		return rc;
	}
	*priv = m;
	return SC_OK;
}

/* One delivery: the names it makes, its envelope lines and the message.
 * A message up to SC_INBOUND_LOAD_MAX is read once, after the envelope
 * lines in `env`, and the file, the journal record and the index line's
 * summary are made from memory; a larger one is read from the listener's
 * file for each (twice: into the journal and into new/, or tmp/). */
struct delivery {
	char *name; /* the unique name */
	char *tmp, *dst;
	char *file;        /* "new/<name>", for the index */
	struct sc_buf env; /* Return-Path and per recipient X-Original-To, Delivered-To;
	                      then the message when it is in memory */
	size_t env_len;    /* bytes of envelope lines in env */
	int in;            /* the listener's file; -1 when the message is in env */
};

/* The envelope lines, then the message: from memory, or from the file
 * in blocks with pread() (memory stays flat; the journal reads the same
 * descriptor, so no file position is shared). */
static int write_message(int fd, const struct delivery *d)
{
	if (sc_write_all(fd, d->env.p, d->env.len))
		return -1;
	if (d->in < 0)
		return 0;
	char *chunk = malloc(65536);
	ssize_t n = -1;
	for (off_t off = 0; chunk && (n = pread(d->in, chunk, 65536, off)) != 0;) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || sc_write_all(fd, chunk, (size_t)n))
			break;
		off += n;
	}
	free(chunk);
	return n == 0 ? 0 : -1;
}

/* The message written to tmp/<name> (removed again on failure). */
static int write_tmp(const struct delivery *d)
{
	int fd = open(d->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	int bad = write_message(fd, d);
	int e = errno;
	if (close(fd) && !bad)
		bad = 1, e = errno;
	if (bad)
		unlink(d->tmp);
	errno = e;
	return bad ? -1 : 0;
}

/* Start writing the file out now (not waited for) so that the journal's
 * checkpoint, one syncfs() a second, finds little left to write. Why: a
 * second's worth of Maildir files written by that syncfs() at once kept
 * the disk busy for 30-60 ms, and the journal's fdatasync()s (the 250s)
 * queued behind it: with this, the syncfs() took 6-8 ms and the longest
 * fdatasync() 4-8 ms instead of 8-18 (benchmark VM, 2026-12-03). Best
 * effort: a file system without it is flushed by the syncfs() alone. */
static void start_writeback(int fd)
{
	(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

/* new/<name> made whole in one step, for a message whose durability is
 * the journal's (or not asked for): an unnamed O_TMPFILE inode in new/,
 * written, then linked in under its name, so a reader never sees it
 * partial. Why not tmp/ and rename(): the rename of one delivery and the
 * create of the next both lock tmp/, and a rename between directories
 * takes the file system's rename lock as well; on the benchmark VM the
 * flusher thread spun on those locks for 11 % of serve's CPU (perf,
 * 2026-12-03). Where the file system has no O_TMPFILE (or /proc is not
 * mounted, for the link), tmp/ and rename() as before. -1 with errno
 * when the file is not there. */
static int write_new(const struct delivery *d, const char *newdir)
{
	int fd = open(newdir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (fd >= 0) {
		char self[64];
		snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
		int bad = write_message(fd, d);
		if (!bad) {
			start_writeback(fd);
			bad = linkat(AT_FDCWD, self, AT_FDCWD, d->dst, AT_SYMLINK_FOLLOW);
		}
		int e = errno;
		close(fd);
		errno = e;
		if (!bad)
			return 0;
		int no_proc = e == ENOENT && access("/proc/self/fd", X_OK) != 0;
		errno = e;
		if (!no_proc)
			return -1;
	} else if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
		return -1;
	}
	if (write_tmp(d))
		return -1;
	if (rename(d->tmp, d->dst)) {
		int e = errno;
		unlink(d->tmp);
		errno = e;
		return -1;
	}
	return 0;
}

/* The journal record (when fsync is on) and the index line, in that
 * order under mu, so index.jsonl's lines are in journal order (replay.c
 * relies on it). The index line is one write() on an O_APPEND
 * descriptor: lines never interleave. with_body 0: a message made
 * durable by the group commit, journaled for its index line only.
 * Without fsync the line is left to the kernel, as the file is. */
static int journal_and_index(struct maildir *m, const struct sc_inbound *msg,
                             const struct delivery *d, int with_body, struct sc_journal_ticket *t)
{
	const char *held = d->in < 0 ? d->env.p + d->env_len : NULL;
	char *line = m->index_fd >= 0 ? maildir_index_line(msg, d->file, held) : NULL;
	char *text = NULL;
	if (m->journal) {
		cJSON *meta = cJSON_CreateObject();
		if (meta && cJSON_AddStringToObject(meta, "name", d->name) &&
		    (!line || cJSON_AddStringToObject(meta, "index", line)) &&
		    (with_body || cJSON_AddTrueToObject(meta, "durable")))
			text = cJSON_PrintUnformatted(meta);
		cJSON_Delete(meta);
	}
	int rc = (text || !m->journal) && (line || m->index_fd < 0) ? SC_OK : SC_ENOMEM;
	struct sc_journal_entry e = {text, text ? strlen(text) : 0, NULL, 0, -1, 0};
	if (with_body)
		e.body = d->env.p, e.body_len = d->env.len, e.fd = d->in,
		e.fd_len = d->in < 0 ? 0 : msg->size;
	pthread_mutex_lock(&m->mu);
	if (!rc && m->journal)
		rc = sc_journal_append(m->journal, &e, t);
	if (!rc && line && sc_write_all(m->index_fd, line, strlen(line)))
		sc_log(SC_LOG_ERROR, "%s: maildir: cannot append to index.jsonl: %s", msg->id,
		       strerror(errno));
	pthread_mutex_unlock(&m->mu);
	free(line);
	free(text);
	return rc;
}

/* Make the message new/<name>, durable before the return. */
static enum sc_sink_verdict place(struct maildir *m, const struct sc_inbound *msg,
                                  const struct delivery *d, struct sc_error *err)
{
	struct sc_journal_ticket t;
	const char *why = "write it into new/";
	if (!m->fsync) {
		if (write_new(d, m->newdir))
			goto failed;
		journal_and_index(m, msg, d, 0, &t); /* the index line alone */
		return SC_SINK_ACCEPT;
	}
	if (msg->size <= MAILDIR_JOURNAL_MAX) {
		/* the file's bytes in the journal, flushed there in one shared
		 * fdatasync, before its name is in new/ */
		why = "append it to the journal";
		if (journal_and_index(m, msg, d, 1, &t))
			goto failed;
		int bad = sc_journal_wait(m->journal, &t);
		int written = !bad && write_new(d, m->newdir) == 0;
		int e = errno;
		sc_journal_done(m->journal, &t);
		errno = e;
		why = bad ? "make it durable" : "write it into new/";
		if (bad || !written)
			goto failed;
		return SC_SINK_ACCEPT;
	}
	/* too large for the journal: flushed in tmp/ before its name is in
	 * new/, and the rename flushed before the 250 */
	why = "write it into tmp/";
	if (write_tmp(d))
		goto failed;
	why = "make it durable";
	if (sc_commit_wait(m->commit))
		goto failed;
	why = "move it into new/";
	if (rename(d->tmp, d->dst))
		goto failed;
	if (journal_and_index(m, msg, d, 0, &t)) {
		why = "append it to the journal";
		unlink(d->dst);
		goto failed;
	}
	int bad = sc_commit_wait(m->commit); /* the rename, the record, the index */
	sc_journal_done(m->journal, &t);
	if (bad) {
		/* not known to be durable: refuse, and take it back so the
		 * client's retry is the only copy */
		why = "make it durable";
		unlink(d->dst);
		goto failed;
	}
	return SC_SINK_ACCEPT;
failed:
	sc_error_set(err, SC_EIO, "%s: cannot %s: %s", d->dst, why, strerror(errno));
	unlink(d->tmp); /* this delivery's own name: left only by a large message */
	return SC_SINK_DEFER;
}

/* Everything before place(): the names, the envelope lines, and the
 * message read into memory (or its file opened). SC_OK, or an error in
 * err; d is freed by delivery_free either way. */
static int prepare(struct maildir *m, const struct sc_inbound *msg, struct delivery *d,
                   struct sc_error *err)
{
	pthread_mutex_lock(&m->mu);
	unsigned long q = ++m->counter;
	pthread_mutex_unlock(&m->mu);
	d->in = -1;
	d->name = sc_asprintf("%lld.M%06ldP%ldQ%lu.%s", msg->received, msg->received_usec,
	                      (long)m->pid, q, m->host);
	d->tmp = d->name ? sc_asprintf("%s/tmp/%s", m->dir, d->name) : NULL;
	d->dst = d->name ? sc_asprintf("%s/new/%s", m->dir, d->name) : NULL;
	d->file = d->name ? sc_asprintf("new/%s", d->name) : NULL;
	sc_buf_printf(&d->env, "Return-Path: <%s>\r\n", msg->mail_from);
	for (size_t i = 0; i < msg->nrcpt; i++)
		sc_buf_printf(&d->env, "X-Original-To: %s\r\nDelivered-To: %s\r\n", msg->rcpt[i],
		              msg->rcpt[i]);
	d->env_len = d->env.len;
	if (!d->tmp || !d->dst || !d->file || !d->env.p)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	if (msg->size <= SC_INBOUND_LOAD_MAX ? sc_inbound_load(msg, &d->env) != SC_OK
	                                     : (d->in = open(msg->path, O_RDONLY | O_CLOEXEC)) < 0)
		return sc_error_set(err, SC_EIO, "cannot read %s: %s", msg->path, strerror(errno));
	return SC_OK;
}

static void delivery_free(struct delivery *d)
{
	if (d->in >= 0)
		close(d->in);
	sc_buf_free(&d->env);
	free(d->name), free(d->tmp), free(d->dst), free(d->file);
}

static enum sc_sink_verdict md_deliver(void *priv, const struct sc_inbound *msg, char **reply,
                                       struct sc_error *err)
{
	(void)reply;
	struct maildir *m = priv;
	struct delivery d = {0};
	enum sc_sink_verdict v = prepare(m, msg, &d, err) ? SC_SINK_DEFER : place(m, msg, &d, err);
	delivery_free(&d);
	return v;
}

/* deliver_async: a journaled message, from its record appended on the
 * event loop to its file written into new/ in the flush's callback, on
 * the journal's flusher thread (which the loop, the session's work, does
 * not wait for). */
struct pending {
	struct maildir *m;
	struct delivery d;
	struct sc_journal_ticket t;
	void (*done)(void *, enum sc_sink_verdict, char *, struct sc_error *);
	void *done_arg;
};

static void flushed(void *arg, int rc)
{
	struct pending *p = arg;
	struct sc_error err = SC_ERROR_INIT;
	const char *why = rc ? "make it durable" : "write it into new/";
	int ok = !rc && write_new(&p->d, p->m->newdir) == 0;
	if (!ok)
		sc_error_set(&err, SC_EIO, "%s: cannot %s: %s", p->d.dst, why, strerror(errno));
	sc_journal_done(p->m->journal, &p->t);
	delivery_free(&p->d);
	/* the last use of the sink: once told, the listener may stop it */
	p->done(p->done_arg, ok ? SC_SINK_ACCEPT : SC_SINK_DEFER, NULL, &err);
	sc_error_clear(&err);
	free(p);
}

/* Taken here when nothing in the delivery blocks but the journal's
 * flush: a message read into memory and journaled with its bytes, or any
 * message read into memory when fsync is off (nothing is waited for).
 * A larger one is declined, for md_deliver on a worker. */
static int md_deliver_async(void *priv, const struct sc_inbound *msg,
                            void (*done)(void *, enum sc_sink_verdict, char *, struct sc_error *),
                            void *done_arg)
{
	struct maildir *m = priv;
	if (msg->size > SC_INBOUND_LOAD_MAX || (m->fsync && msg->size > MAILDIR_JOURNAL_MAX))
		return 0;
	struct pending *p = calloc(1, sizeof *p);
	if (!p)
		return 0;
	*p = (struct pending){.m = m, .done = done, .done_arg = done_arg};
	struct sc_error err = SC_ERROR_INIT;
	enum sc_sink_verdict v = SC_SINK_DEFER;
	if (prepare(m, msg, &p->d, &err)) {
		/* v: DEFER */
	} else if (!m->fsync) {
		v = place(m, msg, &p->d, &err);
	} else if (journal_and_index(m, msg, &p->d, 1, &p->t)) {
		sc_error_set(&err, SC_EIO, "%s: cannot append it to the journal: %s", p->d.dst,
		             strerror(errno));
	} else {
		/* out of memory for the wait's queue entry: wait here, once */
		if (sc_journal_wait_async(m->journal, &p->t, flushed, p))
			flushed(p, sc_journal_wait(m->journal, &p->t));
		return 1;
	}
	delivery_free(&p->d);
	free(p);
	done(done_arg, v, NULL, &err);
	sc_error_clear(&err);
	return 1;
}

static void md_stop(void *priv, long grace_ms)
{
	(void)grace_ms;
	if (priv)
		md_free(priv);
}

static const struct sc_sink_ops ops = {md_start, md_deliver, md_stop, md_deliver_async};

const struct sc_plugin sc_plugin = {
    .abi = SC_PLUGIN_ABI,
    .kind = SC_PLUGIN_SINK,
    .name = "maildir",
    .identifier = "maildir",
    .version = "1",
    .description = "Writes each received message into a Maildir, with an index.jsonl line: a "
                   "capture server for playbook development",
    .schema = schema_settings,
    .sink = &ops,
};
