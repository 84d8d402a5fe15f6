/* The files of send htmlemail (rules in attachments.h). */
#include "attachments.h"
#include "compose.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NUMBERED 5 /* attachment1..5, content_id1..5 (the SOAR app's fields) */

/* A content id as given minus surrounding blanks and one pair of <>
 * (the SOAR app trims them too), checked to be usable in a Content-ID
 * header and a cid: URL. Returns a copy, or NULL + err naming `param`. */
static char *clean_cid(const char *param, const char *given, struct sc_error *err)
{
	const char *s = given, *e = given + strlen(given);
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	if (e - s >= 2 && *s == '<' && e[-1] == '>')
		s++, e--;
	for (const char *p = s; p < e; p++)
		if ((unsigned char)*p <= 32 || (unsigned char)*p >= 127 || *p == '<' || *p == '>') {
			sc_error_set(err, SC_EINPUT,
			             "%s: \"%s\" cannot be a Content-ID: use printable "
			             "ASCII without blanks or <> (such as logo@corp.example)",
			             param, given);
			return NULL;
		}
	if (s == e) {
		sc_error_set(err, SC_EINPUT, "%s: is empty once blanks and <> are removed", param);
		return NULL;
	}
	char *c = strndup(s, (size_t)(e - s));
	if (!c)
		sc_error_set(err, SC_ENOMEM, "out of memory");
	return c;
}

/* Append one file: resolve the vault id, clean the content id, refuse a
 * content id already used. */
static int add(struct sc_ctx *ctx, struct html_files *fs, const char *param, const char *id,
               const char *cid_param, const char *cid, struct sc_error *err)
{
	if (fs->n == SIZE_MAX / sizeof *fs->v)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	struct html_file *nv = realloc(fs->v, (fs->n + 1) * sizeof *nv);
	if (!nv)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	fs->v = nv;
	struct html_file *h = &fs->v[fs->n];
	memset(h, 0, sizeof *h);
	fs->n++; /* counted now so html_files_free() frees a half-filled one */
	if (!(h->param = strdup(param)))
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	if (cid && *cid) {
		if (!(h->cid = clean_cid(cid_param, cid, err)))
			return err->code;
		fs->ninline++;
		for (size_t i = 0; i + 1 < fs->n; i++)
			if (fs->v[i].cid && !strcmp(fs->v[i].cid, h->cid))
				return sc_error_set(err, SC_EINPUT,
				                    "%s: content id \"%s\" is already "
				                    "used by %s; give each inline part its own",
				                    cid_param, h->cid, fs->v[i].param);
	}
	return sc_vault_resolve(ctx, param, id, &h->f, err);
}

static int from_json_item(struct sc_ctx *ctx, struct html_files *fs, const cJSON *item, int i,
                          struct sc_error *err)
{
	char param[48];
	snprintf(param, sizeof param, "attachment_json[%d]", i);
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "vault_id");
	const cJSON *cid = cJSON_GetObjectItemCaseSensitive(item, "content_id");
	if (!cJSON_IsObject(item))
		return sc_error_set(err, SC_EINPUT,
		                    "%s: must be an object such as {\"vault_id\": "
		                    "\"...\", \"content_id\": \"logo\"}",
		                    param);
	if (!cJSON_IsString(id) || !id->valuestring[0])
		return sc_error_set(err, SC_EINPUT, "%s: has no \"vault_id\" (a non-empty string)",
		                    param);
	if (cid && !cJSON_IsString(cid) && !cJSON_IsNull(cid))
		return sc_error_set(err, SC_EINPUT, "%s: \"content_id\" must be a string", param);
	char cid_param[64];
	snprintf(cid_param, sizeof cid_param, "%s.content_id", param);
	return add(ctx, fs, param, id->valuestring, cid_param,
	           cJSON_IsString(cid) ? cid->valuestring : NULL, err);
}

static int from_json(struct sc_ctx *ctx, const cJSON *params, struct html_files *fs,
                     struct sc_error *err)
{
	cJSON *list = compose_json_param(params, "attachment_json", err);
	if (!list)
		return err->code;
	int rc = SC_OK;
	if (!cJSON_IsArray(list))
		rc = sc_error_set(err, SC_EINPUT,
		                  "attachment_json: must be a JSON list of objects "
		                  "such as [{\"vault_id\": \"...\", \"content_id\": \"logo\"}]");
	int i = 0;
	const cJSON *item, *items = rc ? NULL : list;
	cJSON_ArrayForEach(item, items)
	{
		if ((rc = from_json_item(ctx, fs, item, i++, err)))
			break;
	}
	cJSON_Delete(list);
	return rc;
}

static const char *param_string(const cJSON *params, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, key);
	return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

int html_files_get(struct sc_ctx *ctx, const cJSON *params, struct html_files *fs,
                   struct sc_error *err)
{
	memset(fs, 0, sizeof *fs);
	int rc = from_json(ctx, params, fs, err);
	for (int n = 1; !rc && n <= NUMBERED; n++) {
		char ap[16], cp[16];
		snprintf(ap, sizeof ap, "attachment%d", n);
		snprintf(cp, sizeof cp, "content_id%d", n);
		const char *id = param_string(params, ap), *cid = param_string(params, cp);
		if (!id && cid)
			rc = sc_error_set(err, SC_EINPUT,
			                  "%s: given without %s; put the vault id of "
			                  "the file it names in %s",
			                  cp, ap, ap);
		else if (id)
			rc = add(ctx, fs, ap, id, cp, cid, err);
	}
	return rc;
}

void html_files_free(struct html_files *fs)
{
	for (size_t i = 0; i < fs->n; i++) {
		free(fs->v[i].param);
		free(fs->v[i].cid);
		sc_vault_file_free(&fs->v[i].f);
	}
	free(fs->v);
	memset(fs, 0, sizeof *fs);
}
