/*
 * Delivery plugins ("sinks") for `smtp-connector serve`: the listener
 * receives a message, streams it to a file, and hands it to the sink
 * named in the configuration (http, maildir, or a third party's).
 *
 * A sink is a plugin (plugin.h) of kind SC_PLUGIN_SINK whose descriptor's
 * `sink` points at a struct sc_sink_ops; its module file is
 * sink_<identifier>. Its `schema` validates its settings object (the
 * "delivery" object of the serve configuration, less "plugin").
 *
 * Threads: the listener runs one event loop; deliver() is called from
 * the listener's delivery worker threads, never on the event loop, so it
 * may block (bounded by its own timeouts) and must be thread-safe. The
 * optional deliver_async() runs on the event loop and must not block; a
 * message it declines goes to deliver(). start() and stop() run on the
 * main thread.
 */
#ifndef SMTP_CONNECTOR_SINK_H
#define SMTP_CONNECTOR_SINK_H

#include <stddef.h>
#include <smtp-connector/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One received message. Runtime-owned, valid until deliver() returns. */
struct sc_inbound {
	const char *id;          /* unique, [A-Za-z0-9._-]; logs and payload "id" */
	const char *path;        /* absolute path of the message file: the bytes
	                            received after DATA, dot-unstuffed, CRLF line
	                            ends, without the final ".". A sink may rename
	                            or link it (same file system as its spool);
	                            the runtime unlinks whatever is left after
	                            deliver() returns, or (after an accept)
	                            overwrites it with a later message (so a
	                            sink keeps no fd on it past deliver()). */
	size_t size;             /* bytes in the file */
	const char *mail_from;   /* reverse-path without <>; "" for <> */
	const char *const *rcpt; /* forward-paths without <>, nrcpt of them */
	size_t nrcpt;
	const char *client_addr; /* "127.0.0.1", "::1" */
	int client_port;
	const char *helo;        /* the EHLO/HELO argument */
	int tls;                 /* 1 when the message came over TLS */
	const char *tls_version; /* "TLSv1.3" or NULL */
	const char *auth_user;   /* authenticated user, or NULL */
	long long received;      /* time the end of DATA was read, Unix seconds */
	long received_usec;      /* and its microseconds */
};

/* What the SMTP client is told at the end of DATA. */
enum sc_sink_verdict {
	SC_SINK_ACCEPT = 0, /* 250: the message is durably the sink's */
	SC_SINK_DEFER,      /* 451 4.3.0: the client keeps it and retries */
	SC_SINK_REJECT      /* 554 5.x: permanent refusal */
};

/* What the runtime lends a sink. */
struct sc_sink_host {
	const char *domain;    /* the listener's --domain */
	const char *state_dir; /* a directory the sink may use (spool) */
	int verbose;
};

struct sc_sink_ops {
	/* Parse `settings` (already validated against the descriptor's
	 * schema), open stores, start background workers. *priv is the
	 * sink's state. SC_OK, SC_EINPUT (a setting is unusable: name it),
	 * SC_EIO (a store cannot be opened), SC_ENOMEM. */
	int (*start)(const cJSON *settings, const struct sc_sink_host *host, void **priv,
	             struct sc_error *err);
	/* Deliver one message. Returns a verdict; *reply may be set to an
	 * allocated text for the SMTP reply after the code (no CR/LF), else
	 * the runtime writes a standard one. `err` carries the reason for
	 * the log when the verdict is not ACCEPT. Thread-safe, may block. */
	enum sc_sink_verdict (*deliver)(void *priv, const struct sc_inbound *msg, char **reply,
	                                struct sc_error *err);
	/* Stop: let work in flight end within grace_ms, keep everything that
	 * was accepted durable, free priv. May be NULL. */
	void (*stop)(void *priv, long grace_ms);
	/* Optional (NULL: every message goes to deliver()). The same
	 * delivery, started on the listener's event loop thread, for a sink
	 * that can take a message without blocking: e.g. append it to its
	 * journal and finish in sc_journal_wait_async()'s callback. Returns
	 * 0 when it declines the message (too large, a path that blocks):
	 * the runtime then calls deliver() on a worker thread, as without
	 * this op. Returns 1 when it took it: it then calls
	 * done(done_arg, verdict, reply, err) exactly once, from any thread,
	 * inside this call or later (reply and err as deliver() sets them:
	 * the runtime takes the reply and err's message, and clears err).
	 * It must not wait for the network, a flush or a lock held across
	 * either: every session waits while it runs. It may read msg->path;
	 * msg and its file stay valid until done is called. Why: a worker
	 * thread per message that sleeps until the shared flush, then wakes
	 * the loop, cost 3.7 context switches per message (doc/serve.md). */
	int (*deliver_async)(void *priv, const struct sc_inbound *msg,
	                     void (*done)(void *done_arg, enum sc_sink_verdict verdict, char *reply,
	                                  struct sc_error *err),
	                     void *done_arg);
};

