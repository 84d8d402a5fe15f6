/* The http delivery plugin's internals (sink_http): settings, the request
 * built for one message, one POST and its outcome, the spool, and the
 * delivery thread. Only sink_http.c's descriptor is exported. */
#ifndef SC_HTTP_SINK_H
#define SC_HTTP_SINK_H

#include <smtp-connector/plugin.h>
#include <smtp-connector/sink.h>
#include <smtp-connector/template.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

/* ---- settings (settings.c) ---------------------------------------- */

struct hs_header {
	char *name;
	struct sc_template *value;
};

struct hs_config {
	struct sc_template *url;
	struct hs_header *headers; /* the settings' "headers", in order */
	size_t nheaders;
	struct sc_template *body; /* NULL: the payload object as JSON */
	char *content_type;
	enum sc_escape escape; /* for body templates, from content_type */
	int sync;
	char *spool_dir; /* absolute or as given; NULL in sync mode */
	double timeout;
	char *ca_file; /* NULL: system store */
	int verify;
	double max_age, retry_base, retry_max; /* seconds */
	int workers;
	size_t max_body;
};

/* Parse validated settings into cfg (zeroed by the caller). SC_EINPUT
 * names the setting; SC_ENOMEM. hs_config_free also after failure. */
int hs_config_parse(const cJSON *settings, const struct sc_sink_host *host, struct hs_config *cfg,
                    struct sc_error *err);
void hs_config_free(struct hs_config *cfg);

/* ---- one request (request.c) --------------------------------------- */

/* The envelope of a message as JSON (what the spool keeps beside it):
 * id, received, received_usec, mail_from, rcpt, client_addr, client_port,
 * helo, tls, tls_version, auth_user. NULL when out of memory. */
cJSON *hs_envelope(const struct sc_inbound *msg);

struct hs_request {
	char *url;
	struct curl_slist *headers;
	char *body;
	size_t body_len;
};

/* Build the request for a message with envelope `env`: its bytes `held`
 * (len of them) when in memory, else read from the file at `path`.
 * SC_EINPUT: a template could not be rendered or rendered an unusable
 * URL/header (permanent); SC_EIO: the file cannot be read; SC_ENOMEM. */
int hs_request_build(const struct hs_config *cfg, const cJSON *env, const char *path,
                     const char *held, size_t len, struct hs_request *req, struct sc_error *err);
void hs_request_free(struct hs_request *req);

/* ---- one POST (post.c) --------------------------------------------- */

enum hs_result {
	HS_DELIVERED, /* 2xx */
	HS_RETRY,     /* 5xx, 408, 429, connection trouble, timeout */
	HS_REFUSED,   /* any other answer: permanent */
	HS_ABORTED    /* stop()'s grace ran out mid-request */
};

struct hs_outcome {
	enum hs_result result;
	long status;      /* HTTP status, 0 when none came */
	long retry_after; /* seconds asked by Retry-After, or -1 */
	char *reason;     /* allocated, one line: "HTTP 500", "connect: ..." */
};

/* A reusable easy handle with the TLS rules, the timeout and the abort
 * check (`stop_at`: monotonic ms after which a transfer is abandoned; 0
 * while not stopping). NULL + err on failure. */
void *hs_curl_new(const struct hs_config *cfg, const _Atomic long long *stop_at,
                  struct sc_error *err);
void hs_curl_free(void *curl);
/* POST req on curl (its connection is kept for the next one); out filled
 * on every path (free out->reason). */
void hs_post(void *curl, const struct hs_request *req, struct hs_outcome *out);

/* hs_post in two halves, for a transfer run by a multi handle: setup
 * points curl at req and t (both must outlive the transfer); judge takes
 * the transfer's CURLcode, fills out as hs_post does and lets go of req
 * and t. */
#define HS_ERRBUF 256 /* CURL_ERROR_SIZE */
struct hs_transfer {
	struct sc_buf excerpt; /* the start of the answer's body */
	char errbuf[HS_ERRBUF];
};
void hs_post_setup(void *curl, const struct hs_request *req, struct hs_transfer *t);
void hs_post_judge(void *curl, int result, struct hs_transfer *t, struct hs_outcome *out);

