/* The index.jsonl line of the maildir sink, and the Subject it holds. */
#include "maildir.h"

#include <smtp-connector/message.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Replace every byte that does not begin a well-formed UTF-8 sequence
 * (sc_utf8_len: no overlong forms, surrogates or values past U+10FFFF)
 * by '?', so that the JSON line is always valid. */
static void make_utf8(char *s)
{
	size_t n = strlen(s);
	for (size_t i = 0; i < n;) {
		size_t len = sc_utf8_len(s + i, n - i);
		if (len) {
			i += len;
			continue;
		}
		s[i++] = '?';
	}
}

/* Subject (RFC 2047-decoded) and Message-ID from the host's reader of
 * received messages; the body is not needed, so it is cut at once. */
static void add_summary(cJSON *o, const struct sc_inbound *m, const char *held)
{
	cJSON *sum = NULL;
	struct sc_error err = SC_ERROR_INIT;
	const cJSON *subj = NULL, *mid = NULL;
	int rc = held ? sc_inbound_summary_mem(held, m->size, 1, &sum, &err)
	              : sc_inbound_summary(m->path, 1, &sum, &err);
	if (rc == SC_OK) {
		subj = cJSON_GetObjectItemCaseSensitive(sum, "subject");
		mid = cJSON_GetObjectItemCaseSensitive(sum, "message_id");
	}
	cJSON_AddStringToObject(o, "subject", cJSON_IsString(subj) ? subj->valuestring : "");
	if (cJSON_IsString(mid))
		cJSON_AddStringToObject(o, "message_id", mid->valuestring);
	else
		cJSON_AddNullToObject(o, "message_id");
	cJSON_Delete(sum);
	sc_error_clear(&err);
}

static cJSON *utf8_string(const char *s)
{
	char *c = strdup(s ? s : "");
	if (!c)
		return NULL;
	make_utf8(c);
	cJSON *j = cJSON_CreateString(c);
	free(c);
	return j;
}

char *maildir_index_line(const struct sc_inbound *m, const char *file, const char *held)
{
	cJSON *o = cJSON_CreateObject();
	char when[64];
	time_t t = (time_t)m->received;
	struct tm tm;
	gmtime_r(&t, &tm);
	size_t w = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + w, sizeof when - w, ".%06ldZ", m->received_usec);
	cJSON_AddStringToObject(o, "id", m->id);
	cJSON_AddStringToObject(o, "time", when);
	cJSON_AddStringToObject(o, "file", file);
	cJSON_AddStringToObject(o, "client_address", m->client_addr);
	cJSON_AddNumberToObject(o, "client_port", m->client_port);
	cJSON_AddItemToObject(o, "helo", utf8_string(m->helo));
	cJSON_AddBoolToObject(o, "tls", m->tls);
	if (m->tls_version)
		cJSON_AddStringToObject(o, "tls_version", m->tls_version);
	if (m->auth_user)
		cJSON_AddItemToObject(o, "auth_user", utf8_string(m->auth_user));
	cJSON *env = cJSON_AddObjectToObject(o, "envelope");
	cJSON_AddItemToObject(env, "mail_from", utf8_string(m->mail_from));
	cJSON *rc = cJSON_AddArrayToObject(env, "rcpt_to");
	for (size_t i = 0; i < m->nrcpt; i++)
		cJSON_AddItemToArray(rc, utf8_string(m->rcpt[i]));
	add_summary(o, m, held);
	cJSON_AddNumberToObject(o, "size", (double)m->size);
	char *text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	char *line = text ? sc_asprintf("%s\n", text) : NULL;
	free(text);
	return line;
}
