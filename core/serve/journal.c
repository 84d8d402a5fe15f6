/* The host's write-ahead journal for sinks (sink.h: sc_journal_*).
 *
 * Why: on the benchmark VM (virtio disk, ext4 without a journal) making
 * one small file durable costs its data block, its inode block and its
 * directory blocks written before the 250, and a syncfs() per batch of
 * 5-50 deliveries still paid that per file: 3,800-8,200 files/s by
 * themselves, against 14,000-67,000 records/s appended to one file with
 * one fdatasync() per batch (bench/durability.sh, bench/results.md). The
 * same files written without a flush and made durable at once took 0.09 s
 * per 4,000. So a delivery appends its record here and waits for the shared
 * fdatasync(); the checkpoint thread later syncfs()es the sink's files
 * and deletes the journal file that covered them.
 *
 * Files: the current one takes appends; at 16 MiB or when it is a second
 * old, the next append seals it and starts the next generation (header
 * and directory entry made durable first). The checkpoint thread takes
 * the oldest sealed file once every record in it is done (the sink has
 * made its renames), runs syncfs() and renames it a spare, which a later
 * generation reuses (journal.h says why), or deletes it when enough
 * spares are kept. */
#define _GNU_SOURCE /* syncfs */
#include "journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define ROTATE_BYTES (16ull << 20)
#define ROTATE_NS 1000000000ll
/* Files kept for reuse: the one being filled, one sealed, one checkpointed
 * is the steady state; the spares cover a checkpoint that lags. */
#define SPARE_MAX 3

struct jfile {
	struct jfile *next; /* sealed list, oldest first */
	unsigned long long gen;
	int fd;
	unsigned long long size;   /* bytes of whole records (and header) */
	unsigned long long synced; /* bytes known durable */
	long long created_ns;
	int refs;     /* appended, not yet done */
	int flushing; /* an fdatasync() of this file is running */
	/* The waiters of a flush, apart from those of the next one: a record
	 * appended while flush `round` runs needs round + 1. Each group waits
	 * on cv[round & 1], so a flush's end wakes the waiters it covers and
	 * one of the rest (to lead the next flush), not every delivery thread
	 * (with one condition variable, most went straight back to sleep:
	 * perf sched_switch, 2026-12-02). */
	unsigned long long round;  /* the running or last flush */
	unsigned long long target; /* what the running flush makes durable */
	pthread_cond_t cv[2];
	int waiting[2];
	int failed; /* errno of a failed flush: its records may be lost */
	int torn;   /* a write failed halfway: no more appends (its tail is
	               unknown), but the records before it can still be flushed */
	unsigned char seed[JOURNAL_HASH_LEN]; /* the header's hash: ends each record's */
};

struct spare {
	int fd;
	unsigned long long gen; /* named <gen>.spare */
};

struct sc_journal {
	char *dir;
	int dirfd;
	struct sc_journal_hooks hooks;
	pthread_mutex_t mu;
	/* for the checkpoint thread alone: a file sealed, a sealed file's last
	 * ticket done, stop. Apart from the flushes' own (jfile.cv), which
	 * fire once per batch, so the thread is not woken thousands of times
	 * a second for nothing */
	pthread_cond_t work;
	struct jfile *cur;
	struct jfile *sealed, **sealed_tail;
	struct spare spares[SPARE_MAX]; /* under mu */
	int nspare;
	unsigned long long next_gen;
	int stop;
	pthread_t thread;
	int thread_started;
	struct journal_flusher *flusher; /* sc_journal_wait_async() */
	/* fetched once: EVP_sha256() in EVP_DigestInit_ex looks the
	 * implementation up again, under a lock all threads share, for every
	 * record (two per message) */
	EVP_MD *sha256;
};

void journal_put32(unsigned char *p, unsigned v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

void journal_put64(unsigned char *p, unsigned long long v)
{
	journal_put32(p, (unsigned)v);
	journal_put32(p + 4, (unsigned)(v >> 32));
}

int journal_header(unsigned char out[JOURNAL_HEADER_LEN], unsigned long long mark)
{
	memcpy(out, "SCJ1", 4);
	journal_put32(out + 4, 2);
	journal_put64(out + 8, mark);
	unsigned int len = 0;
	if (RAND_bytes(out + 16, JOURNAL_NONCE_LEN) != 1 ||
	    !EVP_Digest(out, 16 + JOURNAL_NONCE_LEN, out + 16 + JOURNAL_NONCE_LEN, &len,
	                EVP_sha256(), NULL))
		return -1;
	return 0;
}

static long long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000000000ll + t.tv_nsec;
}