/* ---- time and chance (util.c) --------------------------------------- */

long long hs_now_ms(void); /* CLOCK_MONOTONIC */
/* cJSON_ParseWithLength, safe to call from several threads at once. */
cJSON *hs_json_parse(const char *text, size_t len);
double hs_wall(void); /* Unix time with fraction */
/* A message id usable in spool file names: [A-Za-z0-9._-], not starting
 * with '.', at most 200 bytes (it names files: never a path). */
int hs_id_ok(const char *id);
double hs_random_unit(void); /* uniform in [0, 1), from OpenSSL's RAND */
/* Full-jitter backoff after `attempts` failures (1 = the first). */
double hs_backoff(const struct hs_config *cfg, unsigned attempts);

/* ---- the spool (spool.c) -------------------------------------------- */

/* A 250 waits for the message's journal record (envelope and bytes) to be
 * flushed, one fdatasync() shared by every delivery at once, not for the
 * spool's files: their writeback per file was the cost (3,800-8,200
 * small files/s made durable a batch at a time on the benchmark VM, vs
 * 14,000-67,000 journal records/s: bench/durability.sh). The journal's checkpoint flushes the
 * files later; after a crash, hs_spool_replay puts back what it had not.
 * spool.c's opening comment has the whole recipe. */

struct hs_spool {
	char *dir;
	int lock_fd;
	/* envelope files kept for reuse (spool_free.c) */
	pthread_mutex_t free_mu;
	int free_ready;
	unsigned long long *free_ids, next_free;
	size_t nfree;
	/* the host's group commit (sink.h): syncfs() shared by deliveries;
	 * for messages over HS_JOURNAL_MAX and for moves to failed/ */
	struct sc_commit *commit;
	/* the host's write-ahead journal (sink.h) in <dir>/journal: what
	 * makes a message up to HS_JOURNAL_MAX durable before its 250 */
	struct sc_journal *journal;
};

/* Messages up to this size are made durable by one journal record that
 * holds their bytes, so they are written twice (spool file and journal);
 * above it the copy costs more than the per-file writeback it saves, and
 * they go the older way, two group commits around their renames. */
#define HS_JOURNAL_MAX (4u << 20)

/* Create tmp/, new/, failed/ (0700), hold the spool's lock (one process
 * per spool) and open the journal, which first redoes what an earlier
 * process left in it (spool_replay.c): call before hs_spool_scan. SC_EIO
 * naming the directory; a replay's error. */
int hs_spool_open(struct hs_spool *sp, const char *dir, struct sc_error *err);
void hs_spool_close(struct hs_spool *sp);
/* Durably add the message: envelope and message file written into tmp/
 * (or recycled files in free/); up to HS_JOURNAL_MAX one journal record
 * (envelope and bytes) flushed, then the renames into new/; larger, a
 * group commit, the renames, another group commit. SC_EIO/SC_ENOMEM; on
 * failure nothing is left that a restart would deliver. */
int hs_spool_add(struct hs_spool *sp, const struct sc_inbound *msg, const cJSON *env,
                 struct sc_error *err);
/* Write n bytes of text to path, not made durable (the journal or the
 * caller's commit does); 0 or -1 with errno. The file may be a recycled
 * one (spool_free.c): overwritten in place and cut to length, which
 * reuses its block instead of freeing and allocating one. */
int hs_spool_write_file(const char *path, const char *text, size_t n);
/* {"op": op, "id": id[, "env": env]}: a journal record's meta
 * (spool_replay.c reads it), from the envelope already printed as JSON
 * (env_text) rather than printed again. The id needs no escaping:
 * deliver() takes only ids hs_id_ok() allows. NULL when out of memory. */
char *hs_spool_record_meta(const char *op, const char *id, const char *env_text);
/* Append the "done" record of id, not waited for; *t for
 * sc_journal_done. 0 or -1 with errno. */
