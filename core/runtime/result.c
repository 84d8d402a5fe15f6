/* Results are one JSON line per request on stdout, shaped like the SOAR
 * app's action results so playbooks keep working (interface.md §6). */
#include <stdio.h>
#include "result.h"
#include "utf8.h"

#include <stdlib.h>
#include <string.h>

int core_report_init(struct core_report *rep, const char *action, const char *identifier)
{
	memset(rep, 0, sizeof *rep);
	rep->root = cJSON_CreateObject();
	if (!rep->root)
		return SC_ENOMEM;
	cJSON_AddStringToObject(rep->root, "action", action ? action : "");
	if (identifier)
		cJSON_AddStringToObject(rep->root, "identifier", identifier);
	else
		cJSON_AddNullToObject(rep->root, "identifier");
	cJSON_AddStringToObject(rep->root, "status", "success");
	cJSON_AddStringToObject(rep->root, "message", "");
	cJSON *sum = cJSON_AddObjectToObject(rep->root, "summary");
	cJSON_AddNumberToObject(sum, "total_objects", 0);
	cJSON_AddNumberToObject(sum, "total_objects_successful", 0);
	rep->action_results = cJSON_AddArrayToObject(rep->root, "action_results");
	return rep->action_results ? SC_OK : SC_ENOMEM;
}

/* The "parameter" echo: a new object whose members are references to the
 * request's, not copies, so a 50 MB body is not held twice. Plugins may
 * replace members (send email writes the effective "from" back): that
 * drops a reference and never touches the request. The request outlives
 * the result: both are released after the line is printed. */
static cJSON *echo_of(const cJSON *params)
{
	cJSON *o = cJSON_CreateObject();
	const cJSON *e;
	cJSON_ArrayForEach(e, params)
	{
		if (o && !cJSON_AddItemReferenceToObject(o, e->string, (cJSON *)e)) {
			cJSON_Delete(o);
			return NULL;
		}
	}
	return o;
}

struct sc_result *core_report_add(struct core_report *rep, const cJSON *params)
{
	if (rep->n == rep->cap) {
		size_t nc = rep->cap ? rep->cap * 2 : 4;
		/* Growth may move results: a caller holds one only between
		 * core_report_add and core_report_close. */
		struct sc_result *nr = realloc(rep->results, nc * sizeof *nr);
		if (!nr)
			return NULL;
		rep->results = nr;
		rep->cap = nc;
	}
	struct sc_result *r = &rep->results[rep->n++];
	r->failed = 0;
	r->obj = cJSON_CreateObject();
	cJSON_AddStringToObject(r->obj, "status", "success");
	cJSON_AddStringToObject(r->obj, "message", "");
	cJSON_AddItemToObject(r->obj, "parameter", echo_of(params));
	cJSON_AddArrayToObject(r->obj, "data");
	cJSON_AddObjectToObject(r->obj, "summary");
	cJSON_AddItemToArray(rep->action_results, r->obj);
	rep->total++;
	return r;
}

static void set_string(cJSON *obj, const char *key, const char *val)
{
	cJSON *s = cJSON_CreateString(val ? val : "");
	if (s)
		cJSON_ReplaceItemInObjectCaseSensitive(obj, key, s);
}

void sc_result_message(struct sc_result *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *m = core_vasprintf(fmt, ap);
	va_end(ap);
	set_string(r->obj, "message", m);
	free(m);
}

cJSON *sc_result_data(struct sc_result *r)
{
	cJSON *data = cJSON_GetObjectItemCaseSensitive(r->obj, "data");
	cJSON *first = cJSON_GetArrayItem(data, 0);
	if (!first) {
		first = cJSON_CreateObject();
		cJSON_AddItemToArray(data, first);
	}
	return first;
}

cJSON *sc_result_summary(struct sc_result *r)
{
	return cJSON_GetObjectItemCaseSensitive(r->obj, "summary");
}

cJSON *sc_result_parameter(struct sc_result *r)
{
	return cJSON_GetObjectItemCaseSensitive(r->obj, "parameter");
}

