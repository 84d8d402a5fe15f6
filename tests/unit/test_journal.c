/* Unit tests for the sinks' write-ahead journal (core/serve/journal.c,
 * journal_read.c). A crash is a child process that appends and exits
 * without sc_journal_close(): what it left is what the parent's
 * sc_journal_open() must replay, in order, and nothing torn or altered. */
#define _GNU_SOURCE /* memmem */
#include "journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

/* What replay saw. */
struct seen {
	int begun;
	unsigned long long mark;
	int n;
	char meta[8][64];
	char body[8][256];
	unsigned long long marks_given; /* for the mark hook */
};

static unsigned long long mark_hook(void *arg)
{
	struct seen *s = arg;
	return s->marks_given++ ? 42 : 7;
}

static int begin_hook(void *arg, unsigned long long mark, struct sc_error *err)
{
	(void)err;
	struct seen *s = arg;
	s->begun++;
	s->mark = mark;
	return SC_OK;
}

static int replay_hook(void *arg, const char *meta, size_t meta_len, int fd, unsigned long long off,
                       unsigned long long len, struct sc_error *err)
{
	(void)err;
	struct seen *s = arg;
	assert_true(s->n < 8);
	assert_true(meta_len < 64 && len < 256);
	memcpy(s->meta[s->n], meta, meta_len);
	s->meta[s->n][meta_len] = '\0';
	assert_int_equal(pread(fd, s->body[s->n], (size_t)len, (off_t)off), (ssize_t)len);
	s->body[s->n][len] = '\0';
	s->n++;
	return SC_OK;
}

static char *temp_dir(void)
{
	char *d = strdup("/tmp/test_journal.XXXXXX");
	assert_non_null(mkdtemp(d));
	return d;
}

static void remove_tree(const char *dir)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* The files in dir whose name ends in ext. */
static int count_ext(const char *dir, const char *ext)
{
	DIR *d = opendir(dir);
	int n = 0;
	if (!d)
		return -1;
	size_t el = strlen(ext);
	for (struct dirent *e; (e = readdir(d));) {
		size_t l = strlen(e->d_name);
		n += e->d_name[0] != '.' && l > el && strcmp(e->d_name + l - el, ext) == 0;
	}
	closedir(d);
	return n;
}

/* The journal files (a checkpointed file kept for reuse is a .spare). */
static int count_files(const char *dir)
{
	return count_ext(dir, ".journal");
}

static void append(struct sc_journal *j, const char *meta, const char *body, int fd,
                   unsigned long long fd_len, int done)
{
	struct sc_journal_entry e = {meta, strlen(meta), body, body ? strlen(body) : 0, fd, fd_len};
	struct sc_journal_ticket t;
	assert_int_equal(sc_journal_append(j, &e, &t), SC_OK);
	assert_int_equal(sc_journal_wait(j, &t), SC_OK);
	if (done)
		sc_journal_done(j, &t);
}

/* Child: open, append the records, leave without closing (a crash). */
static void crash_after(const char *dir, void (*work)(struct sc_journal *, void *), void *arg)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct sc_error err = {0};
		struct seen s = {0};
		const struct sc_journal_hooks h = {&s, mark_hook, NULL, NULL};
		struct sc_journal *j;
		if (sc_journal_open(dir, &h, &j, &err))
			_exit(3);
		work(j, arg);
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static int reopen(const char *dir, struct seen *s, struct sc_journal **j)
{
	struct sc_error err = {0};
	const struct sc_journal_hooks h = {s, mark_hook, begin_hook, replay_hook};
	return sc_journal_open(dir, &h, j, &err);
}

static void three_records(struct sc_journal *j, void *arg)
{
	const char *path = arg;
	int fd = open(path, O_RDONLY);
	append(j, "first", NULL, -1, 0, 1);
	append(j, "second", "mem:", fd, 5, 1); /* body: "mem:" then 5 bytes of the file */
	append(j, "third", "x", -1, 0, 1);
	close(fd);
}

static char *body_file(const char *dir)
{
	char *p = sc_asprintf("%s/body", dir);
	FILE *f = fopen(p, "w");
	fputs("hello world", f);
	fclose(f);
	return p;
}