int hs_spool_append_done(struct hs_spool *sp, const char *id, struct sc_journal_ticket *t);
/* Where a message's two files are written (a recycled file from free/,
 * else tmp/<id>.env and .eml) and the names in new/ they are renamed
 * to: envelope first, so new/<id>.eml always has its envelope. */
struct hs_paths {
	char *tenv, *nenv, *teml, *neml;
};
/* SC_OK with all four set (hs_spool_paths_free), or SC_ENOMEM (none). */
int hs_spool_paths(struct hs_spool *sp, const char *id, struct hs_paths *p);
void hs_spool_paths_free(struct hs_paths *p);
/* "<dir>/new/<id>.<ext>" (allocated) */
char *hs_spool_path(const struct hs_spool *sp, const char *box, const char *id, const char *ext);
/* The envelope of a spooled message (caller frees), or NULL + err. */
cJSON *hs_spool_envelope(const struct hs_spool *sp, const char *id, struct sc_error *err);
/* Delivered: journal it (not waited for: a lost record only means the
 * message is POSTed again after a crash, with the same Idempotency-Key)
 * and remove every file of the message (`retried`: it may have a retry
 * state). */
void hs_spool_done(struct hs_spool *sp, const char *id, int retried);

/* Envelope and message files are recycled through free/ rather than created and
 * deleted for every message: on a file system that checks each new inode
 * against recently deleted ones (ext4 without a journal) creating them
 * was a fifth of serve's CPU. */
int hs_free_open(struct hs_spool *sp, struct sc_error *err);
/* The path of a recycled file, now the caller's (free it; write it,
 * rename or unlink it), or NULL when none is free. */
char *hs_free_take(struct hs_spool *sp);
/* Keep the file at `src` for reuse (or remove it when enough are kept). */
void hs_free_give(struct hs_spool *sp, const char *src);
void hs_free_close(struct hs_spool *sp);
/* Append a "done" record for id and wait for it: it takes back an "add"
 * whose message was not answered 250, or was moved to failed/, so that a
 * replay cannot put it into new/. 0 or -1 with errno. */
int hs_spool_journal_done(struct hs_spool *sp, const char *id);
/* Refused or expired: move into failed/ with <id>.reason (one line),
 * durably, then journal it as done (waited for: a replay must not put it
 * back into new/). */
int hs_spool_fail(struct hs_spool *sp, const char *id, const char *reason, struct sc_error *err);
/* Remember a retry (attempts so far, when next as Unix time). Best
 * effort: a lost state only means an earlier retry. */
void hs_spool_retry_state(struct hs_spool *sp, const char *id, unsigned attempts, double next,
                          const char *last);
/* Call fn for each message in new/ (after clearing tmp/ and dropping
 * envelopes without their message), with its retry state. */
/* The journal's replay hook (sc_journal_hooks.replay; arg: the spool):
 * "add" puts new/<id>.env and new/<id>.eml back as journaled, "done"
 * removes them. An unusable record is skipped with a warning. */
int hs_spool_replay(void *arg, const char *meta, size_t meta_len, int fd,
                    unsigned long long body_off, unsigned long long body_len, struct sc_error *err);
typedef int (*hs_spool_fn)(void *arg, const char *id, unsigned attempts, double next);
int hs_spool_scan(struct hs_spool *sp, hs_spool_fn fn, void *arg, struct sc_error *err);

/* ---- messages held in memory (spool_held.c) --------------------------- */

/* A small message, while the endpoint keeps up, is not written into new/
 * at all: its journal record (envelope and bytes, flushed before the 250)
 * is its durable copy, and the delivery worker POSTs it from memory. Only
 * if that first POST does not deliver it (or the listener stops first)
 * is it written into new/ and handled from there as any spooled message.
 * Its "add" ticket stays open meanwhile, so no checkpoint deletes the
 * journal file that holds it; a crash replays that record into new/.
 * Why: the spool files' creates, renames, reads and recycling were half
 * the kernel time of spool mode, for messages POSTed a millisecond later
 * (perf, 2026-12-02). */
