/* The spool's life after a message is in new/: its retry state, its move
 * to failed/, and the rescan at start that picks up whatever an earlier
 * process (crashed, killed or stopped) left. */
#include "http_sink.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* made durable by hs_spool_fail's group commit */
static int put_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	size_t n = strlen(text);
	ssize_t w = write(fd, text, n);
	int rc = (w < 0 || (size_t)w != n) ? -1 : 0;
	if (close(fd))
		rc = -1;
	return rc;
}

static int move(const struct hs_spool *sp, const char *id, const char *ext)
{
	char *from = hs_spool_path(sp, "new", id, ext), *to = hs_spool_path(sp, "failed", id, ext);
	int rc = from && to ? rename(from, to) : -1;
	free(from), free(to);
	return rc;
}

int hs_spool_fail(struct hs_spool *sp, const char *id, const char *reason, struct sc_error *err)
{
	char *rpath = hs_spool_path(sp, "failed", id, ".reason");
	char *text = sc_asprintf("%s\n", reason ? reason : "unknown");
	char *retry = hs_spool_path(sp, "new", id, ".retry");
	int rc = rpath && text && retry ? SC_OK : sc_error_set(err, SC_ENOMEM, "out of memory");
	/* the reason first: a message in failed/ always says why */
	if (!rc && (put_text(rpath, text) || move(sp, id, ".eml") ||
	            (move(sp, id, ".env") && errno != ENOENT)))
		rc = sc_error_set(err, SC_EIO,
		                  "spool %s: cannot move %s to failed/ (it stays in new/): %s",
		                  sp->dir, id, strerror(errno));
	if (!rc)
		unlink(retry);
	/* the moves durable, and with them the .eml's data, which may so far
	 * be only in the journal; then the "done" record flushed, so that a
	 * replay cannot put the message back into new/ */
	if (!rc && sc_commit_wait(sp->commit))
		rc = sc_error_set(err, SC_EIO,
		                  "spool %s: cannot make the move of %s to failed/ "
		                  "durable: %s",
		                  sp->dir, id, strerror(errno));
	if (!rc && hs_spool_journal_done(sp, id))
		rc = sc_error_set(err, SC_EIO,
		                  "spool %s: %s is in failed/, but cannot journal it: "
		                  "%s; after a crash it may be tried again",
		                  sp->dir, id, strerror(errno));
	free(rpath), free(text), free(retry);
	return rc;
}

void hs_spool_retry_state(struct hs_spool *sp, const char *id, unsigned attempts, double next,
                          const char *last)
{
	cJSON *j = cJSON_CreateObject();
	char *text = NULL, *tmp = hs_spool_path(sp, "tmp", id, ".retry"),
	     *dst = hs_spool_path(sp, "new", id, ".retry");
	if (j && cJSON_AddNumberToObject(j, "attempts", attempts) &&
	    cJSON_AddNumberToObject(j, "next", next) &&
	    cJSON_AddStringToObject(j, "last", last ? last : ""))
		text = cJSON_PrintUnformatted(j);
	/* no fsync: a lost state only makes the next attempt come sooner */
	if (text && tmp && dst) {
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		size_t n = strlen(text);
		ssize_t w = fd >= 0 ? write(fd, text, n) : -1;
		if (fd >= 0)
			close(fd);
		if (w >= 0 && (size_t)w == n)
			rename(tmp, dst);
		else
			unlink(tmp);
	}
	cJSON_Delete(j);
	free(text), free(tmp), free(dst);
}

static void read_retry(const struct hs_spool *sp, const char *id, unsigned *attempts, double *next)
{
	*attempts = 0;
	*next = 0;
	char *path = hs_spool_path(sp, "new", id, ".retry");
	FILE *f = path ? fopen(path, "re") : NULL;
	free(path);
	if (!f)
		return;
	char text[512]; /* our own small file; anything longer is not ours */
	size_t n = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	text[n] = '\0';
	cJSON *j = hs_json_parse(text, n);
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "attempts"),
	            *t = cJSON_GetObjectItemCaseSensitive(j, "next");
	if (cJSON_IsNumber(a) && a->valuedouble >= 0 && a->valuedouble < 1e6)
		*attempts = (unsigned)a->valuedouble;
	if (cJSON_IsNumber(t))
		*next = t->valuedouble;
	cJSON_Delete(j);
}