void sc_result_warn(struct sc_result *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *m = core_vasprintf(fmt, ap);
	va_end(ap);
	if (!m)
		return;
	cJSON *d = sc_result_data(r);
	cJSON *w = cJSON_GetObjectItemCaseSensitive(d, "warnings");
	if (!w)
		w = cJSON_AddArrayToObject(d, "warnings");
	cJSON_AddItemToArray(w, cJSON_CreateString(m));
	sc_log(SC_LOG_WARN, "%s", m);
	free(m);
}

void core_report_close(struct core_report *rep, struct sc_result *r, int code,
                       const struct sc_error *err)
{
	if (code == SC_OK) {
		rep->ok++;
		return;
	}
	r->failed = 1;
	set_string(r->obj, "status", "failed");
	if (err && err->message)
		set_string(r->obj, "message", err->message);
	cJSON *d = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r->obj, "data"), 0);
	if (d && !cJSON_GetObjectItemCaseSensitive(d, "error"))
		cJSON_AddStringToObject(d, "error", sc_code_name((enum sc_code)code));
}

void core_report_fail(struct core_report *rep, const char *message)
{
	set_string(rep->root, "status", "failed");
	set_string(rep->root, "message", message);
}

/* A string of the tree as valid UTF-8: *s replaced by a sanitized copy
 * when it is not (a const key is not ours to free, only to replace). */
static int sanitize_string(char **s, int owned)
{
	if (!*s || core_utf8_valid(*s, strlen(*s), NULL))
		return 0;
	char *clean = core_utf8_sanitize(*s, strlen(*s), NULL);
	if (!clean)
		return -1;
	if (owned)
		cJSON_free(*s);
	*s = clean;
	return 1;
}

int core_json_sanitize(cJSON *item)
{
	int rc = 0;
	for (; item && !rc; item = item->next) {
		int k = sanitize_string(&item->string, !(item->type & cJSON_StringIsConst));
		if (k > 0)
			item->type &= ~cJSON_StringIsConst;
		if (k < 0 || (cJSON_IsString(item) && !(item->type & cJSON_IsReference) &&
		              sanitize_string(&item->valuestring, 1) < 0))
			rc = -1;
		else if (item->child && !(item->type & cJSON_IsReference))
			rc = core_json_sanitize(item->child);
	}
	return rc;
}

void core_report_print(struct core_report *rep, FILE *out)
{
	cJSON *sum = cJSON_GetObjectItemCaseSensitive(rep->root, "summary");
	cJSON_ReplaceItemInObjectCaseSensitive(sum, "total_objects",
	                                       cJSON_CreateNumber(rep->total));
	cJSON_ReplaceItemInObjectCaseSensitive(sum, "total_objects_successful",
	                                       cJSON_CreateNumber(rep->ok));
	const cJSON *msg = cJSON_GetObjectItemCaseSensitive(rep->root, "message");
	if (rep->total > 0) {
		if (rep->ok < rep->total)
			set_string(rep->root, "status", "failed");
		if (!msg->valuestring[0]) {
			char *m = sc_asprintf("%d of %d action%s succeeded", rep->ok, rep->total,
			                      rep->total == 1 ? "" : "s");
			set_string(rep->root, "message", m);
			free(m);
		}
	}
	/* Whatever came in (a server's reply, a quoted value), the line goes
	 * out as valid UTF-8: cJSON escapes controls but copies bytes >= 0x80
	 * as they are. Out of memory here: the line is not printed, as when
	 * cJSON_Print itself runs out. */
	char *text = core_json_sanitize(rep->root) ? NULL : cJSON_PrintUnformatted(rep->root);
	if (text) {
		fputs(text, out);
		fputc('\n', out);
		fflush(out);
		free(text);
	}
}

void core_report_free(struct core_report *rep)
{
	cJSON_Delete(rep->root);
	free(rep->results);
	memset(rep, 0, sizeof *rep);
}