static void replays_in_order_then_starts_afresh(void **state)
{
	(void)state;
	char *top = temp_dir(), *dir = sc_asprintf("%s/j", top), *body = body_file(top);
	crash_after(dir, three_records, body);
	struct seen s = {0};
	struct sc_journal *j;
	assert_int_equal(reopen(dir, &s, &j), SC_OK);
	assert_int_equal(s.begun, 1);
	assert_int_equal(s.mark, 7); /* the first file's mark */
	assert_int_equal(s.n, 3);
	assert_string_equal(s.meta[0], "first");
	assert_string_equal(s.body[0], "");
	assert_string_equal(s.meta[1], "second");
	assert_string_equal(s.body[1], "mem:hello");
	assert_string_equal(s.meta[2], "third");
	assert_string_equal(s.body[2], "x");
	/* the old file is gone; a new one (header only) takes appends */
	assert_int_equal(count_files(dir), 1);
	sc_journal_close(j);
	assert_int_equal(count_files(dir), 0); /* a clean stop leaves nothing */
	struct seen again = {0};
	assert_int_equal(reopen(dir, &again, &j), SC_OK);
	assert_int_equal(again.begun, 0);
	assert_int_equal(again.n, 0);
	sc_journal_close(j);
	remove_tree(top);
	free(top), free(dir), free(body);
}

static char *only_journal(const char *dir)
{
	DIR *d = opendir(dir);
	char *p = NULL;
	for (struct dirent *e; (e = readdir(d));)
		if (strstr(e->d_name, ".journal"))
			p = sc_asprintf("%s/%s", dir, e->d_name);
	closedir(d);
	assert_non_null(p);
	return p;
}

static void torn_and_altered_records_end_the_replay(void **state)
{
	(void)state;
	char *top = temp_dir(), *dir = sc_asprintf("%s/j", top), *body = body_file(top);
	crash_after(dir, three_records, body);
	char *path = only_journal(dir);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	/* torn: the last record lost its last byte */
	assert_int_equal(truncate(path, st.st_size - 1), 0);
	struct seen s = {0};
	struct sc_journal *j;
	assert_int_equal(reopen(dir, &s, &j), SC_OK);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.meta[1], "second");
	sc_journal_close(j);
	free(path);

	/* altered: one byte of the second record's body */
	crash_after(dir, three_records, body);
	path = only_journal(dir);
	int fd = open(path, O_RDWR);
	char buf[4096];
	ssize_t n = pread(fd, buf, sizeof buf, 0);
	char *at = memmem(buf, (size_t)n, "mem:hello", 9);
	assert_non_null(at);
	assert_int_equal(pwrite(fd, "J", 1, at - buf), 1);
	close(fd);
	struct seen s2 = {0};
	assert_int_equal(reopen(dir, &s2, &j), SC_OK);
	assert_int_equal(s2.n, 1);
	assert_string_equal(s2.meta[0], "first");
	sc_journal_close(j);
	remove_tree(top);
	free(top), free(dir), free(body), free(path);
}

/* A version 1 file, as an older build left it after a crash (48-byte
 * header, a record hashed without a seed), written here by hand: still
 * replayed. */
static void version_1_files_are_read(void **state)
{
	(void)state;
	char *top = temp_dir(), *dir = sc_asprintf("%s/j", top);
	assert_int_equal(mkdir(dir, 0700), 0);
	unsigned char f[48 + 16 + 3 + 2 + 32] = "SCJ1", *r = f + 48;
	unsigned int len = 0;
	journal_put32(f + 4, 1);
	journal_put64(f + 8, 5);
	assert_true(EVP_Digest(f, 16, f + 16, &len, EVP_sha256(), NULL));
	memcpy(r, "SCJR", 4);
	journal_put32(r + 4, 3);
	journal_put64(r + 8, 2);
	memcpy(r + 16, "oldhi", 5);
	assert_true(EVP_Digest(r, 21, r + 21, &len, EVP_sha256(), NULL));
	char *p = sc_asprintf("%s/1.journal", dir);
	int fd = open(p, O_WRONLY | O_CREAT, 0600);
	assert_int_equal(write(fd, f, sizeof f), (ssize_t)sizeof f);
	close(fd);
	struct seen s = {0};
	struct sc_journal *j;
	assert_int_equal(reopen(dir, &s, &j), SC_OK);
	assert_int_equal(s.mark, 5);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.meta[0], "old");
	assert_string_equal(s.body[0], "hi");
	sc_journal_close(j);
	remove_tree(top);
	free(top), free(dir), free(p);
}

