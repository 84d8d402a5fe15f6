/* The maildir sink: shared between the writer (maildir.c) and the index
 * line (index.c). */
#ifndef SC_SINK_MAILDIR_H
#define SC_SINK_MAILDIR_H

#include <pthread.h>
#include <smtp-connector/sink.h>

/* A message larger than this is kept out of the journal (its bytes would
 * be written twice) and made durable by the group commit instead. */
#define MAILDIR_JOURNAL_MAX (4u << 20)

struct maildir {
	char *dir;
	char *newdir; /* DIR/new, for O_TMPFILE */
	char *host;   /* for unique names, '/' and ':' escaped */
	int index_fd;
	int fsync;
	struct sc_commit *commit;   /* NULL when fsync is false */
	struct sc_journal *journal; /* DIR/journal; NULL when fsync is false */
	long pid;                   /* for unique names: getpid() once */
	unsigned long counter;
	pthread_mutex_t mu; /* counter, and index lines in journal order */
};

/* The index.jsonl line for a message written as `file` (relative to the
 * Maildir), ending in "\n"; allocated. `held`: the message's m->size
 * bytes when the caller has them in memory, else NULL (its file is read). */
char *maildir_index_line(const struct sc_inbound *m, const char *file, const char *held);

/* The journal's hooks (replay.c): after a crash, each record's message
 * is put back in new/ unless it is there intact (or already in cur/),
 * and index.jsonl is cut back to the oldest journal file's mark and its
 * lines written again in journal order. */
unsigned long long maildir_mark(void *arg);
int maildir_replay_begin(void *arg, unsigned long long mark, struct sc_error *err);
int maildir_replay(void *arg, const char *meta, size_t meta_len, int fd,
                   unsigned long long body_off, unsigned long long body_len, struct sc_error *err);

#endif