/* ------------------------------------------------------------------ */
/* Durability for sinks: a group commit (host API, core/serve/commit.c)  */
/* ------------------------------------------------------------------ */

/* A 250 may only follow a flush to stable storage, and one flush per
 * message was most of a sink's cost. A group commit lets every delivery
 * running at once share one: syncfs() of the file system that holds
 * `dir`, which makes every file written and every name created or renamed
 * on it durable (data, inodes and directories; the disk cache flushed).
 * The bundled sinks use it for what they keep out of the journal below
 * (messages over 4 MiB, the move to failed/): per small message the
 * journal is several times cheaper. Opaque; thread-safe. */
struct sc_commit;

/* Open a group commit for the file system of the directory `dir`.
 * SC_OK with *out set (sc_commit_close it), SC_EIO (cannot open dir),
 * SC_ENOMEM. */
int sc_commit_open(const char *dir, struct sc_commit **out, struct sc_error *err);
/* Return once everything the calling thread wrote, created or renamed on
 * that file system before the call is on stable storage: it waits for a
 * syncfs() that began after the call, and threads that call while one
 * runs share the next. SC_OK, or SC_EIO with errno set (the flush
 * failed: nothing written since the last success may be relied on). */
int sc_commit_wait(struct sc_commit *c);
/* Free c (no thread may be waiting in it). NULL is allowed. */
void sc_commit_close(struct sc_commit *c);

/* ------------------------------------------------------------------ */
/* Durability for sinks: a write-ahead journal (core/serve/journal.c)   */
/* ------------------------------------------------------------------ */

/* The group commit above still writes every file's data, inode and
 * directory blocks before each 250, and that per-file writeback, not the
 * flush, was most of a durable delivery (bench/results.md). A journal
 * makes a delivery durable with one append to one file and one
 * fdatasync() shared by every delivery running at once; the sink's own
 * files are written as usual but made durable later, thousands at a
 * time, by a checkpoint (one syncfs() about once a second, on a thread of
 * the journal's own), after which the journal file that covered them is
 * retired (kept for reuse, or deleted). After a crash, sc_journal_open() hands the sink every
 * record that no checkpoint covered, in order, to redo (idempotently).
 *
 * A record is the sink's own text (`meta`, e.g. JSON naming the files it
 * makes) and optionally the bytes of a file (`body`, e.g. the message),
 * checked on replay by a SHA-256 over the record: a torn or altered
 * record ends the replay of its file (nothing after it was answered). A
 * record only holds what is needed to redo the delivery, so a sink keeps
 * large messages (over a few MiB) out of it and makes those durable with
 * sc_commit_wait() as before, journaling only their meta.
 * Opaque; thread-safe. */
struct sc_journal;

/* What sc_journal_append() hands back: where the record ends. */
struct sc_journal_ticket {
	void *file;             /* the journal file (opaque) */
	unsigned long long end; /* the offset after the record */
};

