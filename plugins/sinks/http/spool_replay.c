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
		int again = !sc_journal_body_matches(neml, fd, off, len);
		if (sc_journal_restore(tenv, nenv, text, strlen(text), -1, 0, 0) ||
		    (again && sc_journal_restore(teml, neml, NULL, 0, fd, off, len)))
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
