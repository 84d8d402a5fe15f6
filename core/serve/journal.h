/* The journal's file format (journal.c writes it, journal_read.c reads
 * it back after a crash). All integers little-endian.
 *
 *   file header, 64 bytes: "SCJ1", u32 version (2), u64 mark, 16 random
 *     bytes, then the SHA-256 of those 32 bytes: the file's seed; made
 *     durable (with its directory entry) before any record in the file is
 *     acknowledged
 *   record: "SCJR", u32 meta_len, u64 body_len, meta, body, then the
 *     SHA-256 of everything before it in the record followed by the seed
 *
 * Files are <dir>/<generation>.journal; generations grow by one. A file
 * that a checkpoint covered is renamed <dir>/<generation>.spare and
 * reused, header first, for a later generation: appends that overwrite
 * blocks already written leave the inode as it is, so each fdatasync()
 * writes the data alone (a growing file's size made it write the inode
 * too: 69 against 133 us of CPU per append and flush on the benchmark
 * VM). What lies past the last record of a reused file is the old
 * generation's, hashed with another seed: never a record of this one.
 * Version 1 files (a 48-byte header without the random bytes, records
 * hashed without a seed) are still read. */
#ifndef SC_SERVE_JOURNAL_H
#define SC_SERVE_JOURNAL_H

#include <smtp-connector/sink.h>

#define JOURNAL_HEADER_LEN 64
#define JOURNAL_HEADER_V1_LEN 48
#define JOURNAL_NONCE_LEN 16
#define JOURNAL_RECORD_HEAD 16
#define JOURNAL_HASH_LEN 32
/* meta is the sink's text: its envelope, so up to limits.recipients
 * (100,000) addresses of up to 256 octets, twice (maildir: the index line
 * and the meta around it); a reader never allocates more than the file
 * holds, whatever a length says */
#define JOURNAL_META_MAX (256u << 20)

void journal_put32(unsigned char *p, unsigned v);
void journal_put64(unsigned char *p, unsigned long long v);
/* pread all n bytes at off: 0; 1 when the file ends first; -1 with
 * errno. */
int journal_pread(int fd, void *buf, size_t n, unsigned long long off);
/* The 64 bytes of a new file header with `mark` and fresh random bytes
 * (its last 32 bytes are the file's seed). 0, or -1 when the random
 * generator fails. */
int journal_header(unsigned char out[JOURNAL_HEADER_LEN], unsigned long long mark);

/* Read the journal file open on fd: check its header, then hand each
 * valid record to hooks->replay, in order, up to the first one that is
 * torn or fails its hash (*ignored, when not NULL: the bytes after the
 * last valid record). hooks->replay_begin gets the
 * header's mark first when `begin` is set. A file whose header is not
 * valid holds nothing that was acknowledged: SC_OK with *valid = 0.
 * SC_OK; SC_EIO (a read error); or the hook's error. */
int journal_read(int fd, const struct sc_journal_hooks *hooks, int begin, int *valid,
                 unsigned long long *ignored, struct sc_error *err);

/* The flusher thread of sc_journal_wait_async() (journal_async.c). */
struct journal_flusher;
/* 0 with *out set, or -1 (out of memory, no thread). */
int journal_flusher_start(struct sc_journal *j, struct journal_flusher **out);
/* Queue a wait (0), or -1 when out of memory (done is not called). */
int journal_flusher_add(struct journal_flusher *fl, const struct sc_journal_ticket *t,
                        sc_journal_flushed_fn done, void *arg);
/* Call back every waiter still queued, then end the thread and free fl.
 * NULL is allowed. */
void journal_flusher_stop(struct journal_flusher *fl);
#endif
