/* bench/durability.c: what making small messages durable costs on this
 * machine's disk, without serve around it (bench/durability.sh runs it).
 * Why the sinks use a journal (core/serve/journal.c) instead of flushing
 * each message's own files.
 *
 *   durability MODE N B DIR
 *
 * N messages of 2,000 bytes, in batches of B (as B deliveries in flight
 * share one flush), single-threaded:
 *   files     each message a file in DIR/tmp, one syncfs() per batch,
 *             renamed into DIR/new, one syncfs() per batch (the group
 *             commit the sinks used before the journal)
 *   fsync     each file fsync()ed, then DIR/new fsync()ed per batch
 *   journal   each message appended to one file, one fdatasync() per
 *             batch (what a delivery waits for now)
 *   nosync    the files, renamed, no flush at all; then one syncfs() for
 *             all of them at the end (what the journal's checkpoint does,
 *             a second's worth at a time), timed apart
 * Prints messages per second. */
#define _GNU_SOURCE /* syncfs */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void put(const char *path, const char *buf, int do_fsync)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || write(fd, buf, 2000) != 2000 || (do_fsync && fsync(fd)) || close(fd))
		die(path);
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: durability files|fsync|journal|nosync N B DIR\n");
		return 2;
	}
	const char *mode = argv[1], *dir = argv[4];
	int n = atoi(argv[2]), b = atoi(argv[3]);
	if (n < 1 || b < 1)
		return 2;
	static char buf[2000];
	memset(buf, 'x', sizeof buf);
	char p[4096], q[4096];
	snprintf(p, sizeof p, "%s/tmp", dir);
	snprintf(q, sizeof q, "%s/new", dir);
	if ((mkdir(dir, 0700) && access(dir, W_OK)) || mkdir(p, 0700) || mkdir(q, 0700))
		die(dir);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	int nfd = open(q, O_RDONLY | O_DIRECTORY);
	if (dfd < 0 || nfd < 0 || syncfs(dfd))
		die(dir);
	double t0 = now(), flush = 0;
	if (!strcmp(mode, "journal")) {
		snprintf(p, sizeof p, "%s/journal", dir);
		int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_APPEND, 0600);
		if (fd < 0)
			die(p);
		for (int i = 0; i < n; i += b) {
			for (int k = i; k < i + b && k < n; k++)
				if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf)
					die(p);
			if (fdatasync(fd))
				die(p);
		}
		close(fd);
	} else {
		int files = !strcmp(mode, "files"), fs = !strcmp(mode, "fsync");
		if (!files && !fs && strcmp(mode, "nosync"))
			return 2;
		for (int i = 0; i < n; i += b) {
			for (int k = i; k < i + b && k < n; k++) {
				snprintf(p, sizeof p, "%s/tmp/m%d", dir, k);
				put(p, buf, fs);
			}
			if (files && syncfs(dfd))
				die("syncfs");
			for (int k = i; k < i + b && k < n; k++) {
				snprintf(p, sizeof p, "%s/tmp/m%d", dir, k);
				snprintf(q, sizeof q, "%s/new/m%d", dir, k);
				if (rename(p, q))
					die(p);
			}
			if ((files && syncfs(dfd)) || (fs && fsync(nfd)))
				die("flush");
		}
		if (!files && !fs) {
			double t1 = now();
			if (syncfs(dfd))
				die("syncfs");
			flush = now() - t1;
		}
	}
	double t = now() - t0;
	printf("%-8s N=%d B=%-3d %8.0f msgs/s", mode, n, b, n / t);
	if (flush > 0)
		printf("  (the final syncfs: %.2f s of it)", flush);
	printf("\n");
	return 0;
}
