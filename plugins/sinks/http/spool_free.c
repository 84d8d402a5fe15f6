/* free/: envelope and message files delivered messages left, renamed there
 * instead of unlinked, and written in place for the next message.
 * A rename costs a directory update; a new inode on ext4 without a
 * journal costs a scan for recently deleted ones (perf: 40% of serve's
 * CPU went to creating files). Their content is stale and never read:
 * each reuse rewrites and fsyncs the file before it is renamed into new/. */
#include "http_sink.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Enough for the deliveries in flight at once; beyond it files go. */
#define FREE_MAX 256

static char *free_path(const struct hs_spool *sp, unsigned long long n)
{
	return sc_asprintf("%s/free/%llu", sp->dir, n);
}

int hs_free_open(struct hs_spool *sp, struct sc_error *err)
{
	char *dir = sc_asprintf("%s/free", sp->dir);
	if (!dir)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	/* what an earlier process kept is not worth counting: start empty */
	DIR *d = opendir(dir);
	if (d) {
		for (struct dirent *e; (e = readdir(d));)
			if (e->d_name[0] != '.')
				unlinkat(dirfd(d), e->d_name, 0);
		closedir(d);
	}
	free(dir);
	sp->free_ids = calloc(FREE_MAX, sizeof *sp->free_ids);
	if (!sp->free_ids || pthread_mutex_init(&sp->free_mu, NULL)) {
		free(sp->free_ids);
		sp->free_ids = NULL;
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	sp->free_ready = 1;
	return SC_OK;
}

char *hs_free_take(struct hs_spool *sp)
{
	unsigned long long n = 0;
	int have = 0;
	pthread_mutex_lock(&sp->free_mu);
	if (sp->nfree) {
		n = sp->free_ids[--sp->nfree];
		have = 1;
	}
	pthread_mutex_unlock(&sp->free_mu);
	return have ? free_path(sp, n) : NULL;
}

void hs_free_give(struct hs_spool *sp, const char *src)
{
	unsigned long long n = 0;
	int keep = 0;
	pthread_mutex_lock(&sp->free_mu);
	if (sp->nfree < FREE_MAX) {
		n = sp->next_free++;
		keep = 1;
	}
	pthread_mutex_unlock(&sp->free_mu);
	char *dst = keep ? free_path(sp, n) : NULL;
	if (!dst || rename(src, dst)) {
		unlink(src);
		free(dst);
		return;
	}
	free(dst);
	pthread_mutex_lock(&sp->free_mu);
	if (sp->nfree < FREE_MAX)
		sp->free_ids[sp->nfree++] = n;
	else
		keep = 0;
	pthread_mutex_unlock(&sp->free_mu);
	if (!keep) {
		char *p = free_path(sp, n);
		if (p)
			unlink(p);
		free(p);
	}
}

void hs_free_close(struct hs_spool *sp)
{
	if (!sp->free_ready)
		return;
	pthread_mutex_destroy(&sp->free_mu);
	free(sp->free_ids);
	sp->free_ids = NULL;
	sp->nfree = 0;
	sp->free_ready = 0;
}