static int writev_at(int fd, struct iovec *iov, int n, unsigned long long off);

/* Nanoseconds until f is old enough to be sealed (ROTATE_NS), 0 when it
 * is; -1 while it holds no record (an empty file is never sealed for
 * its age). The one rule for the append that rotates and for
 * seal_idle(). */
static long long age_left(const struct jfile *f)
{
	if (f->size <= JOURNAL_HEADER_LEN)
		return -1;
	long long left = ROTATE_NS - (now_ns() - f->created_ns);
	return left > 0 ? left : 0;
}

static char *file_path(const struct sc_journal *j, unsigned long long gen)
{
	return sc_asprintf("%s/%llu.journal", j->dir, gen);
}

static char *spare_path(const struct sc_journal *j, unsigned long long gen)
{
	return sc_asprintf("%s/%llu.spare", j->dir, gen);
}

/* The file for a new generation: a spare, its new header written and
 * flushed under the spare's name and only then renamed (so that the
 * generation's name never shows the old header, whose records a replay
 * would take), else a new file. -1 with errno. mu held. */
static int file_open(struct sc_journal *j, const char *path, const unsigned char *h)
{
	struct iovec one = {(void *)h, JOURNAL_HEADER_LEN};
	while (j->nspare) {
		struct spare sp = j->spares[--j->nspare];
		char *from = spare_path(j, sp.gen);
		if (from && writev_at(sp.fd, &one, 1, 0) == 0 && fdatasync(sp.fd) == 0 &&
		    rename(from, path) == 0) {
			free(from);
			return sp.fd;
		}
		/* not reusable: a new file instead */
		close(sp.fd);
		if (from)
			unlink(from);
		free(from);
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0 && (writev_at(fd, &one, 1, 0) || fdatasync(fd))) {
		int e = errno;
		close(fd), unlink(path);
		errno = e;
		return -1;
	}
	return fd;
}

static void file_free(struct jfile *f)
{
	if (f->fd >= 0)
		close(f->fd);
	pthread_cond_destroy(&f->cv[0]);
	pthread_cond_destroy(&f->cv[1]);
	free(f);
}

static int cv_pair_init(pthread_cond_t cv[2])
{
	if (pthread_cond_init(&cv[0], NULL))
		return -1;
	if (pthread_cond_init(&cv[1], NULL)) {
		pthread_cond_destroy(&cv[0]);
		return -1;
	}
	return 0;
}

/* A new generation: header written and, with its directory entry, made
 * durable before a record in it can be acknowledged. mu held. */
static struct jfile *file_new(struct sc_journal *j, unsigned long long mark)
{
	struct jfile *f = calloc(1, sizeof *f);
	char *path = file_path(j, j->next_gen);
	unsigned char h[JOURNAL_HEADER_LEN];
	if (!f || !path || journal_header(h, mark) || cv_pair_init(f->cv)) {
		free(f), free(path);
		errno = ENOMEM;
		return NULL;
	}
	f->gen = j->next_gen;
	memcpy(f->seed, h + JOURNAL_HEADER_LEN - JOURNAL_HASH_LEN, JOURNAL_HASH_LEN);
	f->fd = file_open(j, path, h);
	if (f->fd < 0 || fsync(j->dirfd)) {
		int e = errno;
		if (f->fd >= 0)
			unlink(path);
		file_free(f); /* closes f->fd */
		free(path);
		errno = e;
		return NULL;
	}
	free(path);
	j->next_gen++;
	f->size = f->synced = JOURNAL_HEADER_LEN;
	f->created_ns = now_ns();
	return f;
}

