/* The default subject of an event mail: what a person scanning an inbox
 * needs first. LimaCharlie detections carry "cat" (category) and a
 * "detect_mtd"/"routing" block; telemetry carries routing.event_type;
 * other sources use category/type/name/title. */
#include "event.h"

#include <smtp-connector/message.h>
#include <stdlib.h>
#include <string.h>

#define SUBJECT_MAX 200

static const char *str_at(const cJSON *ev, const char *a, const char *b)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(ev, a);
	if (b)
		v = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, b) : NULL;
	return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

static const char *first(const cJSON *ev, const char *const *paths)
{
	for (; *paths; paths += 2) {
		const char *s = str_at(ev, paths[0], paths[1]);
		if (s)
			return s;
	}
	return NULL;
}

/* Cut at SUBJECT_MAX bytes on a UTF-8 boundary; turn any control
 * character (a line break in an event value) into a space. */
static void tidy(char *s)
{
	size_t n = strlen(s);
	if (n > SUBJECT_MAX) {
		n = SUBJECT_MAX;
		while (n && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
		s[n] = '\0';
	}
	sc_str_one_line(s);
}

char *event_default_subject(const cJSON *ev)
{
	static const char *const kinds[] = {"cat",        NULL, "category", NULL,
	                                    "event_type", NULL, "routing",  "event_type",
	                                    "type",       NULL, NULL};
	static const char *const names[] = {"name", NULL,   "title", NULL, "detect_mtd",
	                                    "name", "rule", NULL,    NULL};
	const char *kind = first(ev, kinds), *name = first(ev, names);
	const char *host = str_at(ev, "routing", "hostname");
	char *s;
	if (kind && name)
		s = sc_asprintf("%s: %s", kind, name);
	else if (kind || name)
		s = strdup(kind ? kind : name);
	else
		s = strdup("Event");
	if (s && host) {
		char *t = sc_asprintf("%s (%s)", s, host);
		free(s);
		s = t;
	}
	if (s)
		tidy(s);
	return s;
}