static int ends_with(const char *s, const char *ext)
{
	size_t n = strlen(s), e = strlen(ext);
	return n > e && strcmp(s + n - e, ext) == 0;
}

/* Remove every file in dir (tmp/: nothing there was answered 250). */
static void clear_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	int fd = dirfd(d);
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.')
			unlinkat(fd, e->d_name, 0);
	closedir(d);
}

/* One message of new/ and when its file was written (the listener's
 * ids are random, so they say nothing of age). */
struct spooled {
	struct timespec written;
	char *id;
};

static int older(const void *a, const void *b)
{
	const struct spooled *x = a, *y = b;
	if (x->written.tv_sec != y->written.tv_sec)
		return x->written.tv_sec < y->written.tv_sec ? -1 : 1;
	if (x->written.tv_nsec != y->written.tv_nsec)
		return x->written.tv_nsec < y->written.tv_nsec ? -1 : 1;
	return strcmp(x->id, y->id);
}

/* The ids of new/'s messages, oldest first (by the .eml's mtime: the
 * rename into new/ keeps it), so that a restart POSTs in arrival order. */
static int list_new(const char *dir, char ***ids, size_t *n, struct sc_error *err)
{
	DIR *d = opendir(dir);
	if (!d)
		return sc_error_set(err, SC_EIO, "spool: cannot read %s: %s", dir, strerror(errno));
	size_t cap = 0;
	struct spooled *all = NULL;
	int rc = SC_OK;
	for (struct dirent *e; !rc && (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		int eml = ends_with(e->d_name, ".eml");
		if (!eml) {
			size_t ext = ends_with(e->d_name, ".env")     ? 4
			             : ends_with(e->d_name, ".retry") ? 6
			                                              : 0;
			if (ext) {
				/* an envelope (or retry state) without its message: the
				 * crash came before the message's rename, so it was never
				 * answered 250 (or after its removal) */
				size_t l = strlen(e->d_name) - ext;
				char *m = sc_asprintf("%s/%.*s.eml", dir, (int)l, e->d_name);
				if (m && access(m, F_OK) && errno == ENOENT)
					unlinkat(dirfd(d), e->d_name, 0);
				free(m);
			}
			continue;
		}
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			struct spooled *g = realloc(all, cap * sizeof *g);
			if (!g) {
				rc = sc_error_set(err, SC_ENOMEM, "out of memory");
				break;
			}
			all = g;
		}
		struct stat st;
		struct timespec t = {0};
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			t = st.st_mtim;
		all[*n].written = t;
		if (!(all[*n].id = strndup(e->d_name, strlen(e->d_name) - 4)))
			rc = sc_error_set(err, SC_ENOMEM, "out of memory");
		else
			(*n)++;
	}
	closedir(d);
	if (!rc && *n) {
		qsort(all, *n, sizeof *all, older);
		if (!(*ids = malloc(*n * sizeof **ids)))
			rc = sc_error_set(err, SC_ENOMEM, "out of memory");
		for (size_t i = 0; !rc && i < *n; i++)
			(*ids)[i] = all[i].id;
	}
	if (rc) {
		for (size_t i = 0; i < *n; i++)
			free(all[i].id);
		*n = 0;
	}
	free(all);
	return rc;
}

int hs_spool_scan(struct hs_spool *sp, hs_spool_fn fn, void *arg, struct sc_error *err)
{
	char *tmp = sc_asprintf("%s/tmp", sp->dir), *nd = sc_asprintf("%s/new", sp->dir);
	char **ids = NULL;
	size_t n = 0;
	int rc = tmp && nd ? SC_OK : sc_error_set(err, SC_ENOMEM, "out of memory");
	if (!rc) {
		clear_dir(tmp);
		rc = list_new(nd, &ids, &n, err);
	}
	for (size_t i = 0; !rc && i < n; i++) {
		unsigned attempts;
		double next;
		read_retry(sp, ids[i], &attempts, &next);
		rc = fn(arg, ids[i], attempts, next);
		if (rc)
			sc_error_set(err, rc, "out of memory queueing the spool");
	}
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids), free(tmp), free(nd);
	return rc;
}