/* Seal cur and start the next file. mu held. */
static int rotate(struct sc_journal *j)
{
	unsigned long long mark = j->hooks.mark ? j->hooks.mark(j->hooks.arg) : 0;
	struct jfile *f = file_new(j, mark);
	if (!f)
		return -1;
	if (j->cur) {
		*j->sealed_tail = j->cur;
		j->sealed_tail = &j->cur->next;
		pthread_cond_signal(&j->work);
	}
	j->cur = f;
	return 0;
}

/* pread exactly n bytes (a short file is an error: EIO). */
static int read_exact(int fd, unsigned char *buf, size_t n, unsigned long long off)
{
	int r = journal_pread(fd, buf, n, off);
	if (r > 0)
		errno = EIO; /* shorter than the caller said */
	return r ? -1 : 0;
}

static int writev_at(int fd, struct iovec *iov, int n, unsigned long long off)
{
	while (n > 0) {
		ssize_t w = pwritev(fd, iov, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		off += (unsigned long long)w;
		while (n > 0 && (size_t)w >= iov->iov_len)
			w -= (ssize_t)iov->iov_len, iov++, n--;
		if (n > 0)
			iov->iov_base = (char *)iov->iov_base + w, iov->iov_len -= (size_t)w;
	}
	return 0;
}

#define CHUNK 65536

/* A record of at most CHUNK file bytes, made ready before the lock is
 * taken (the file read, the hash computed), so that under the lock it is
 * one pwritev() into the page cache: deliveries on other threads do not
 * queue behind each other's reads and hashing. */
struct prepared {
	unsigned char head[JOURNAL_RECORD_HEAD], sum[JOURNAL_HASH_LEN];
	unsigned char *chunk; /* the fd's bytes, or NULL */
	size_t chunk_len;
};

static void put_head(unsigned char *head, const struct sc_journal_entry *e,
                     unsigned long long fd_len)
{
	memcpy(head, "SCJR", 4);
	journal_put32(head + 4, (unsigned)e->meta_len);
	journal_put64(head + 8, e->body_len + fd_len);
}

static int digest_start(const struct sc_journal *j, EVP_MD_CTX *md, const unsigned char *head,
                        const struct sc_journal_entry *e)
{
	return EVP_DigestInit_ex(md, j->sha256, NULL) &&
	       EVP_DigestUpdate(md, head, JOURNAL_RECORD_HEAD) &&
	       EVP_DigestUpdate(md, e->meta, e->meta_len) &&
	       EVP_DigestUpdate(md, e->body, e->body_len);
}

/* The record's hash ends with the seed of the file it goes into, known
 * only under the lock: prepare() leaves md open for seal(). */
static int seal(EVP_MD_CTX *md, const struct jfile *f, unsigned char *sum)
{
	unsigned int len = 0;
	if (!EVP_DigestUpdate(md, f->seed, sizeof f->seed) || !EVP_DigestFinal_ex(md, sum, &len)) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

static int prepare(const struct sc_journal *j, struct prepared *p, const struct sc_journal_entry *e,
                   unsigned long long fd_len, EVP_MD_CTX *md)
{
	put_head(p->head, e, fd_len);
	p->chunk_len = (size_t)fd_len;
	if (fd_len && !(p->chunk = malloc((size_t)fd_len))) {
		errno = ENOMEM;
		return -1;
	}
	if (fd_len && read_exact(e->fd, p->chunk, (size_t)fd_len, 0))
		return -1;
	if (!digest_start(j, md, p->head, e) ||
	    (fd_len && !EVP_DigestUpdate(md, p->chunk, (size_t)fd_len))) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

/* A large record, under the lock: the fd's bytes in chunks, hashed as
 * they go. */
static int write_large(const struct sc_journal *j, struct jfile *f, unsigned long long off,
                       const struct sc_journal_entry *e, unsigned long long fd_len, EVP_MD_CTX *md)
{
	unsigned char head[JOURNAL_RECORD_HEAD], sum[JOURNAL_HASH_LEN];
	put_head(head, e, fd_len);
	unsigned char *chunk = malloc(CHUNK);
	if (!chunk || !digest_start(j, md, head, e)) {
		free(chunk);
		errno = ENOMEM;
		return -1;
	}
	struct iovec iov[3] = {
	    {head, sizeof head}, {(void *)e->meta, e->meta_len}, {(void *)e->body, e->body_len}};
	int rc = writev_at(f->fd, iov, 3, off);
	unsigned long long at = off + sizeof head + e->meta_len + e->body_len, done = 0;
	while (!rc && done < fd_len) {
		size_t k = fd_len - done < CHUNK ? (size_t)(fd_len - done) : CHUNK;
		rc = read_exact(e->fd, chunk, k, done);
		if (!rc) {
			EVP_DigestUpdate(md, chunk, k);
			struct iovec one = {chunk, k};
			rc = writev_at(f->fd, &one, 1, at);
		}
		at += k, done += k;
	}
	if (!rc)
		rc = seal(md, f, sum);
	if (!rc) {
		struct iovec last = {sum, sizeof sum};
		rc = writev_at(f->fd, &last, 1, at);
	}
	free(chunk);
	return rc;
}

int sc_journal_append(struct sc_journal *j, const struct sc_journal_entry *e,
                      struct sc_journal_ticket *t)
{
	unsigned long long fd_len = e->fd >= 0 ? e->fd_len : 0;
	if (e->meta_len > JOURNAL_META_MAX) {
		errno = EMSGSIZE;
		return SC_EIO;
	}
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md)
		return SC_ENOMEM;
	struct prepared p = {0};
	int small = fd_len <= CHUNK;
	if (small && prepare(j, &p, e, fd_len, md)) {
		/* nothing written: the journal is untouched */
		int err = errno;
		free(p.chunk);
		EVP_MD_CTX_free(md);
		errno = err;
		return err == ENOMEM ? SC_ENOMEM : SC_EIO;
	}
	pthread_mutex_lock(&j->mu);
	struct jfile *f = j->cur;
	int rc = 0;
	/* a file that failed is never written again: its tail is unknown */
	if (!f || f->failed || f->torn || f->size >= ROTATE_BYTES || age_left(f) == 0) {
		rc = rotate(j);
		f = j->cur;
	}
	unsigned long long off = f ? f->size : 0;
	if (!rc && small)
		rc = seal(md, f, p.sum);
	if (!rc && small) {
		struct iovec iov[5] = {{p.head, sizeof p.head},
		                       {(void *)e->meta, e->meta_len},
		                       {(void *)e->body, e->body_len},
		                       {p.chunk, p.chunk_len},
		                       {p.sum, sizeof p.sum}};
		rc = writev_at(f->fd, iov, 5, off);
	} else if (!rc) {
		rc = write_large(j, f, off, e, fd_len, md);
	}
	int err = errno;
	if (!rc) {
		f->size = off + JOURNAL_RECORD_HEAD + e->meta_len + e->body_len + fd_len +
		          JOURNAL_HASH_LEN;
		f->refs++;
		t->file = f;
		t->end = f->size;
		if (off == JOURNAL_HEADER_LEN) /* the file's first record: seal_idle's clock */
			pthread_cond_signal(&j->work);
	} else if (f && err != ENOMEM) {
		/* a record that failed halfway is never acknowledged; the next
		 * append starts a new file rather than write after it */
		f->torn = 1;
	}
	pthread_mutex_unlock(&j->mu);
	free(p.chunk);
	EVP_MD_CTX_free(md);
	errno = err;
	return rc ? (err == ENOMEM ? SC_ENOMEM : SC_EIO) : SC_OK;
}

/* A failed flush refuses every record after `keep` (their waits fail: the
 * clients are told 451 and keep their messages). Cut those records off
 * the file, so that a restart after a kill does not replay what was
 * refused: the client's retry would then be a second copy. f cannot be
 * retired meanwhile: the caller's own ticket holds it. Best effort: with
 * the disk failing, the cut may not reach it either, which is logged. */
static void take_back(struct sc_journal *j, struct jfile *f, unsigned long long keep)
{
	if (ftruncate(f->fd, (off_t)keep) || fdatasync(f->fd))
		sc_log(SC_LOG_WARN,
		       "journal %s: %llu.journal: cannot cut the refused records off (%s); a "
		       "restart may deliver them although they were answered 451",
		       j->dir, f->gen, strerror(errno));
}

int sc_journal_wait(struct sc_journal *j, const struct sc_journal_ticket *t)
{
	struct jfile *f = t->file;
	pthread_mutex_lock(&j->mu);
	while (f->synced < t->end && !f->failed) {
		if (f->flushing) {
			int k = (int)((f->round + (t->end > f->target)) & 1);
			f->waiting[k]++;
			pthread_cond_wait(&f->cv[k], &j->mu);
			f->waiting[k]--;
			continue;
		}
		/* lead: take everything appended so far; callers that arrive
		 * while this runs share the next flush */
		f->target = f->size;
		f->round++;
		f->flushing = 1;
		pthread_mutex_unlock(&j->mu);
		int rc = fdatasync(f->fd), e = errno;
		pthread_mutex_lock(&j->mu);
		f->flushing = 0;
		if (rc)
			f->failed = e;
		else if (f->target > f->synced)
			f->synced = f->target;
		int k = (int)(f->round & 1);
		/* outside the lock, so that those woken do not wait for it: f
		 * lives on while any of them holds a ticket (refs) */
		int covered = f->waiting[k] > 0, next = f->waiting[k ^ 1] > 0, failed = f->failed;
		unsigned long long keep = f->synced; /* final once failed */
		pthread_mutex_unlock(&j->mu);
		if (rc)
			take_back(j, f, keep); /* before any waiter hears of it */
		if (covered || failed)
			pthread_cond_broadcast(&f->cv[k]);
		if (failed)
			pthread_cond_broadcast(&f->cv[k ^ 1]);
		else if (next) /* one of them leads the next flush */
			pthread_cond_signal(&f->cv[k ^ 1]);
		pthread_mutex_lock(&j->mu);
	}
	int ok = f->synced >= t->end, e = f->failed;
	pthread_mutex_unlock(&j->mu);
	errno = ok ? 0 : e;
	return ok ? SC_OK : SC_EIO;
}

int sc_journal_wait_async(struct sc_journal *j, const struct sc_journal_ticket *t,
                          sc_journal_flushed_fn done, void *arg)
{
	return journal_flusher_add(j->flusher, t, done, arg) ? SC_ENOMEM : SC_OK;
}

void sc_journal_done(struct sc_journal *j, const struct sc_journal_ticket *t)
{
	struct jfile *f = t->file;
	pthread_mutex_lock(&j->mu);
	if (--f->refs == 0 && f == j->sealed)
		pthread_cond_signal(&j->work);
	pthread_mutex_unlock(&j->mu);
}

/* Make everything durable, then retire file f: renamed a spare when
 * `keep` (1), else deleted (0); -1 when the flush or both fail. */
static int checkpoint(struct sc_journal *j, const struct jfile *f, int keep)
{
	if (syncfs(j->dirfd))
		return -1;
	char *path = file_path(j, f->gen), *spare = keep ? spare_path(j, f->gen) : NULL;
	int rc = -1;
	if (path && spare && rename(path, spare) == 0)
		rc = 1;
	else if (path && unlink(path) == 0)
		rc = 0;
	free(path), free(spare);
	return rc;
}

/* The current file once it holds records and is ROTATE_NS old: sealed
 * here, so that a journal that has gone idle is checkpointed too. Else
 * its last records stayed until the next append, and a crash meanwhile
 * replayed them: a maildir message a reader had deleted from new/ came
 * back. No new file is started: that is left to the next append, which
 * takes the sink's mark under the sink's own lock (sink.h). 0 when cur
 * was sealed; else the nanoseconds until it may be (-1: no need). mu
 * held. */
static long long seal_idle(struct sc_journal *j)
{
	struct jfile *f = j->cur;
	long long left = f ? age_left(f) : -1;
	if (left)
		return left;
	if (f->flushing)
		return ROTATE_NS / 10;
	*j->sealed_tail = f;
	j->sealed_tail = &f->next;
	j->cur = NULL;
	return 0;
}

/* Wait on work for at most ns nanoseconds (-1: no bound). mu held. */
static void wait_work(struct sc_journal *j, long long ns)
{
	if (ns < 0) {
		pthread_cond_wait(&j->work, &j->mu);
		return;
	}
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	long long t = (long long)until.tv_nsec + ns;
	until.tv_sec += (time_t)(t / 1000000000ll);
	until.tv_nsec = (long)(t % 1000000000ll);
	pthread_cond_timedwait(&j->work, &j->mu, &until);
}

static void *checkpoint_thread(void *arg)
{
	struct sc_journal *j = arg;
	pthread_mutex_lock(&j->mu);
	while (!j->stop) {
		struct jfile *f = j->sealed;
		if (!f || f->refs) {
			long long ns = seal_idle(j);
			if (ns)
				wait_work(j, ns);
			continue;
		}
		/* only file_new takes spares, so there is still room after */
		int keep = j->nspare < SPARE_MAX && !f->failed && !f->torn;
		pthread_mutex_unlock(&j->mu);
		int rc = checkpoint(j, f, keep), e = errno;
		pthread_mutex_lock(&j->mu);
		if (rc == 1) {
			j->spares[j->nspare++] = (struct spare){f->fd, f->gen};
			f->fd = -1;
			rc = 0;
		}
		if (rc) {
			/* kept: the next start replays it; try again in a second */
			sc_log(SC_LOG_WARN, "journal %s: checkpoint of %llu.journal failed: %s",
			       j->dir, f->gen, strerror(e));
			wait_work(j, 1000000000ll);
			continue;
		}
		j->sealed = f->next;
		if (!j->sealed)
			j->sealed_tail = &j->sealed;
		file_free(f);
	}
	pthread_mutex_unlock(&j->mu);
	return NULL;
}

/* "<gen><ext>", gen a decimal number from 1 without leading zeros. */
static int gen_name(const char *name, const char *ext, unsigned long long *gen)
{
	const char *p = name;
	unsigned long long g = 0;
	if (*p < '1' || *p > '9')
		return 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (g > (~0ull - 9) / 10)
			return 0;
		g = g * 10 + (unsigned long long)(*p - '0');
	}
	if (strcmp(p, ext))
		return 0;
	*gen = g;
	return 1;
}

static int by_gen(const void *a, const void *b)
{
	unsigned long long x = *(const unsigned long long *)a, y = *(const unsigned long long *)b;
	return x < y ? -1 : x > y;
}

/* The generations in dir, oldest first. */
static int list_gens(struct sc_journal *j, unsigned long long **gens, size_t *n,
                     struct sc_error *err)
{
	*gens = NULL;
	*n = 0;
	DIR *d = fdopendir(dup(j->dirfd));
	if (!d)
		return sc_error_set(err, SC_EIO, "journal %s: cannot read: %s", j->dir,
		                    strerror(errno));
	rewinddir(d);
	size_t cap = 0;
	int rc = SC_OK;
	for (struct dirent *e; !rc && (e = readdir(d));) {
		unsigned long long g;
		if (gen_name(e->d_name, ".spare", &g)) {
			/* kept for reuse by an earlier process: every record in
			 * it was checkpointed */
			unlinkat(j->dirfd, e->d_name, 0);
			continue;
		}
		if (!gen_name(e->d_name, ".journal", &g))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			unsigned long long *m = realloc(*gens, cap * sizeof *m);
			if (!m) {
				rc = sc_error_set(err, SC_ENOMEM, "out of memory");
				break;
			}
			*gens = m;
		}
		(*gens)[(*n)++] = g;
	}
	closedir(d);
	if (*n)
		qsort(*gens, *n, sizeof **gens, by_gen);
	return rc;
}

