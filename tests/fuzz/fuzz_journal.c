// clang-format off
// fuzz-sources: core/serve/journal_read.c core/runtime/buf.c core/runtime/error.c core/runtime/log.c
// fuzz-pkgs: libcrypto
// clang-format on
/* libFuzzer target for reading the sinks' journal back after a crash
 * (core/serve/journal_read.c): a file on disk, so untrusted.
 *
 * The first byte picks the mode:
 *  - even: the rest is the file as it is, bytes the reader must survive
 *    (lengths past the end, huge meta, a bad header) without reading out
 *    of the file or allocating what the file cannot hold;
 *  - odd: the rest describes records (a length byte for meta, one for the
 *    body, then their bytes) that are written as a valid journal, written
 *    here from journal.h's description rather than with journal.c, then
 *    cut at a point or with one byte changed (two bytes of the input
 *    after the records). The reader must hand back exactly the records
 *    that end before the damage, in order, byte for byte. With bit 1 of
 *    the first byte set, the same records follow again hashed with
 *    another file's seed, as the old contents of a reused file are: the
 *    reader must never hand them back. */
#define _GNU_SOURCE /* memfd_create */
#include "journal.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "fuzz_journal: %s\n", what);
		abort();
	}
}

#define MAXREC 64

struct rec {
	const uint8_t *meta, *body;
	size_t meta_len, body_len;
	size_t end; /* offset after the record in the file */
};

struct seen {
	const struct rec *want;
	size_t n;
	size_t intact; /* the records that end before the damage */
	const uint8_t *seed;
	int raw;
	unsigned long long file_size;
};

static void sha(const void *a, size_t n, const void *b, size_t m, const void *c, size_t k,
                const uint8_t *seed, uint8_t *out);

/* A record handed back from past the damage must be a true record of the
 * damaged file, hashed with this file's seed (never a stale one): the
 * fuzzer can write the damaged record's own hash after it (it learns the
 * value from the reader's memcmp), and the result is then a valid
 * journal, not one the reader may refuse. Checked here, independently. */
static void check_true_record(const struct seen *s, const char *meta, size_t meta_len, int fd,
                              unsigned long long off, unsigned long long len)
{
	check(off >= JOURNAL_RECORD_HEAD + meta_len, "a record before the file");
	uint8_t head[JOURNAL_RECORD_HEAD], stored[JOURNAL_HASH_LEN], sum[JOURNAL_HASH_LEN];
	uint8_t *body = malloc(len ? (size_t)len : 1);
	check(body != NULL, "out of memory");
	check(pread(fd, head, sizeof head, (off_t)(off - meta_len - JOURNAL_RECORD_HEAD)) ==
	              (ssize_t)sizeof head &&
	          pread(fd, body, (size_t)len, (off_t)off) == (ssize_t)len &&
	          pread(fd, stored, sizeof stored, (off_t)(off + len)) == (ssize_t)sizeof stored,
	      "a record past the damage unreadable");
	sha(head, sizeof head, meta, meta_len, body, (size_t)len, s->seed, sum);
	free(body);
	check(!memcmp(sum, stored, sizeof sum), "a record past the damage that is not one");
}

static int on_record(void *arg, const char *meta, size_t meta_len, int fd, unsigned long long off,
                     unsigned long long len, struct sc_error *err)
{
	(void)err;
	struct seen *s = arg;
	check(off + len <= s->file_size, "a body past the end of the file");
	check(meta_len <= JOURNAL_META_MAX, "meta over its bound");
	if (!s->raw && s->n >= s->intact) {
		check_true_record(s, meta, meta_len, fd, off, len);
	} else if (!s->raw) {
		const struct rec *r = &s->want[s->n];
		check(meta_len == r->meta_len && !memcmp(meta, r->meta, meta_len), "meta differs");
		check(len == r->body_len, "body length differs");
		uint8_t buf[256];
		check(pread(fd, buf, (size_t)len, (off_t)off) == (ssize_t)len, "body unreadable");
		check(!memcmp(buf, r->body, (size_t)len), "body differs");
	}
	s->n++;
	return SC_OK;
}

