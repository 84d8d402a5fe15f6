/* sink_maildir: each message into a Maildir (https://cr.yp.to/proto/maildir.html):
 * written in tmp/, made durable, renamed into new/, the rename made
 * durable, so a 250 means the file is on disk under its final name.
 * Above the received bytes, unchanged: Return-Path and, per recipient,
 * X-Original-To and Delivered-To, as a delivery agent writes them. Then
 * one line in DIR/index.jsonl.
 *
 * Durability is the host's group commit (sink.h, sc_commit_wait): every
 * delivery running at once shares one syncfs() for its file in tmp/ and
 * one for its rename and index line, instead of an fsync of the file, of
 * new/ and of the index each (bench/results.md has the CPU per message
 * before and after). The file is durable before its name appears in new/:
 * a crash never leaves a partial message there. */
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

struct maildir {
	char *dir;
	char *host; /* for unique names, '/' and ':' escaped */
	int index_fd;
	int fsync;
	struct sc_commit *commit; /* NULL when fsync is false */
	unsigned long counter;
	pthread_mutex_t mu; /* counter and index writes */
};

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
	if (m->index_fd >= 0)
		close(m->index_fd);
	sc_commit_close(m->commit);
	pthread_mutex_destroy(&m->mu);
	free(m->dir);
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
	const cJSON *dir = cJSON_GetObjectItemCaseSensitive(settings, "dir");
	m->fsync = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(settings, "fsync"));
	int index = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(settings, "index"));
	m->dir = strdup(dir->valuestring);
	m->host = host_part();
	int rc = m->dir && m->host ? SC_OK : sc_error_set(err, SC_ENOMEM, "out of memory");
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
	if (rc) {
		md_free(m);
		return rc;
	}
	*priv = m;
	return SC_OK;
}

/* The envelope lines, then the message file in blocks: memory stays flat. */
static int write_message(int fd, const struct sc_inbound *msg)
{
	struct sc_buf b = {0};
	sc_buf_printf(&b, "Return-Path: <%s>\r\n", msg->mail_from);
	for (size_t i = 0; i < msg->nrcpt; i++)
		sc_buf_printf(&b, "X-Original-To: %s\r\nDelivered-To: %s\r\n", msg->rcpt[i],
		              msg->rcpt[i]);
	int rc = b.p ? sc_write_all(fd, b.p, b.len) : -1;
	sc_buf_free(&b);
	int in = rc ? -1 : open(msg->path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -1;
	char *chunk = malloc(65536);
	ssize_t n = -1;
	while (chunk && (n = read(in, chunk, 65536)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || sc_write_all(fd, chunk, (size_t)n))
			break;
	}
	free(chunk);
	close(in);
	return n == 0 ? 0 : -1;
}

/* The index line, one write() on an O_APPEND descriptor: lines never
 * interleave. Made durable by the commit that follows (or, without a
 * commit, left to the kernel as the message is). */
static void append_index(struct maildir *m, const struct sc_inbound *msg, const char *file)
{
	char *line = maildir_index_line(msg, file);
	pthread_mutex_lock(&m->mu);
	int bad = !line || sc_write_all(m->index_fd, line, strlen(line));
	pthread_mutex_unlock(&m->mu);
	if (bad)
		fprintf(stderr, "%s: maildir: cannot append to index.jsonl: %s\n", msg->id,
		        strerror(errno));
	free(line);
}

static enum sc_sink_verdict md_deliver(void *priv, const struct sc_inbound *msg, char **reply,
                                       struct sc_error *err)
{
	(void)reply;
	struct maildir *m = priv;
	pthread_mutex_lock(&m->mu);
	unsigned long q = ++m->counter;
	pthread_mutex_unlock(&m->mu);
	char *name = sc_asprintf("%lld.M%06ldP%ldQ%lu.%s", msg->received, msg->received_usec,
	                         (long)getpid(), q, m->host);
	char *tmp = name ? sc_asprintf("%s/tmp/%s", m->dir, name) : NULL;
	char *dst = name ? sc_asprintf("%s/new/%s", m->dir, name) : NULL;
	char *file = name ? sc_asprintf("new/%s", name) : NULL;
	enum sc_sink_verdict v = SC_SINK_DEFER;
	int fd = tmp ? open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
	if (!tmp || !dst || !file) {
		sc_error_set(err, SC_ENOMEM, "out of memory");
	} else if (fd < 0) {
		sc_error_set(err, SC_EIO, "cannot create %s: %s", tmp, strerror(errno));
	} else if (write_message(fd, msg) || close(fd) ||
	           (fd = -1, m->commit && sc_commit_wait(m->commit))) {
		fd = -1;
		sc_error_set(err, SC_EIO, "cannot write %s: %s", tmp, strerror(errno));
		unlink(tmp);
	} else if (rename(tmp, dst)) {
		sc_error_set(err, SC_EIO, "cannot move %s into new/: %s", tmp, strerror(errno));
		unlink(tmp);
	} else {
		if (m->index_fd >= 0)
			append_index(m, msg, file);
		if (m->commit && sc_commit_wait(m->commit)) {
			/* not known to be durable: refuse, and take it back so the
			 * client's retry is the only copy */
			sc_error_set(err, SC_EIO, "cannot make %s durable: %s", dst,
			             strerror(errno));
			unlink(dst);
		} else {
			v = SC_SINK_ACCEPT;
		}
	}
	if (fd >= 0)
		close(fd);
	free(name);
	free(tmp);
	free(dst);
	free(file);
	return v;
}

static void md_stop(void *priv, long grace_ms)
{
	(void)grace_ms;
	if (priv)
		md_free(priv);
}

static const struct sc_sink_ops ops = {md_start, md_deliver, md_stop};

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