/* Replay every leftover file, make the sink's redone work durable, then
 * delete them. */
static int recover(struct sc_journal *j, struct sc_error *err)
{
	unsigned long long *gens;
	size_t n;
	int rc = list_gens(j, &gens, &n, err);
	int begun = 0;
	for (size_t i = 0; !rc && i < n; i++) {
		char *path = file_path(j, gens[i]);
		int fd = path ? open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
		if (fd < 0) {
			rc = sc_error_set(err, SC_EIO, "journal: cannot open %s: %s",
			                  path ? path : j->dir, strerror(errno));
		} else {
			int valid = 0;
			unsigned long long ignored = 0;
			rc = journal_read(fd, &j->hooks, !begun, &valid, &ignored, err);
			begun |= valid;
			if (!rc && valid && ignored)
				sc_log(SC_LOG_INFO,
				       "journal %s: %llu.journal: %llu bytes after the last valid "
				       "record ignored (the old contents of a reused file, or a "
				       "record torn by the crash or altered)",
				       j->dir, gens[i], ignored);
			close(fd);
		}
		free(path);
		if (gens[i] >= j->next_gen)
			j->next_gen = gens[i] + 1;
	}
	if (!rc && n && syncfs(j->dirfd))
		rc = sc_error_set(err, SC_EIO, "journal %s: cannot flush the replayed work: %s",
		                  j->dir, strerror(errno));
	for (size_t i = 0; !rc && i < n; i++) {
		char *path = file_path(j, gens[i]);
		if (!path || unlink(path))
			rc = sc_error_set(err, SC_EIO, "journal: cannot remove %s: %s",
			                  path ? path : j->dir, strerror(errno));
		free(path);
	}
	free(gens);
	return rc;
}