#define HS_HOLD_MAX (64u << 10) /* bytes: larger messages are spooled */
#define HS_HOLD_LIMIT 64        /* held at once: beyond, spooled */

struct hs_held {
	char *id;
	cJSON *env;     /* the envelope (hs_envelope) */
	char *env_text; /* ... as journaled, and as new/<id>.env would hold it */
	struct sc_buf eml;
	struct sc_journal_ticket add; /* open until delivered or written out */
};

/* Journal the message (one record, flushed) and hold it: SC_OK with *out
 * (takes `env`); SC_EIO/SC_ENOMEM with nothing left a restart would
 * deliver (env still the caller's). */
int hs_spool_hold(struct hs_spool *sp, const struct sc_inbound *msg, cJSON *env,
                  struct hs_held **out, struct sc_error *err);
/* hs_spool_hold in two halves, for a caller that waits for the flush
 * with sc_journal_wait_async(h->add): the append (SC_OK with *out, which
 * holds env; or an error, env still the caller's), then the flush's
 * outcome rc: SC_OK, h is durable; else the record is taken back, h freed
 * (env, the caller's again, is not) and SC_EIO returned with err set. */
int hs_spool_hold_append(struct hs_spool *sp, const struct sc_inbound *msg, cJSON *env,
                         struct hs_held **out, struct sc_error *err);
int hs_spool_hold_flushed(struct hs_spool *sp, struct hs_held *h, int rc, struct sc_error *err);
/* Delivered: its "done" record appended (not waited for, as
 * hs_spool_done), its tickets done, h freed. */
void hs_spool_held_delivered(struct hs_spool *sp, struct hs_held *h);
/* Write h into new/ (envelope, then message; durable at the checkpoint
 * its record's ticket now allows) and free it. 0; or -1 with errno: h is
 * kept (the caller tries again later, or leaves it to the journal's
 * replay at the next start with hs_held_abandon). */
int hs_spool_write_out(struct hs_spool *sp, struct hs_held *h);
/* Free h without closing its ticket: the journal keeps its file, and the
 * next start replays the message into new/. */
void hs_held_abandon(struct hs_held *h);

/* ---- the delivery workers (workers.c) -------------------------------- */

struct hs_workers;

/* Start the delivery thread POSTing from sp, up to cfg->workers at
 * once. Its transfers are abandoned once `stop_at` (the sink's one
 * deadline, see hs_curl_new) has passed. SC_ENOMEM/SC_EINTERNAL. */
int hs_workers_start(const struct hs_config *cfg, struct hs_spool *sp,
                     const _Atomic long long *stop_at, struct hs_workers **out,
                     struct sc_error *err);
/* Queue a message (due now, or at `next` Unix time) and wake the thread. */
int hs_workers_add(struct hs_workers *w, const char *id, unsigned attempts, double next);
/* Take one of the HS_HOLD_LIMIT slots for a message to hold: 1, or 0
 * when all are taken (or the workers stop). Taken before the message is
 * journaled, so deliveries running at once cannot hold more than the
 * limit; given back by hs_workers_release_hold when holding failed, and
 * by the thread once the message is delivered or written into new/. */
int hs_workers_reserve_hold(struct hs_workers *w);
void hs_workers_release_hold(struct hs_workers *w);
/* Queue a held message on its reserved slot, due now (takes h). SC_OK,
 * or SC_ENOMEM (h is still the caller's; the slot is given back). */
int hs_workers_add_held(struct hs_workers *w, struct hs_held *h);
/* Stop and free: POSTs in flight finish or are abandoned at the
 * caller's stop_at (set it first). */
void hs_workers_stop(struct hs_workers *w);

/* ---- the sink's one-line log ----------------------------------------- */

/* "<id>: POST returned status: 200" and friends; never header values or
 * content. */
void hs_log_outcome(const char *id, const struct hs_outcome *o, const char *then);

#endif
