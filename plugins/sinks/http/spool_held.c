/* Messages held in memory, their journal record the one durable copy,
 * until the first POST delivers them or they are written into new/
 * (http_sink.h says why and when). */
#include "http_sink.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void held_free(struct hs_held *h)
{
	free(h->id);
	cJSON_Delete(h->env);
	free(h->env_text);
	sc_buf_free(&h->eml);
	free(h);
}

int hs_spool_hold_append(struct hs_spool *sp, const struct sc_inbound *msg, cJSON *env,
                         struct hs_held **out, struct sc_error *err)
{
	*out = NULL;
	struct hs_held *h = calloc(1, sizeof *h);
	if (h)
		h->env_text = cJSON_PrintUnformatted(env);
	char *meta = h && h->env_text ? hs_spool_record_meta("add", msg->id, h->env_text) : NULL;
	if (!h || !meta || !(h->id = strdup(msg->id))) {
		free(meta);
		if (h)
			held_free(h);
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	/* no look for an existing new/<id>.eml, as hs_spool_add has: nothing
	 * of this message is in new/ until write_pair, ids are 64 random bits
	 * (serve_new_id), and the look was a directory search per message */
	const char *step = "read";
	int rc = sc_inbound_load(msg, &h->eml) ? -1 : 0;
	if (!rc) {
		step = "journal";
		const struct sc_journal_entry e = {meta, strlen(meta), h->eml.p, h->eml.len, -1, 0};
		rc = sc_journal_append(sp->journal, &e, &h->add) ? -1 : 0;
	}
	free(meta);
	if (rc) {
		int e = errno;
		held_free(h);
		return sc_error_set(err, SC_EIO, "spool %s: cannot %s %s: %s", sp->dir, step,
		                    msg->id, strerror(e));
	}
	h->env = env;
	*out = h;
	return SC_OK;
}

int hs_spool_hold_flushed(struct hs_spool *sp, struct hs_held *h, int rc, struct sc_error *err)
{
	if (rc == SC_OK)
		return SC_OK;
	int e = errno;
	/* the record may be on disk: take it back before the 451, or a
	 * replay would deliver what the client retries */
	hs_spool_journal_done(sp, h->id);
	sc_journal_done(sp->journal, &h->add);
	sc_error_set(err, SC_EIO, "spool %s: cannot sync %s: %s", sp->dir, h->id, strerror(e));
	h->env = NULL; /* the caller's again */
	held_free(h);
	return SC_EIO;
}

int hs_spool_hold(struct hs_spool *sp, const struct sc_inbound *msg, cJSON *env,
                  struct hs_held **out, struct sc_error *err)
{
	int rc = hs_spool_hold_append(sp, msg, env, out, err);
	if (!rc &&
	    (rc = hs_spool_hold_flushed(sp, *out, sc_journal_wait(sp->journal, &(*out)->add), err)))
		*out = NULL;
	return rc;
}

void hs_spool_held_delivered(struct hs_spool *sp, struct hs_held *h)
{
	struct sc_journal_ticket t;
	if (hs_spool_append_done(sp, h->id, &t) == 0)
		sc_journal_done(sp->journal, &t);
	else
		sc_log(SC_LOG_WARN,
		       "%s: delivered, but cannot journal it: %s; after a crash it may be POSTed "
		       "again",
		       h->id, strerror(errno));
	sc_journal_done(sp->journal, &h->add);
	held_free(h);
}

/* As hs_spool_add writes its files (hs_spool_paths), from memory. */
static int write_pair(struct hs_spool *sp, const struct hs_held *h)
{
	struct hs_paths p;
	if (hs_spool_paths(sp, h->id, &p)) {
		errno = ENOMEM;
		return -1;
	}
	int rc = 0;
	if (hs_spool_write_file(p.tenv, h->env_text, strlen(h->env_text)) ||
	    hs_spool_write_file(p.teml, h->eml.p ? h->eml.p : "", h->eml.len) ||
	    rename(p.tenv, p.nenv))
		rc = -1;
	else if (rename(p.teml, p.neml)) {
		int e = errno;
		unlink(p.nenv);
		errno = e;
		rc = -1;
	}
	int e = errno;
	if (rc)
		unlink(p.tenv), unlink(p.teml);
	hs_spool_paths_free(&p);
	errno = e;
	return rc;
}

int hs_spool_write_out(struct hs_spool *sp, struct hs_held *h)
{
	if (write_pair(sp, h))
		return -1;
	/* the files are covered by the record until the checkpoint that this
	 * allows has flushed them */
	sc_journal_done(sp->journal, &h->add);
	held_free(h);
	return 0;
}

void hs_held_abandon(struct hs_held *h)
{
	held_free(h);
}
