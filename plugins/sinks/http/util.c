/* Clocks, the retry delay and the one-line log of an attempt. */
#include "http_sink.h"

#include <math.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* cJSON's parser records its error position in a global of the library:
 * workers parsing envelopes at once would race on it (helgrind finds
 * it), so parses take turns. They are small (envelopes, retry state). */
static pthread_mutex_t parse_mu = PTHREAD_MUTEX_INITIALIZER;

cJSON *hs_json_parse(const char *text, size_t len)
{
	pthread_mutex_lock(&parse_mu);
	cJSON *j = cJSON_ParseWithLength(text, len);
	pthread_mutex_unlock(&parse_mu);
	return j;
}

int hs_id_ok(const char *id)
{
	if (!id || !*id || id[0] == '.' || strlen(id) > 200)
		return 0;
	return strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") ==
	       strlen(id);
}

long long hs_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double hs_wall(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

double hs_random_unit(void)
{
	uint64_t r = 0;
	if (RAND_bytes((unsigned char *)&r, sizeof r) != 1)
		return 0.5; /* no entropy: still a delay, only not jittered */
	return (double)(r >> 11) / 9007199254740992.0; /* 53 bits */
}

/* "Exponential backoff and jitter" (AWS architecture blog, 2015), the
 * full-jitter variant: a uniform delay up to the exponential cap, so
 * senders that failed together do not retry together. */
double hs_backoff(const struct hs_config *cfg, unsigned attempts)
{
	double cap = cfg->retry_base * ldexp(1.0, attempts > 40 ? 40 : (int)attempts - 1);
	if (cap > cfg->retry_max)
		cap = cfg->retry_max;
	return cap * hs_random_unit();
}

void hs_log_outcome(const char *id, const struct hs_outcome *o, const char *then)
{
	const char *why = o->reason ? o->reason : "?";
	if (o->status)
		sc_log(o->result == HS_DELIVERED ? SC_LOG_INFO : SC_LOG_WARN,
		       "%s: POST returned status: %ld%s%s", id, o->status, then ? "; " : "",
		       then ? then : "");
	else
		sc_log(SC_LOG_WARN, "%s: POST failed: %s%s%s", id, why, then ? "; " : "",
		       then ? then : "");
}
