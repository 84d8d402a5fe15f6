/* The spool after a crash: what the journal (sink.h, sc_journal_*) hands
 * back is redone, in order, so that new/ holds every message answered
 * 250 and not yet delivered, intact, whatever writeback the crash lost.
 *
 * A record's meta is {"op": "add", "id": ID, "env": ENVELOPE} with the
 * message's bytes as its body (spool.c, hs_spool_add), or {"op": "done",
 * "id": ID} without one (delivered, or moved to failed/). A record that
 * passed the journal's hash but is not usable (never expected: another
 * version, or a bug) is skipped with a warning rather than stopping the
 * listener; the journal is still untrusted input, so ids are checked
 * before they name a file and the body is read in bounded blocks. */
#include "http_sink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK 65536

/* The file at path holds exactly len bytes at off of fd? */
static int same(const char *path, int fd, unsigned long long off, unsigned long long len)
{
	int in = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (in < 0)
		return 0;
	int eq =
	    fstat(in, &st) == 0 && S_ISREG(st.st_mode) && (unsigned long long)st.st_size == len;
	char *a = eq ? malloc(2 * CHUNK) : NULL;
	eq = eq && a;
	for (unsigned long long done = 0; eq && done < len;) {
		size_t k = len - done < CHUNK ? (size_t)(len - done) : CHUNK;
		eq = pread(in, a, k, (off_t)done) == (ssize_t)k &&
		     pread(fd, a + CHUNK, k, (off_t)(off + done)) == (ssize_t)k &&
		     memcmp(a, a + CHUNK, k) == 0;
		done += k;
	}
	free(a);
	close(in);
	return eq;
}

/* len bytes at off of fd (or text, when fd < 0) into tmp, renamed to
 * dst. Made durable by the journal's syncfs after the replay. 0 or -1
 * with errno. */
static int put(const char *tmp, const char *dst, const char *text, int fd, unsigned long long off,
               unsigned long long len)
{
	int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		return -1;
	int bad = 0;
	if (fd < 0) {
		bad = sc_write_all(out, text, strlen(text));
	} else {
		char *chunk = malloc(CHUNK);
		bad = !chunk;
		if (bad)
			errno = ENOMEM;
		for (unsigned long long done = 0; !bad && done < len;) {
			size_t k = len - done < CHUNK ? (size_t)(len - done) : CHUNK;
			ssize_t n = pread(fd, chunk, k, (off_t)(off + done));
			if (n != (ssize_t)k && n >= 0)
				errno = EIO; /* the journal shorter than its record said */
			bad = n != (ssize_t)k || sc_write_all(out, chunk, k);
			done += k;
		}
		free(chunk);
	}
	int e = errno;
	if (close(out) && !bad)
		bad = 1, e = errno;
	if (!bad && rename(tmp, dst))
		bad = 1, e = errno;
	if (bad)
		unlink(tmp);
	errno = e;
	return bad ? -1 : 0;
}

/* "add": new/<id>.env as journaled (rewritten: small), then new/<id>.eml
 * if it is missing or not the journaled bytes; nothing when the message
 * was moved to failed/ (its "done" follows, or it was never waited for
 * and the move is what counts). */
static int redo_add(struct hs_spool *sp, const char *id, const cJSON *env, int fd,
                    unsigned long long off, unsigned long long len, struct sc_error *err)
{
	char *failed = hs_spool_path(sp, "failed", id, ".eml"),
	     *tenv = hs_spool_path(sp, "tmp", id, ".env"),
	     *nenv = hs_spool_path(sp, "new", id, ".env"),
	     *teml = hs_spool_path(sp, "tmp", id, ".eml"),
	     *neml = hs_spool_path(sp, "new", id, ".eml");
	char *text = cJSON_PrintUnformatted(env);
	int rc = failed && tenv && nenv && teml && neml && text
	             ? SC_OK
	             : sc_error_set(err, SC_ENOMEM, "out of memory");
	struct stat st;
	if (!rc && lstat(failed, &st) != 0) {
		int again = !same(neml, fd, off, len);
		if (put(tenv, nenv, text, -1, 0, 0) ||
		    (again && put(teml, neml, NULL, fd, off, len)))
			rc = sc_error_set(err, SC_EIO, "spool %s: cannot put %s back into new/: %s",
			                  sp->dir, id, strerror(errno));
		else if (again)
			sc_log(SC_LOG_INFO, "spool %s: new/%s.eml written again from the journal",
			       sp->dir, id);
	}
	free(failed), free(tenv), free(nenv), free(teml), free(neml), free(text);
	return rc;
}

/* "done": delivered or in failed/; whatever a replayed "add" put back
 * goes (missing files are fine). */
static int redo_done(struct hs_spool *sp, const char *id, struct sc_error *err)
{
	static const char *const ext[] = {".eml", ".env", ".retry"};
	for (size_t i = 0; i < sizeof ext / sizeof *ext; i++) {
		char *p = hs_spool_path(sp, "new", id, ext[i]);
		if (!p)
			return sc_error_set(err, SC_ENOMEM, "out of memory");
		int bad = unlink(p) && errno != ENOENT;
		int e = errno;
		free(p);
		if (bad)
			return sc_error_set(err, SC_EIO, "spool %s: cannot remove new/%s%s: %s",
			                    sp->dir, id, ext[i], strerror(e));
	}
	return SC_OK;
}

int hs_spool_replay(void *arg, const char *meta, size_t meta_len, int fd,
                    unsigned long long body_off, unsigned long long body_len, struct sc_error *err)
{
	struct hs_spool *sp = arg;
	cJSON *j = hs_json_parse(meta, meta_len);
	const cJSON *op = cJSON_GetObjectItemCaseSensitive(j, "op"),
	            *id = cJSON_GetObjectItemCaseSensitive(j, "id"),
	            *env = cJSON_GetObjectItemCaseSensitive(j, "env");
	const char *o = cJSON_IsString(op) ? op->valuestring : "";
	int rc = SC_OK;
	if (!cJSON_IsString(id) || !hs_id_ok(id->valuestring))
		sc_log(SC_LOG_WARN, "spool %s: a journal record without a usable id skipped",
		       sp->dir);
	else if (strcmp(o, "add") == 0 && cJSON_IsObject(env))
		rc = redo_add(sp, id->valuestring, env, fd, body_off, body_len, err);
	else if (strcmp(o, "done") == 0)
		rc = redo_done(sp, id->valuestring, err);
	else
		sc_log(SC_LOG_WARN, "spool %s: a journal record for %s of no known op skipped",
		       sp->dir, id->valuestring);
	cJSON_Delete(j);
	return rc;
}
