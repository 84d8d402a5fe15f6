/* How an event's values are recognised for display. Heuristics only:
 * the raw value is always shown too, so a wrong guess hides nothing. */
#include "event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* 2001-09-09 .. 2286-11-20 in milliseconds: 13-digit numbers. Smaller
 * or larger numbers are counts, sizes, ids. */
#define MS_MIN 1000000000000.0
#define MS_MAX 9999999999999.0

int event_epoch_ms(const cJSON *v, char out[40])
{
	if (!cJSON_IsNumber(v) || v->valuedouble < MS_MIN || v->valuedouble > MS_MAX)
		return 0;
	long long ms = (long long)v->valuedouble;
	if ((double)ms != v->valuedouble)
		return 0;
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	if (!gmtime_r(&s, &tm))
		return 0;
	/* strftime bounds every field; the year is 2001..2286 here. */
	char day[24];
	if (!strftime(day, sizeof day, "%Y-%m-%d %H:%M:%S", &tm))
		return 0;
	snprintf(out, 40, "%s.%03d UTC", day, (int)(ms % 1000));
	return 1;
}

static int all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strchr("0123456789abcdefABCDEF", s[i]) || !s[i])
			return 0;
	return 1;
}

int event_monospace(const char *s)
{
	size_t n = strlen(s);
	if ((n == 32 || n == 40 || n == 64 || n == 128) && all_hex(s, n))
		return 1;
	if (s[0] == '/' && n > 1 && !strchr(s, ' '))
		return 1;
	/* C:\Windows\..., \\server\share */
	if ((n > 2 && s[1] == ':' && (s[2] == '\\' || s[2] == '/')) ||
	    (n > 2 && s[0] == '\\' && s[1] == '\\'))
		return 1;
	return 0;
}

char *event_scalar_text(const cJSON *v)
{
	if (cJSON_IsString(v))
		return strdup(v->valuestring);
	if (cJSON_IsBool(v))
		return strdup(cJSON_IsTrue(v) ? "true" : "false");
	if (cJSON_IsNull(v))
		return strdup("null");
	return cJSON_PrintUnformatted(v);
}
