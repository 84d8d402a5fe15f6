/* sink_maildir after a crash: what the journal (sink.h, sc_journal_*)
 * hands back is redone so that the Maildir holds every message that was
 * answered 250, once, and index.jsonl one line for each.
 *
 * A record's meta is {"name": N, "index": LINE} and its body is the file
 * as written to new/N (envelope lines and message); a message too large
 * for the journal has "durable": true and no body (its file was flushed
 * before its 250), so only its index line is redone. */
#include "maildir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

unsigned long long maildir_mark(void *arg)
{
	const struct maildir *m = arg;
	struct stat st;
	if (m->index_fd < 0 || fstat(m->index_fd, &st))
		return 0;
	return (unsigned long long)st.st_size;
}

int maildir_replay_begin(void *arg, unsigned long long mark, struct sc_error *err)
{
	const struct maildir *m = arg;
	struct stat st;
	/* the lines after the mark are those of records not yet flushed:
	 * replay writes them again, whole and in order */
	if (m->index_fd >= 0 && fstat(m->index_fd, &st) == 0 &&
	    (unsigned long long)st.st_size > mark && ftruncate(m->index_fd, (off_t)mark))
		return sc_error_set(err, SC_EIO, "maildir %s: cannot repair index.jsonl: %s",
		                    m->dir, strerror(errno));
	return SC_OK;
}

/* A name we wrote: no '/', not hidden, not empty. */
static int name_ok(const char *n)
{
	return n[0] && n[0] != '.' && !strchr(n, '/');
}

/* A reader moved it to cur/ (as N:2,flags): it arrived intact. */
static int in_cur(const struct maildir *m, const char *name)
{
	char *cur = sc_asprintf("%s/cur", m->dir);
	DIR *d = cur ? opendir(cur) : NULL;
	free(cur);
	if (!d)
		return 0;
	size_t n = strlen(name);
	int found = 0;
	for (struct dirent *e; !found && (e = readdir(d));)
		found = strncmp(e->d_name, name, n) == 0 && (e->d_name[n] == ':' || !e->d_name[n]);
	closedir(d);
	return found;
}

static int put_back(const struct maildir *m, const char *name, int fd, unsigned long long off,
                    unsigned long long len, struct sc_error *err)
{
	char *tmp = sc_asprintf("%s/tmp/%s", m->dir, name),
	     *dst = sc_asprintf("%s/new/%s", m->dir, name);
	if (!tmp || !dst) {
		free(tmp), free(dst);
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	int rc = SC_OK;
	if (sc_journal_body_matches(dst, fd, off, len) || in_cur(m, name))
		; /* there intact, or already read */
	else if (sc_journal_restore(tmp, dst, NULL, 0, fd, off, len))
		rc = sc_error_set(err, SC_EIO, "maildir: cannot put %s back into new/: %s", name,
		                  strerror(errno));
	else
		sc_log(SC_LOG_INFO, "maildir %s: new/%s written again from the journal", m->dir,
		       name);
	free(tmp), free(dst);
	return rc;
}

int maildir_replay(void *arg, const char *meta, size_t meta_len, int fd,
                   unsigned long long body_off, unsigned long long body_len, struct sc_error *err)
{
	struct maildir *m = arg;
	cJSON *j = cJSON_ParseWithLength(meta, meta_len);
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name"),
	            *line = cJSON_GetObjectItemCaseSensitive(j, "index");
	int rc = SC_OK;
	if (!cJSON_IsString(name) || !name_ok(name->valuestring)) {
		/* not a record of ours (the hash matched, so never expected) */
		sc_log(SC_LOG_WARN, "maildir %s: a journal record without a usable name skipped",
		       m->dir);
	} else {
		if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "durable")))
			rc = put_back(m, name->valuestring, fd, body_off, body_len, err);
		if (!rc && cJSON_IsString(line) && m->index_fd >= 0 &&
		    sc_write_all(m->index_fd, line->valuestring, strlen(line->valuestring)))
			rc = sc_error_set(err, SC_EIO,
			                  "maildir %s: cannot append to index.jsonl: %s", m->dir,
			                  strerror(errno));
	}
	cJSON_Delete(j);
	return rc;
}