int sc_journal_open(const char *dir, const struct sc_journal_hooks *hooks, struct sc_journal **out,
                    struct sc_error *err)
{
	*out = NULL;
	struct sc_journal *j = calloc(1, sizeof *j);
	if (!j || !(j->dir = strdup(dir))) {
		free(j);
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	if (hooks)
		j->hooks = *hooks;
	j->sealed_tail = &j->sealed;
	j->next_gen = 1;
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->work, NULL);
	int rc = SC_OK;
	if (!(j->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)))
		rc = sc_error_set(err, SC_EINTERNAL, "journal: OpenSSL has no SHA-256");
	j->dirfd = -1;
	if (!rc && (sc_dir_make(dir) ||
	            (j->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)) {
		rc = sc_error_set(err, SC_EIO, "journal: cannot open %s: %s", dir, strerror(errno));
		j->dirfd = -1;
	}
	if (!rc)
		rc = recover(j, err);
	if (!rc) {
		pthread_mutex_lock(&j->mu);
		if (rotate(j))
			rc = sc_error_set(err, SC_EIO, "journal %s: cannot start a file: %s", dir,
			                  strerror(errno));
		pthread_mutex_unlock(&j->mu);
	}
	if (!rc && pthread_create(&j->thread, NULL, checkpoint_thread, j))
		rc = sc_error_set(err, SC_ENOMEM, "journal %s: cannot start its thread", dir);
	j->thread_started = !rc;
	if (!rc && journal_flusher_start(j, &j->flusher))
		rc = sc_error_set(err, SC_ENOMEM, "journal %s: cannot start its flusher thread",
		                  dir);
	if (rc) {
		sc_journal_close(j);
		return rc;
	}
	*out = j;
	return SC_OK;
}

