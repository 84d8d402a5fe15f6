/* throttle_period: at most one send per period for an asset, across
 * connector processes (a playbook fanning out 50 actions must not trip
 * the provider's rate limit). The time of the last send lives in
 * <state_dir>/throttle/<asset key>; an exclusive flock serialises the
 * read-wait-write so two processes never send in the same slot. */
#include "session.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

char *core_throttle_path(struct sc_ctx *ctx, struct sc_error *err)
{
	const char *dir = sc_state_dir(ctx, err);
	if (!dir)
		return NULL;
	char *sub = sc_asprintf("%s/throttle", dir);
	if (!sub || (mkdir(sub, 0700) && errno != EEXIST)) {
		sc_error_set(err, SC_EIO, "cannot create %s: %s", sub ? sub : dir, strerror(errno));
		free(sub);
		return NULL;
	}
	char *path = sc_asprintf("%s/%s", sub, sc_asset_key(ctx));
	free(sub);
	return path;
}

int core_throttle_wait(const char *path, double period, double max_wait, struct sc_error *err)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return sc_error_set(err, SC_EIO, "throttle state %s: %s", path, strerror(errno));
	if (flock(fd, LOCK_EX)) {
		close(fd);
		return sc_error_set(err, SC_EIO, "throttle state %s: cannot lock: %s", path,
		                    strerror(errno));
	}
	char buf[64];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	double last = 0;
	if (n > 0) {
		buf[n] = '\0';
		last = strtod(buf, NULL);
	}
	double wait = last + period - now_s();
	if (wait > period) /* a clock that went backwards */
		wait = period;
	if (wait > 0 && max_wait >= 0 && wait > max_wait) {
		/* Velociraptor's "Send too fast, suppressing.": the slot stays
		 * with whoever took it; nothing is written. */
		close(fd);
		return max_wait == 0
		           ? sc_error_set(err, SC_ETHROTTLED,
		                          "throttled: this asset sent less than throttle_period "
		                          "(%g s) ago; %.1f s left (throttle_mode \"drop\")",
		                          period, wait)
		           : sc_error_set(err, SC_ETHROTTLED,
		                          "throttled: the next send slot is %.1f s away, more than "
		                          "throttle_max_wait (%g s); retry later or raise it",
		                          wait, max_wait);
	}
	if (wait > 0) {
		sc_log(SC_LOG_INFO, "throttle_period: waiting %.1f s before sending", wait);
		struct timespec ts = {(time_t)wait, (long)((wait - floor(wait)) * 1e9)};
		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
	}
	int len = snprintf(buf, sizeof buf, "%.6f\n", now_s());
	int rc = SC_OK;
	if (ftruncate(fd, 0) || pwrite(fd, buf, (size_t)len, 0) != len)
		rc = sc_error_set(err, SC_EIO, "throttle state %s: cannot write: %s", path,
		                  strerror(errno));
	close(fd); /* releases the lock */
	return rc;
}