/* A sink's part in the journal; arg is passed back to each. */
struct sc_journal_hooks {
	void *arg;
	/* A number kept in each new journal file's header (e.g. the size of
	 * an index the sink appends to with each record, under the same lock
	 * as its appends); called with the journal's lock held, from inside
	 * sc_journal_append(). NULL: 0. */
	unsigned long long (*mark)(void *arg);
	/* Replay, at open: first replay_begin with the oldest leftover
	 * file's mark (called even when no record survived), then replay for
	 * each valid record in order: meta (not NUL-terminated) and the body,
	 * body_len bytes at body_off of fd (read with pread). SC_OK, or an
	 * error (SC_EIO, SC_ENOMEM) that makes sc_journal_open() fail and
	 * keep the journal for the next start. Either may be NULL. */
	int (*replay_begin)(void *arg, unsigned long long mark, struct sc_error *err);
	int (*replay)(void *arg, const char *meta, size_t meta_len, int fd,
	              unsigned long long body_off, unsigned long long body_len,
	              struct sc_error *err);
};

/* Open the journal in directory `dir` (created 0700): replay what an
 * earlier process left (hooks), make the sink's redone work durable
 * (syncfs), remove the old files, start a new file and the checkpoint
 * thread. One process per dir (the caller holds a lock on it). SC_OK with
 * *out set; SC_EIO (a file cannot be read or written: named); SC_ENOMEM;
 * SC_EINTERNAL (OpenSSL offers no SHA-256); or a replay hook's error. */
int sc_journal_open(const char *dir, const struct sc_journal_hooks *hooks, struct sc_journal **out,
                    struct sc_error *err);
/* What a record holds: the sink's meta, then a body made of `body` (in
 * memory) followed by the first fd_len bytes of fd (read with pread from
 * offset 0, so the caller's file position is untouched; fd -1: none).
 * Replay hands the body back as one range. */
struct sc_journal_entry {
	const char *meta;
	size_t meta_len;
	const void *body;
	size_t body_len;
	int fd;
	unsigned long long fd_len;
};

/* Append a record. Records are in the order of the calls, so a caller
 * that holds its own lock around the call orders its own side effects
 * with them. Durable only after sc_journal_wait(). SC_OK with *t set
 * (then sc_journal_done(t) must follow, once), SC_EIO with errno (nothing
 * of the record counts; e.g. fd shorter than fd_len), SC_ENOMEM. */
int sc_journal_append(struct sc_journal *j, const struct sc_journal_entry *e,
                      struct sc_journal_ticket *t);
/* Return once the record of t (and every record before it) is on stable
 * storage: one fdatasync() shared by every caller waiting at once. SC_OK,
 * or SC_EIO with errno (the flush failed: the record may be lost). */
int sc_journal_wait(struct sc_journal *j, const struct sc_journal_ticket *t);
/* What sc_journal_wait_async() calls: rc as sc_journal_wait() returns it
 * (errno set too). */
typedef void (*sc_journal_flushed_fn)(void *arg, int rc);
/* The same wait without blocking, for deliver_async(): done(arg, rc) is
 * called once, from the journal's flusher thread, when the record of t is
 * on stable storage or its flush failed; never from inside this call.
 * The flusher takes every wait queued since its last pass and shares one
 * fdatasync() among them (and with sc_journal_wait()'s callers), so a
 * caller that appends and queues from one thread needs no thread per
 * record. done runs on the flusher, so it should be short; it may call
 * any sc_journal_* function but sc_journal_close(). sc_journal_close()
 * calls back every wait still queued first. SC_OK, or SC_ENOMEM (done
 * will not be called). */
int sc_journal_wait_async(struct sc_journal *j, const struct sc_journal_ticket *t,
                          sc_journal_flushed_fn done, void *arg);
/* The caller has done what the record describes (its renames): the next
 * checkpoint may cover it. Once per successful append, success or not. */
void sc_journal_done(struct sc_journal *j, const struct sc_journal_ticket *t);
/* For a replay hook. Does the regular file at `path` hold exactly the
 * body_len bytes at body_off of the journal's fd? A predicate, not a
 * code: 1 or 0 (0 also when it is missing or cannot be read). */
int sc_journal_body_matches(const char *path, int fd, unsigned long long body_off,
                            unsigned long long body_len);
/* For a replay hook: `tmp` (created 0600, or cut) gets text_len bytes of
 * `text`, then the len bytes at off of the journal's fd (fd -1: none),
 * and is renamed to `dst`; made durable by the syncfs() that follows the
 * replay. SC_OK; SC_EIO with errno (a read, write or the rename failed;
 * the journal shorter than said is EIO); SC_ENOMEM. tmp is removed on
 * failure. */