void sc_journal_close(struct sc_journal *j)
{
	if (!j)
		return;
	/* first: its waiters' flushes, and what their callbacks do, may
	 * still need the checkpoint thread's rotation and the files */
	journal_flusher_stop(j->flusher);
	pthread_mutex_lock(&j->mu);
	j->stop = 1;
	pthread_cond_signal(&j->work);
	pthread_mutex_unlock(&j->mu);
	if (j->thread_started)
		pthread_join(j->thread, NULL);
	/* everything is done: one flush covers every file left */
	if (j->cur) {
		*j->sealed_tail = j->cur;
		j->sealed_tail = &j->cur->next;
		j->cur = NULL;
	}
	int flushed = j->sealed && j->dirfd >= 0 && syncfs(j->dirfd) == 0;
	if (j->sealed && !flushed)
		sc_log(SC_LOG_WARN, "journal %s: final flush failed (%s): kept for the next start",
		       j->dir, strerror(errno));
	for (struct jfile *f = j->sealed, *next; f; f = next) {
		next = f->next;
		if (flushed && !f->refs) {
			char *path = file_path(j, f->gen);
			if (path)
				unlink(path);
			free(path);
		}
		file_free(f);
	}
	for (int i = 0; i < j->nspare; i++) {
		char *path = spare_path(j, j->spares[i].gen);
		if (path)
			unlink(path);
		free(path);
		close(j->spares[i].fd);
	}
	if (j->dirfd >= 0)
		close(j->dirfd);
	pthread_cond_destroy(&j->work);
	pthread_mutex_destroy(&j->mu);
	EVP_MD_free(j->sha256);
	free(j->dir);
	free(j);
}
