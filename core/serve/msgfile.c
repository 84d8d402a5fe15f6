/* The listener writes every message into a file of its spool dir before
 * deliver(). Creating a file per message was the listener's largest cost
 * (perf: ext4 without a journal checks each new inode against recently
 * deleted ones), so a file whose message is done is kept and rewritten
 * for a later one. Only a file that no sink took is kept: a sink may
 * rename or link it (sink.h), and then its inode holds the sink's copy.
 * A kept file is cut to nothing first: no message's bytes stay in the
 * spool dir once it is delivered or refused. Kept files are named *.msg
 * like the others, so a restart after a crash removes them with the rest
 * (cli.c), and exit removes them (serve_msgfile_clear). */
#include "msgfile.h"

#include <smtp-connector/plugin.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Enough for the sessions in DATA at once; beyond it files go. */
#define KEEP_MAX 64

static pthread_mutex_t keep_mu = PTHREAD_MUTEX_INITIALIZER;
static char *kept[KEEP_MAX];
static size_t nkept;

/* A kept file inside `dir`, or NULL. */
static char *take(const char *dir)
{
	size_t n = strlen(dir);
	char *p = NULL;
	pthread_mutex_lock(&keep_mu);
	for (size_t i = nkept; i-- > 0;)
		if (strncmp(kept[i], dir, n) == 0 && kept[i][n] == '/' &&
		    !strchr(kept[i] + n + 1, '/')) {
			p = kept[i];
			kept[i] = kept[--nkept];
			break;
		}
	pthread_mutex_unlock(&keep_mu);
	return p;
}

int serve_msgfile_open(const char *dir, const char *id, char **path)
{
	char *p = take(dir);
	int fd = p ? open(p, O_WRONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
	if (fd < 0 && p) {
		unlink(p);
		free(p);
		p = NULL;
	}
	if (fd < 0) {
		p = sc_asprintf("%s/%s.msg", dir, id);
		fd = p ? open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
		if (!p)
			errno = ENOMEM;
	}
	if (fd < 0) {
		int e = errno;
		free(p);
		p = NULL;
		errno = e;
	}
	*path = p;
	return fd;
}

void serve_msgfile_release(char *path)
{
	if (!path)
		return;
	struct stat st;
	int keep = lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
	           truncate(path, 0) == 0;
	pthread_mutex_lock(&keep_mu);
	if (keep && nkept < KEEP_MAX)
		kept[nkept++] = path, path = NULL;
	pthread_mutex_unlock(&keep_mu);
	if (path) {
		unlink(path);
		free(path);
	}
}

void serve_msgfile_clear(void)
{
	pthread_mutex_lock(&keep_mu);
	while (nkept) {
		char *p = kept[--nkept];
		unlink(p);
		free(p);
	}
	pthread_mutex_unlock(&keep_mu);
}
