/* Reading a journal file back after a crash (journal.h has the format).
 * The file is untrusted in the way every file on disk is: a crash can
 * leave a torn record, a disk can hand back garbage. So every length is
 * checked against what the file holds before anything is allocated, and
 * a record counts only when its SHA-256 matches. */
#include "journal.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static unsigned get32(const unsigned char *p)
{
	return (unsigned)p[0] | (unsigned)p[1] << 8 | (unsigned)p[2] << 16 | (unsigned)p[3] << 24;
}

static unsigned long long get64(const unsigned char *p)
{
	return (unsigned long long)get32(p) | (unsigned long long)get32(p + 4) << 32;
}

int journal_pread(int fd, void *buf, size_t n, unsigned long long off)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			return 1;
		done += (size_t)r;
	}
	return 0;
}

/* Hash `n` bytes of fd from `off` into the running digest. */
static int hash_range(EVP_MD_CTX *md, int fd, unsigned long long off, unsigned long long n)
{
	unsigned char chunk[65536];
	while (n) {
		size_t k = n < sizeof chunk ? (size_t)n : sizeof chunk;
		int r = journal_pread(fd, chunk, k, off);
		if (r)
			return r;
		EVP_DigestUpdate(md, chunk, k);
		off += k, n -= k;
	}
	return 0;
}

/* The header's length (its records start there), with *mark and, for
 * version 2, the seed that ends each record's hash (*seeded); 0 when it
 * is not a valid header. */
static unsigned long long header_ok(int fd, unsigned long long *mark,
                                    unsigned char seed[JOURNAL_HASH_LEN], int *seeded)
{
	unsigned char h[JOURNAL_HEADER_LEN], sum[JOURNAL_HASH_LEN];
	unsigned int len = 0;
	if (journal_pread(fd, h, JOURNAL_HEADER_V1_LEN, 0) || memcmp(h, "SCJ1", 4))
		return 0;
	unsigned v = get32(h + 4);
	size_t covered = v == 1 ? 16 : 16 + JOURNAL_NONCE_LEN;
	if ((v != 1 && v != 2) ||
	    (v == 2 &&
	     journal_pread(fd, h + JOURNAL_HEADER_V1_LEN,
	                   JOURNAL_HEADER_LEN - JOURNAL_HEADER_V1_LEN, JOURNAL_HEADER_V1_LEN)))
		return 0;
	if (!EVP_Digest(h, covered, sum, &len, EVP_sha256(), NULL) ||
	    memcmp(sum, h + covered, JOURNAL_HASH_LEN))
		return 0;
	*mark = get64(h + 8);
	*seeded = v == 2;
	memcpy(seed, sum, JOURNAL_HASH_LEN);
	return covered + JOURNAL_HASH_LEN;
}

int journal_read(int fd, const struct sc_journal_hooks *hooks, int begin, int *valid,
                 unsigned long long *ignored, struct sc_error *err)
{
	*valid = 0;
	unsigned long long mark = 0, off;
	unsigned char seed[JOURNAL_HASH_LEN];
	int seeded = 0;
	if (ignored)
		*ignored = 0;
	struct stat st;
	if (fstat(fd, &st))
		return sc_error_set(err, SC_EIO, "journal: cannot read: %s", strerror(errno));
	if (!(off = header_ok(fd, &mark, seed, &seeded)))
		return SC_OK;
	*valid = 1;
	int rc = SC_OK;
	if (begin && hooks->replay_begin)
		rc = hooks->replay_begin(hooks->arg, mark, err);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md && !rc)
		rc = sc_error_set(err, SC_ENOMEM, "out of memory");
	const unsigned long long size = (unsigned long long)st.st_size;
	while (!rc) {
		unsigned char head[JOURNAL_RECORD_HEAD];
		int r = size - off < JOURNAL_RECORD_HEAD + JOURNAL_HASH_LEN
		            ? 1
		            : journal_pread(fd, head, sizeof head, off);
		if (r || memcmp(head, "SCJR", 4)) {
			if (r < 0)
				rc = sc_error_set(err, SC_EIO, "journal: cannot read: %s",
				                  strerror(errno));
			break;
		}
		unsigned long long meta_len = get32(head + 4), body_len = get64(head + 8);
		unsigned long long room = size - off - JOURNAL_RECORD_HEAD - JOURNAL_HASH_LEN;
		if (meta_len > JOURNAL_META_MAX || meta_len > room || body_len > room - meta_len)
			break;
		char *meta = malloc(meta_len ? meta_len : 1);
		if (!meta) {
			rc = sc_error_set(err, SC_ENOMEM, "out of memory");
			break;
		}
		unsigned long long meta_off = off + JOURNAL_RECORD_HEAD,
		                   body_off = meta_off + meta_len;
		unsigned char want[JOURNAL_HASH_LEN] = {0}, got[JOURNAL_HASH_LEN];
		unsigned int len = 0;
		r = journal_pread(fd, meta, (size_t)meta_len, meta_off);
		if (!r)
			r = journal_pread(fd, want, sizeof want, body_off + body_len);
		if (!r && (!EVP_DigestInit_ex(md, EVP_sha256(), NULL) ||
		           !EVP_DigestUpdate(md, head, sizeof head) ||
		           !EVP_DigestUpdate(md, meta, (size_t)meta_len)))
			r = -1, errno = ENOMEM;
		if (!r)
			r = hash_range(md, fd, body_off, body_len);
		if (!r && seeded && !EVP_DigestUpdate(md, seed, sizeof seed))
			r = -1, errno = ENOMEM;
		if (!r && (!EVP_DigestFinal_ex(md, got, &len) || memcmp(want, got, sizeof got)))
			r = 1; /* altered or torn: not a record */
		if (r < 0)
			rc = sc_error_set(err, SC_EIO, "journal: cannot read: %s", strerror(errno));
		else if (!r && hooks->replay)
			rc = hooks->replay(hooks->arg, meta, (size_t)meta_len, fd, body_off,
			                   body_len, err);
		free(meta);
		if (r)
			break;
		off = body_off + body_len + JOURNAL_HASH_LEN;
	}
	EVP_MD_CTX_free(md);
	if (ignored)
		*ignored = size - off;
	return rc;
}
