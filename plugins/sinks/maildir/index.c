/* The index.jsonl line of the maildir sink, and the Subject it holds. */
#include "maildir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Replace every byte that is not part of valid UTF-8 by '?', so that the
 * JSON line is always valid. */
static void make_utf8(char *s)
{
	unsigned char *p = (unsigned char *)s;
	while (*p) {
		int n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 && *p >= 0xc2 ? 2
			: (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 && *p <= 0xf4 ? 4 : 0;
		int ok = n > 0;
		for (int i = 1; ok && i < n; i++)
			ok = (p[i] & 0xc0) == 0x80;
		if (!ok) {
			*p++ = '?';
			continue;
		}
		p += n;
	}
}

/* TODO(inbound): use sc_inbound_summary() for the RFC 2047-decoded
 * subject once core/inbound/ is merged; until then the raw, unfolded
 * header value. Only the first 64 KiB (the header section) is read. */
char *maildir_subject(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return strdup("");
	size_t cap = 65536;
	char *h = malloc(cap + 1);
	size_t n = h ? fread(h, 1, cap, f) : 0;
	fclose(f);
	if (!h)
		return NULL;
	h[n] = '\0';
	struct sc_buf out = { 0 };
	int found = 0;
	for (char *line = h; line && *line && !(line[0] == '\r' && line[1] == '\n');) {
		char *end = strstr(line, "\r\n");
		size_t len = end ? (size_t)(end - line) : strlen(line);
		if (found && (line[0] == ' ' || line[0] == '\t')) {
			sc_buf_add(&out, line, len); /* a folded continuation */
		} else if (found) {
			break;
		} else if (len >= 8 && strncasecmp(line, "Subject:", 8) == 0) {
			found = 1;
			const char *v = line + 8;
			while (*v == ' ' || *v == '\t')
				v++;
			sc_buf_add(&out, v, len - (size_t)(v - line));
		}
		line = end ? end + 2 : NULL;
	}
	free(h);
	char *s = sc_buf_take(&out);
	if (s) {
		for (char *p = s; *p; p++)
			if ((unsigned char)*p < 0x20)
				*p = ' ';
		make_utf8(s);
	}
	return s;
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

char *maildir_index_line(const struct sc_inbound *m, const char *file)
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
	char *subj = maildir_subject(m->path);
	cJSON_AddStringToObject(o, "subject", subj ? subj : "");
	free(subj);
	cJSON_AddNumberToObject(o, "size", (double)m->size);
	char *text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	char *line = text ? sc_asprintf("%s\n", text) : NULL;
	free(text);
	return line;
}