static void garbage_files(void **state)
{
	(void)state;
	char *top = temp_dir(), *dir = sc_asprintf("%s/j", top);
	assert_int_equal(mkdir(dir, 0700), 0);
	/* a file with a bad header (a crash while it was created) holds
	 * nothing acknowledged; names that are not ours are left alone */
	const char *names[] = {"3.journal", "x.journal", "03.journal", "4.journal.tmp"};
	for (size_t i = 0; i < 4; i++) {
		char *p = sc_asprintf("%s/%s", dir, names[i]);
		FILE *f = fopen(p, "w");
		fputs("SCJ1 not really a header, and longer than forty-eight bytes of it", f);
		fclose(f);
		free(p);
	}
	struct seen s = {0};
	struct sc_journal *j;
	assert_int_equal(reopen(dir, &s, &j), SC_OK);
	assert_int_equal(s.begun, 0);
	assert_int_equal(s.n, 0);
	char *p = sc_asprintf("%s/3.journal", dir);
	assert_int_equal(access(p, F_OK), -1); /* replayed (nothing) and removed */
	free(p);
	p = sc_asprintf("%s/4.journal", dir); /* the next generation */
	assert_int_equal(access(p, F_OK), 0);
	free(p);
	p = sc_asprintf("%s/x.journal", dir);
	assert_int_equal(access(p, F_OK), 0);
	free(p);
	sc_journal_close(j);
	remove_tree(top);
	free(top), free(dir);
}

struct rot_arg {
	int done_first;
	const char *dir;
};

/* Records across a rotation (a file seals when it is a second old); the
 * first one done or not (then its file cannot be checkpointed). */
static void across_rotation(struct sc_journal *j, void *arg)
{
	const struct rot_arg *a = arg;
	append(j, "A", NULL, -1, 0, a->done_first);
	struct timespec d = {1, 100000000};
	nanosleep(&d, NULL);
	append(j, "B", NULL, -1, 0, 1);
	if (a->done_first) {
		/* wait (bounded) for the checkpoint to remove the sealed file */
		for (int i = 0; i < 100 && count_files(a->dir) > 1; i++)
			nanosleep(&(struct timespec){0, 50000000}, NULL);
	}
}

static void rotation_and_checkpoint(void **state)
{
	(void)state;
	char *top = temp_dir(), *dir = sc_asprintf("%s/j", top);
	/* A not done: both files are left, replayed from the first's mark */
	struct rot_arg a = {0, dir};
	crash_after(dir, across_rotation, &a);
	assert_int_equal(count_files(dir), 2);
	struct seen s = {0};
	struct sc_journal *j;
	assert_int_equal(reopen(dir, &s, &j), SC_OK);
	assert_int_equal(s.mark, 7);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.meta[0], "A");
	assert_string_equal(s.meta[1], "B");
	sc_journal_close(j);
	/* A done: the checkpoint syncs and deletes the sealed file, so only
	 * B is replayed, from the second file's mark */
	struct rot_arg b = {1, dir};
	crash_after(dir, across_rotation, &b);
	assert_int_equal(count_files(dir), 1);
	struct seen s2 = {0};
	assert_int_equal(reopen(dir, &s2, &j), SC_OK);
	assert_int_equal(s2.mark, 42);
	assert_int_equal(s2.n, 1);
	assert_string_equal(s2.meta[0], "B");
	/* the checkpointed file was kept for reuse, and opening removed it */
	assert_int_equal(count_ext(dir, ".spare"), 0);
	sc_journal_close(j);
	remove_tree(top);
	free(top), free(dir);
}

