/* The journal's file format (journal.c writes it, journal_read.c reads
 * it back after a crash). All integers little-endian.
 *
 *   file header, 48 bytes: "SCJ1", u32 version (1), u64 mark, then the
 *     SHA-256 of those 16 bytes; made durable (with its directory entry)
 *     before any record in the file is acknowledged
 *   record: "SCJR", u32 meta_len, u64 body_len, meta, body, then the
 *     SHA-256 of everything before it in the record
 *
 * Files are <dir>/<generation>.journal; generations grow by one. */
#ifndef SC_SERVE_JOURNAL_H
#define SC_SERVE_JOURNAL_H

#include <smtp-connector/sink.h>

#define JOURNAL_HEADER_LEN 48
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
/* The 48 bytes of a file header with `mark`. */
void journal_header(unsigned char out[JOURNAL_HEADER_LEN], unsigned long long mark);

/* Read the journal file open on fd: check its header, then hand each
 * valid record to hooks->replay, in order, up to the first one that is
 * torn or fails its hash (*ignored, when not NULL: the bytes after the
 * last valid record). hooks->replay_begin gets the
 * header's mark first when `begin` is set. A file whose header is not
 * valid holds nothing that was acknowledged: SC_OK with *valid = 0.
 * SC_OK; SC_EIO (a read error); or the hook's error. */
int journal_read(int fd, const struct sc_journal_hooks *hooks, int begin, int *valid,
                 unsigned long long *ignored, struct sc_error *err);

#endif