static void put32(uint8_t *p, unsigned v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void sha(const void *a, size_t n, const void *b, size_t m, const void *c, size_t k,
                const uint8_t *seed, uint8_t *out)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int len = 0;
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	EVP_DigestUpdate(md, a, n);
	EVP_DigestUpdate(md, b, m);
	EVP_DigestUpdate(md, c, k);
	if (seed)
		EVP_DigestUpdate(md, seed, JOURNAL_HASH_LEN);
	EVP_DigestFinal_ex(md, out, &len);
	EVP_MD_CTX_free(md);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int raw = !(data[0] & 1), stale = data[0] & 2;
	data++, size--;
	int fd = memfd_create("journal", 0);
	check(fd >= 0, "memfd");
	struct rec recs[MAXREC];
	size_t nrec = 0, cut = (size_t)-1, flip = (size_t)-1;
	uint8_t seed_of_file[JOURNAL_HASH_LEN] = {0};
	if (raw) {
		check(write(fd, data, size) == (ssize_t)size, "write");
	} else {
		uint8_t h[JOURNAL_HEADER_LEN] = "SCJ1", other[JOURNAL_HASH_LEN];
		put32(h + 4, 2);
		memset(h + 8, 0, 8 + JOURNAL_NONCE_LEN);
		h[8] = 9;
		h[16] = 1; /* the nonce */
		sha(h, 32, "", 0, "", 0, NULL, h + 32);
		const uint8_t *seed = h + 32;
		memcpy(seed_of_file, seed, JOURNAL_HASH_LEN);
		sha(seed, JOURNAL_HASH_LEN, "other file", 10, "", 0, NULL, other);
		check(write(fd, h, sizeof h) == (ssize_t)sizeof h, "write");
		size_t at = 0, off = sizeof h;
		while (nrec < MAXREC && size - at >= 2) {
			size_t ml = data[at], bl = data[at + 1];
			if (size - at - 2 < ml + bl)
				break;
			struct rec *r = &recs[nrec++];
			r->meta = data + at + 2, r->meta_len = ml;
			r->body = r->meta + ml, r->body_len = bl;
			uint8_t head[JOURNAL_RECORD_HEAD] = "SCJR", sum[JOURNAL_HASH_LEN];
			put32(head + 4, (unsigned)ml);
			put32(head + 8, (unsigned)bl);
			put32(head + 12, 0);
			sha(head, sizeof head, r->meta, ml, r->body, bl, seed, sum);
			check(write(fd, head, sizeof head) == (ssize_t)sizeof head &&
			          write(fd, r->meta, ml) == (ssize_t)ml &&
			          write(fd, r->body, bl) == (ssize_t)bl &&
			          write(fd, sum, sizeof sum) == (ssize_t)sizeof sum,
			      "write");
			off += sizeof head + ml + bl + sizeof sum;
			r->end = off;
			at += 2 + ml + bl;
		}
		for (size_t i = 0; stale && i < nrec; i++) {
			uint8_t head[JOURNAL_RECORD_HEAD] = "SCJR", sum[JOURNAL_HASH_LEN];
			put32(head + 4, (unsigned)recs[i].meta_len);
			put32(head + 8, (unsigned)recs[i].body_len);
			put32(head + 12, 0);
			sha(head, sizeof head, recs[i].meta, recs[i].meta_len, recs[i].body,
			    recs[i].body_len, other, sum);
			check(write(fd, head, sizeof head) == (ssize_t)sizeof head &&
			          write(fd, recs[i].meta, recs[i].meta_len) ==
			              (ssize_t)recs[i].meta_len &&
			          write(fd, recs[i].body, recs[i].body_len) ==
			              (ssize_t)recs[i].body_len &&
			          write(fd, sum, sizeof sum) == (ssize_t)sizeof sum,
			      "write");
		}
		/* the damage: two more bytes pick where (scaled to the file) */
		if (size - at >= 2 && off > sizeof h) {
			size_t where =
			    sizeof h + ((size_t)data[at] << 8 | data[at + 1]) % (off - sizeof h);
			if (data[at] & 0x80)
				cut = where;
			else
				flip = where;
		}
		if (cut != (size_t)-1)
			check(ftruncate(fd, (off_t)cut) == 0, "truncate");
		if (flip != (size_t)-1) {
			uint8_t b;
			check(pread(fd, &b, 1, (off_t)flip) == 1, "read");
			b ^= 0x5a;
			check(pwrite(fd, &b, 1, (off_t)flip) == 1, "write");
		}
	}
	off_t end = lseek(fd, 0, SEEK_END);
	/* the records that end at or before the damage survive, all of them
	 * (a flip inside a record's hash or bytes, or a cut, ends the replay
	 * at that record, unless the damage made a true record: above) */
	size_t damage = cut != (size_t)-1 ? cut : flip;
	size_t expect = 0;
	while (expect < nrec && recs[expect].end <= damage)
		expect++;
	struct seen s = {recs, 0, expect, seed_of_file, raw, (unsigned long long)end};
	const struct sc_journal_hooks hooks = {&s, NULL, NULL, on_record};
	struct sc_error err = {0};
	int valid = 0;
	unsigned long long ignored = 0;
	int rc = journal_read(fd, &hooks, 1, &valid, &ignored, &err);
	check(rc == SC_OK, "a read error on a memfd");
	check(ignored <= (unsigned long long)end, "more ignored than the file holds");
	if (!raw) {
		check(valid, "a valid header refused");
		check(s.n >= expect, "records lost before the damage");
	}
	close(fd);
	return 0;
}