/* Many records in generation 1, all done; generation 2 takes one; its
 * checkpoint makes generation 1 a spare, and generation 3 reuses it with
 * one record, over the old ones. */
static void reuse_a_spare(struct sc_journal *j, void *arg)
{
	const char *dir = arg;
	char meta[32];
	for (int i = 0; i < 40; i++) {
		snprintf(meta, sizeof meta, "old %d", i);
		append(j, meta, "stale body stale body stale body", -1, 0, 1);
	}
	struct timespec d = {1, 100000000};
	nanosleep(&d, NULL);
	append(j, "second", NULL, -1, 0, 1);
	for (int i = 0; i < 100 && count_ext(dir, ".spare") < 1; i++)
		nanosleep(&(struct timespec){0, 50000000}, NULL);
	assert_int_equal(count_ext(dir, ".spare"), 1);
	nanosleep(&d, NULL);
	append(j, "third", "new", -1, 0, 0); /* not done: its file stays */
}

static void a_reused_file_replays_only_its_own_records(void **state)
{
	(void)state;
	char *top = temp_dir(), *dir = sc_asprintf("%s/j", top);
	crash_after(dir, reuse_a_spare, dir);
	/* generation 3 is generation 1's file, longer than its one record */
	char *g3 = sc_asprintf("%s/3.journal", dir);
	struct stat st;
	assert_int_equal(stat(g3, &st), 0);
	assert_true(st.st_size > 40 * 60);
	struct seen s = {0};
	struct sc_journal *j;
	assert_int_equal(reopen(dir, &s, &j), SC_OK);
	assert_int_equal(s.n >= 1 && s.n <= 2, 1);
	assert_string_equal(s.meta[s.n - 1], "third");
	assert_string_equal(s.body[s.n - 1], "new");
	for (int i = 0; i < s.n; i++)
		assert_null(strstr(s.meta[i], "old"));
	sc_journal_close(j);
	remove_tree(top);
	free(top), free(dir), free(g3);
}

/* One record, done; then nothing more is appended. */
static void one_record_then_idle(struct sc_journal *j, void *arg)
{
	const char *dir = arg;
	append(j, "lonely", "body", -1, 0, 1);
	/* bounded: sealed after 1 s of age, then checkpointed */
	for (int i = 0; i < 100 && count_files(dir) > 0; i++)
		nanosleep(&(struct timespec){0, 50000000}, NULL);
	assert_int_equal(count_files(dir), 0);
	assert_int_equal(count_ext(dir, ".spare"), 1);
	/* the next append starts a file, taking a spare */
	append(j, "later", NULL, -1, 0, 0);
	assert_int_equal(count_files(dir), 1);
}

static void an_idle_journal_is_checkpointed(void **state)
{
	(void)state;
	char *top = temp_dir(), *dir = sc_asprintf("%s/j", top);
	crash_after(dir, one_record_then_idle, dir);
	struct seen s = {0};
	struct sc_journal *j;
	assert_int_equal(reopen(dir, &s, &j), SC_OK);
	/* "lonely" was covered by the idle checkpoint: not redone */
	assert_int_equal(s.n, 1);
	assert_string_equal(s.meta[0], "later");
	assert_int_equal(s.mark, 42); /* taken by that append, not by the seal */
	sc_journal_close(j);
	remove_tree(top);
	free(top), free(dir);
}

static void short_body_file_is_refused(void **state)
{
	(void)state;
	char *top = temp_dir(), *dir = sc_asprintf("%s/j", top), *body = body_file(top);
	struct seen s = {0};
	struct sc_journal *j;
	assert_int_equal(reopen(dir, &s, &j), SC_OK);
	int fd = open(body, O_RDONLY);
	struct sc_journal_entry e = {"m", 1, NULL, 0, fd, 1000}; /* the file has 11 bytes */
	struct sc_journal_ticket t;
	assert_int_equal(sc_journal_append(j, &e, &t), SC_EIO);
	close(fd);
	/* nothing was written: the journal goes on */
	append(j, "after", NULL, -1, 0, 1);
	sc_journal_close(j);
	remove_tree(top);
	free(top), free(dir), free(body);
}