int sc_journal_restore(const char *tmp, const char *dst, const void *text, size_t text_len, int fd,
                       unsigned long long off, unsigned long long len);
/* Stop the checkpoint thread, checkpoint everything (no append may be in
 * flight: every ticket done) and free j. NULL is allowed. */
void sc_journal_close(struct sc_journal *j);

/* ------------------------------------------------------------------ */
/* Reading a received message (host API, core/inbound/)                 */
/* ------------------------------------------------------------------ */

/* Parse the message file at `path` into a new JSON object:
 *   "subject"     decoded from RFC 2047 (UTF-8), "" when absent
 *   "message_id"  without <>, or null
 *   "headers"     object: each header name (as first written) -> its value
 *                 unfolded and RFC 2047-decoded; a name seen more than once
 *                 (in any case) -> an array of values in order
 *   "body"        the text body decoded from its transfer encoding and
 *                 charset to UTF-8, line ends as "\n": the text/plain part
 *                 (the text/plain alternative of multipart/alternative; the
 *                 first text/plain part of a multipart/mixed, at any depth),
 *                 else the text of the first text/html part (its HTML
 *                 source), else ""
 *   "body_type"   "text/plain", "text/html", or null when there is no body
 *   "attachments" array of {"name", "content_type", "size"} (name: from
 *                 Content-Disposition filename, else Content-Type name,
 *                 RFC 2231 and RFC 2047 forms decoded, "" when none; size:
 *                 decoded bytes, a line end of a part that is not base64
 *                 counted as one) for every part that is not the chosen body
 *                 and is an attachment (Content-Disposition: attachment) or
 *                 a non-text leaf; message/rfc822 parts are one leaf each
 *   "body_truncated"        true when the body was cut at max_body bytes
 *                           (before a whole character); absent otherwise
 *   "headers_truncated"     true when the header section was over 1 MiB
 *                           (or 10,000 fields) and the rest left out
 *   "attachments_truncated" true when there were over 1,000 entries
 * Charsets are converted with iconv; an unknown or missing charset (and
 * us-ascii) is read as UTF-8; Shift_JIS as Windows-31J. Bytes that are
 * not valid UTF-8 after decoding, and NUL, are replaced by U+FFFD, so
 * the object always serialises to valid UTF-8 JSON. Reads the file as a
 * stream: memory is bounded by `max_body` plus a header section (1 MiB);
 * attachments are counted, not held; multiparts nest to 32 levels (a
 * deeper one is one opaque part). A message with HTML and no text/plain
 * part is read twice (the HTML is decoded in a second pass).
 * SC_OK with *out set (the caller's, cJSON_Delete), SC_EIO (cannot open
 * or read), SC_ENOMEM. A malformed message is never an error: whatever
 * could be read is returned. Thread-safe. */
int sc_inbound_summary(const char *path, size_t max_body, cJSON **out, struct sc_error *err);
/* The largest message sc_inbound_load() reads into memory. */
#define SC_INBOUND_LOAD_MAX (256u << 10)
/* Append the message's bytes (m->size of them, up to SC_INBOUND_LOAD_MAX)
 * to b, reading its file once: a sink that writes them to its file and
 * its journal and summarises them reads the file once. SC_OK; SC_EIO
 * with errno (EFBIG: larger than the bound; the file is missing or
 * shorter than m->size); SC_ENOMEM. b keeps what it held before. */
int sc_inbound_load(const struct sc_inbound *m, struct sc_buf *b);
/* The same for a message a sink already holds in memory: the len bytes
 * at p, as the message file has them, walked in place (p is only read).
 * Reading the file again costs a sink that has read it once an open, a
 * stat and three reads. SC_OK with *out set, or SC_ENOMEM (nothing is
 * read, so never SC_EIO). */
int sc_inbound_summary_mem(const void *p, size_t len, size_t max_body, cJSON **out,
                           struct sc_error *err);

#ifdef __cplusplus
}
#endif
#endif