static int replay_fails(void *arg, const char *meta, size_t meta_len, int fd,
                        unsigned long long off, unsigned long long len, struct sc_error *err)
{
	(void)arg, (void)meta, (void)meta_len, (void)fd, (void)off, (void)len;
	return sc_error_set(err, SC_EIO, "disk full");
}

static void a_failed_replay_keeps_the_journal(void **state)
{
	(void)state;
	char *top = temp_dir(), *dir = sc_asprintf("%s/j", top), *body = body_file(top);
	crash_after(dir, three_records, body);
	struct sc_error err = {0};
	const struct sc_journal_hooks h = {NULL, NULL, NULL, replay_fails};
	struct sc_journal *j = NULL;
	assert_int_equal(sc_journal_open(dir, &h, &j, &err), SC_EIO);
	assert_null(j);
	assert_non_null(strstr(err.message, "disk full"));
	sc_error_clear(&err);
	assert_int_equal(count_files(dir), 1); /* kept for the next start */
	struct seen s = {0};
	assert_int_equal(reopen(dir, &s, &j), SC_OK);
	assert_int_equal(s.n, 3);
	sc_journal_close(j);
	remove_tree(top);
	free(top), free(dir), free(body);
}

/* Many threads appending and waiting at once, as the delivery threads
 * do: flushes overlap appends, so waiters fall into the running flush's
 * group and the next one's. Each wait must return, durable, and every
 * record is there after a crash. A lost wake-up would hang: the child
 * has an alarm. */
#define CW_THREADS 16
#define CW_EACH 60

struct cw_arg {
	struct sc_journal *j;
	int id, failed;
};

static void *cw_thread(void *arg)
{
	struct cw_arg *a = arg;
	for (int k = 0; k < CW_EACH; k++) {
		char meta[32];
		snprintf(meta, sizeof meta, "t%d-%d", a->id, k);
		struct sc_journal_entry e = {meta, strlen(meta), "body", 4, -1, 0};
		struct sc_journal_ticket t;
		if (sc_journal_append(a->j, &e, &t) || sc_journal_wait(a->j, &t))
			a->failed++;
		/* no sc_journal_done: every record stays to be replayed */
	}
	return NULL;
}

static void concurrent_appends(struct sc_journal *j, void *arg)
{
	(void)arg;
	alarm(60);
	pthread_t th[CW_THREADS];
	struct cw_arg a[CW_THREADS];
	for (int i = 0; i < CW_THREADS; i++) {
		a[i] = (struct cw_arg){j, i, 0};
		if (pthread_create(&th[i], NULL, cw_thread, &a[i]))
			_exit(4);
	}
	for (int i = 0; i < CW_THREADS; i++) {
		pthread_join(th[i], NULL);
		if (a[i].failed)
			_exit(5);
	}
}

static int count_hook(void *arg, const char *meta, size_t meta_len, int fd, unsigned long long off,
                      unsigned long long len, struct sc_error *err)
{
	(void)meta, (void)meta_len, (void)fd, (void)off, (void)err;
	int *n = arg;
	*n += len == 4;
	return SC_OK;
}

static void concurrent_waiters_all_return(void **state)
{
	(void)state;
	char *top = temp_dir(), *dir = sc_asprintf("%s/j", top);
	crash_after(dir, concurrent_appends, NULL);
	int n = 0;
	struct sc_error err = {0};
	const struct sc_journal_hooks h = {&n, NULL, NULL, count_hook};
	struct sc_journal *j;
	assert_int_equal(sc_journal_open(dir, &h, &j, &err), SC_OK);
	assert_int_equal(n, CW_THREADS * CW_EACH);
	sc_journal_close(j);
	remove_tree(top);
	free(top), free(dir);
}

/* sc_journal_wait_async, as the event loop uses it: one thread appends
 * and queues, while delivery threads append and wait as before. Each
 * callback comes once, never on the caller's thread, in the order of the
 * calls, with SC_OK; every record is there after a crash. Then a close
 * with waits still queued calls each back before it returns. */
#define AW_EACH 400

struct aw {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t caller;
	struct sc_journal *j; /* set: each callback ends its ticket */
	int calls, bad;
	unsigned long long last_end;
	void *last_file;
	struct sc_journal_ticket t[AW_EACH];
};

struct aw_one {
	struct aw *w;
	int k;
};

static struct aw_one aw_ones[AW_EACH];

static void aw_done(void *arg, int rc)
{
	struct aw_one *o = arg;
	struct aw *w = o->w;
	pthread_mutex_lock(&w->mu);
	const struct sc_journal_ticket *t = &w->t[o->k];
	if (rc != SC_OK || pthread_equal(pthread_self(), w->caller) || o->k != w->calls ||
	    (t->file == w->last_file && t->end <= w->last_end))
		w->bad++;
	w->last_file = t->file;
	w->last_end = t->end;
	w->calls++;
	pthread_mutex_unlock(&w->mu);
	if (w->j)
		sc_journal_done(w->j, t);
	pthread_cond_signal(&w->cv);
}

static void aw_queue(struct sc_journal *j, struct aw *w, int k)
{
	char meta[32];
	snprintf(meta, sizeof meta, "a-%d", k);
	struct sc_journal_entry e = {meta, strlen(meta), "body", 4, -1, 0};
	aw_ones[k] = (struct aw_one){w, k};
	if (sc_journal_append(j, &e, &w->t[k]) ||
	    sc_journal_wait_async(j, &w->t[k], aw_done, &aw_ones[k]))
		_exit(6);
}

static void async_appends(struct sc_journal *j, void *arg)
{
	(void)arg;
	alarm(60);
	static struct aw w;
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	w.caller = pthread_self();
	pthread_t th[4];
	struct cw_arg a[4];
	for (int i = 0; i < 4; i++) {
		a[i] = (struct cw_arg){j, i, 0};
		if (pthread_create(&th[i], NULL, cw_thread, &a[i]))
			_exit(4);
	}
	for (int k = 0; k < AW_EACH; k++)
		aw_queue(j, &w, k);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		if (a[i].failed)
			_exit(5);
	}
	pthread_mutex_lock(&w.mu);
	while (w.calls < AW_EACH)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	if (w.bad)
		_exit(7);
}

static void async_waits_return_in_order_and_close_drains_them(void **state)
{
	(void)state;
	char *top = temp_dir(), *dir = sc_asprintf("%s/j", top);
	crash_after(dir, async_appends, NULL);
	int n = 0;
	struct sc_error err = {0};
	const struct sc_journal_hooks h = {&n, NULL, NULL, count_hook};
	struct sc_journal *j;
	assert_int_equal(sc_journal_open(dir, &h, &j, &err), SC_OK);
	assert_int_equal(n, 4 * CW_EACH + AW_EACH);
	/* close right after queueing: each callback still comes (and ends
	 * its ticket) before close returns */
	struct aw *w = calloc(1, sizeof *w);
	assert_non_null(w);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->caller = pthread_self();
	w->j = j;
	for (int k = 0; k < AW_EACH; k++)
		aw_queue(j, w, k);
	sc_journal_close(j);
	assert_int_equal(w->calls, AW_EACH);
	assert_int_equal(w->bad, 0);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
	remove_tree(top);
	free(top), free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(replays_in_order_then_starts_afresh),
	    cmocka_unit_test(torn_and_altered_records_end_the_replay),
	    cmocka_unit_test(garbage_files),
	    cmocka_unit_test(version_1_files_are_read),
	    cmocka_unit_test(rotation_and_checkpoint),
	    cmocka_unit_test(a_reused_file_replays_only_its_own_records),
	    cmocka_unit_test(short_body_file_is_refused),
	    cmocka_unit_test(an_idle_journal_is_checkpointed),
	    cmocka_unit_test(a_failed_replay_keeps_the_journal),
	    cmocka_unit_test(concurrent_waiters_all_return),
	    cmocka_unit_test(async_waits_return_in_order_and_close_drains_them),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
