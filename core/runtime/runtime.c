/* The runtime: request -> validate -> load -> (plugins authenticate and
 * send) -> result. Everything that can reject a request runs before any
 * plugin touches the network. */
#include "ctx.h"
#include "runtime.h"
#include "reader.h"
#include "result.h"
#include "schema.h"
#include "schemas.h"
#include "secrets.h"
#include "session.h"
#include "serve.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */

static const cJSON *resolve_doc(const char *ref, void *arg)
{
	struct core_runtime *rt = arg;
	if (strcmp(ref, "asset.json") == 0)
		return rt->asset_schema;
	return NULL;
}

/* asset.json plus the asset keys each loaded auth plugin declares. */
static int build_schemas(struct core_runtime *rt, struct sc_error *err)
{
	if (rt->asset_schema)
		return SC_OK;
	rt->request_schema = cJSON_Parse(schema_request);
	rt->asset_schema = cJSON_Parse(schema_asset);
	if (!rt->request_schema || !rt->asset_schema)
		return sc_error_set(err, SC_EINTERNAL, "embedded schemas are not JSON");
	cJSON *props = cJSON_GetObjectItemCaseSensitive(rt->asset_schema, "properties");
	for (size_t i = 0; i < rt->loader->n; i++) {
		const struct core_plugin *p = &rt->loader->plugins[i];
		if (p->desc->kind != SC_PLUGIN_AUTH)
			continue; /* only auth plugins add asset keys */
		const cJSON *pp = cJSON_GetObjectItemCaseSensitive(p->schema, "properties");
		const cJSON *k;
		cJSON_ArrayForEach(k, pp) if (!cJSON_GetObjectItemCaseSensitive(props, k->string))
		    cJSON_AddItemToObject(props, k->string, cJSON_Duplicate(k, 1));
	}
	int rc = core_schema_check(rt->request_schema, err);
	if (!rc)
		rc = core_schema_check(rt->asset_schema, err);
	return rc;
}

/* "send email", "Send Email", "send_email" -> "send_email". */
static char *identifier_of(const char *action)
{
	char *id = strdup(action);
	for (char *p = id; p && *p; p++)
		*p = *p == ' ' || *p == '-' ? '_' : (char)tolower((unsigned char)*p);
	return id;
}

static char *auth_names(const struct core_loader *l)
{
	char *s = NULL;
	for (size_t i = 0; i < l->n; i++) {
		if (l->plugins[i].desc->kind != SC_PLUGIN_AUTH)
			continue;
		char *n =
		    sc_asprintf("%s%s\"%s\"", s ? s : "", s ? ", " : "", l->plugins[i].desc->name);
		free(s);
		s = n;
	}
	return s;
}

/* auth_type and auth_order must name installed auth plugins. */
static int check_auth_names(struct core_runtime *rt, const cJSON *asset, struct sc_error *err)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(asset, "auth_type");
	const cJSON *order = cJSON_GetObjectItemCaseSensitive(asset, "auth_order");
	int rc = SC_OK;
	char *names = NULL;
	if (cJSON_IsString(t) && strcasecmp(t->valuestring, "Automatic") &&
	    !core_loader_find_auth(rt->loader, t->valuestring)) {
		names = auth_names(rt->loader);
		rc = sc_error_set(err, SC_EINPUT,
		                  "asset.auth_type: no auth plugin named \"%s\" is installed; use "
		                  "\"Automatic\" or one of %s",
		                  t->valuestring, names ? names : "(none)");
	}
	int i = 0;
	const cJSON *o;
	cJSON_ArrayForEach(o, order)
	{
		if (rc)
			break;
		if (!core_loader_find_auth(rt->loader, o->valuestring)) {
			names = auth_names(rt->loader);
			rc = sc_error_set(err, SC_EINPUT,
			                  "asset.auth_order[%d]: no auth plugin named \"%s\" is "
			                  "installed; installed: %s",
			                  i, o->valuestring, names ? names : "(none)");
		}
		i++;
	}
	free(names);
	return rc;
}

/* The parameter sets of a request: absent -> one empty set. */
static cJSON *parameter_sets(const cJSON *req, struct sc_error *err)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(req, "parameters");
	cJSON *sets = cJSON_CreateArray();
	if (!sets)
		return NULL;
	if (!p) {
		cJSON_AddItemToArray(sets, cJSON_CreateObject());
	} else if (cJSON_IsObject(p)) {
		cJSON_AddItemReferenceToArray(sets, (cJSON *)p);
	} else {
		const cJSON *e;
		cJSON_ArrayForEach(e, p) cJSON_AddItemReferenceToArray(sets, (cJSON *)e);
		if (cJSON_GetArraySize(sets) == 0) {
			cJSON_Delete(sets);
			sc_error_set(err, SC_EINPUT,
			             "parameters: the list is empty; give at least one parameter "
			             "set (an object)");
			return NULL;
		}
	}
	return sets;
}

/* authorize needs only a valid asset (the action, if any, is ignored). */
static int validate_for_authorize(struct core_runtime *rt, const cJSON *req, struct sc_error *err)
{
	int rc = core_loader_auth_all(rt->loader, err);
	if (!rc)
		rc = build_schemas(rt, err);
	const cJSON *asset = cJSON_GetObjectItemCaseSensitive(req, "asset");
	if (!rc && !asset)
		rc = sc_error_set(err, SC_EINPUT,
		                  "asset: is required; authorize sets up the asset's OAuth tokens");
	if (!rc)
		rc = core_schema_validate(rt->asset_schema, asset, "asset", resolve_doc, rt, err);
	return rc;
}

/* Validate everything about a request that does not need the network. */
static int prepare(struct core_runtime *rt, const cJSON *req, const struct core_plugin **action,
                   cJSON **sets, struct sc_error *err)
{
	int rc = core_loader_auth_all(rt->loader, err);
	if (!rc)
		rc = build_schemas(rt, err);
	if (!rc)
		rc = core_schema_validate(rt->request_schema, req, "request", resolve_doc, rt, err);
	if (rc)
		return rc;
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(req, "action");
	char *id = identifier_of(a->valuestring);
	if (!id)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	rc = core_loader_action(rt->loader, id, action, err);
	free(id);
	if (!rc)
		rc = check_auth_names(rt, cJSON_GetObjectItemCaseSensitive(req, "asset"), err);
	if (rc)
		return rc;
	*sets = parameter_sets(req, err);
	if (!*sets)
		return err->code ? err->code : SC_ENOMEM;
	int i = 0;
	const cJSON *p;
	cJSON_ArrayForEach(p, *sets)
	{
		char path[48];
		snprintf(path, sizeof path, "parameters[%d]", i++);
		if ((*action)->schema &&
		    (rc = core_schema_validate((*action)->schema, p, path, NULL, NULL, err)))
			break;
	}
	if (rc) {
		cJSON_Delete(*sets);
		*sets = NULL;
	}
	return rc;
}

/* A request's report until its line is printed: with parallel sessions
 * (sc_send_async) results complete out of order, and lines go out in
 * request order, each as soon as it and all before it are complete. */
struct core_queued {
	struct core_report rep; /* first: core_runtime_result_done finds us by it */
	struct core_doc doc;    /* the request: results echo it, messages borrow it */
	cJSON *sets;
	int pending; /* results handed to a parallel session, not yet complete */
	int ready;   /* every parameter set has run */
	int status;
	struct core_queued *next;
};

static void flush(struct core_runtime *rt)
{
	while (rt->queue && rt->queue->ready && rt->queue->pending == 0) {
		struct core_queued *q = rt->queue;
		rt->queue = q->next;
		if (!rt->queue)
			rt->queue_tail = NULL;
		core_report_print(&q->rep, stdout);
		if (q->status > rt->status)
			rt->status = q->status;
		core_report_free(&q->rep);
		cJSON_Delete(q->sets);
		core_doc_release(&q->doc);
		free(q);
	}
}

void core_runtime_result_pending(struct core_runtime *rt, struct core_report *rep)
{
	(void)rt;
	((struct core_queued *)rep)->pending++;
}

void core_runtime_result_done(struct core_runtime *rt, struct core_report *rep, int rc)
{
	struct core_queued *q = (struct core_queued *)rep;
	q->pending--;
	if (rc && q->status < EXIT_FAILED)
		q->status = EXIT_FAILED;
	flush(rt);
}

void core_runtime_result_close(struct core_report *rep, struct sc_result *r, const char *action,
                               const struct sc_session *s, int rc, struct sc_error *err)
{
	if (rc && !err->message)
		sc_error_set(err, rc, "%s failed (%s)", action, sc_code_name(rc));
	if (rc)
		sc_log(SC_LOG_ERROR, "%s", err->message ? err->message : "failed");
	if (s)
		core_session_report(s, r);
	core_report_close(rep, r, rc, err);
}

static int run_sets(struct core_runtime *rt, const cJSON *req, const struct core_plugin *action,
                    const cJSON *sets, struct core_report *rep)
{
	struct sc_ctx ctx;
	core_ctx_init(&ctx, rt, req);
	ctx.action = action;
	ctx.report = rep;
	int worst = EXIT_OK;
	const cJSON *p;
	cJSON_ArrayForEach(p, sets)
	{
		struct sc_result *r = core_report_add(rep, p);
		if (!r) {
			worst = EXIT_FAILED;
			break;
		}
		struct sc_error err = SC_ERROR_INIT;
		int rc = action->desc->action->run(&ctx, p, r, &err);
		if (rc == SC_PENDING) {
			/* parallel.c completes it; `r` may move as results grow */
			sc_error_clear(&err);
			continue;
		}
		core_runtime_result_close(rep, r, action->desc->name, ctx.session, rc, &err);
		sc_error_clear(&err);
		if (rc && worst < EXIT_FAILED)
			worst = EXIT_FAILED;
	}
	core_ctx_release(&ctx);
	return worst;
}

/* Runs one request and queues its report (taking `doc`); flush() prints
 * it when its turn comes. */
static void run_request(struct core_runtime *rt, struct core_doc *doc, int authorize)
{
	struct core_queued *q = calloc(1, sizeof *q);
	const cJSON *a = doc->json ? cJSON_GetObjectItemCaseSensitive(doc->json, "action") : NULL;
	if (!q || core_report_init(
	              &q->rep, cJSON_IsString(a) ? a->valuestring : (authorize ? "authorize" : ""),
	              NULL)) {
		free(q);
		rt->status = core_exit_status(SC_ENOMEM);
		return;
	}
	q->doc = *doc;
	memset(doc, 0, sizeof *doc);
	doc = &q->doc;
	struct core_report *rep = &q->rep;
	int status, rc; /* exit status; sc_code */
	struct sc_error err = SC_ERROR_INIT;
	const struct core_plugin *action = NULL;
	cJSON *sets = NULL;
	if (!doc->json || doc->error) {
		/* refused before any check ran: exit 2 for what the input said,
		 * 1 when the check itself failed (out of memory, a bug) */
		rc = doc->code == SC_EINPUT || !doc->code ? SC_EINPUT : doc->code;
		sc_error_set(&err, rc, "%s", doc->error ? doc->error : "not JSON");
		status = rc == SC_EINPUT ? core_exit_status(SC_EINPUT) : EXIT_FAILED;
	} else if (!cJSON_IsObject(doc->json)) {
		status = core_exit_status(
		    sc_error_set(&err, SC_EINPUT,
		                 "request: must be a JSON object with \"action\" and \"asset\""));
	} else if ((rc = core_secrets_apply(rt->secrets_dir_opt, doc->json, &err))) {
		status = core_exit_status(rc);
	} else if (authorize) {
		rc = validate_for_authorize(rt, doc->json, &err);
		status = rc ? core_exit_status(rc) : core_authorize(rt, doc->json, rep, &err);
	} else if ((rc = prepare(rt, doc->json, &action, &sets, &err)) == SC_OK) {
		cJSON_ReplaceItemInObjectCaseSensitive(rep->root, "action",
		                                       cJSON_CreateString(action->desc->name));
		cJSON_ReplaceItemInObjectCaseSensitive(
		    rep->root, "identifier", cJSON_CreateString(action->desc->identifier));
		status = run_sets(rt, doc->json, action, sets, rep);
	} else {
		status = core_exit_status(rc);
	}
	if (err.code) {
		sc_log(SC_LOG_ERROR, "%s", err.message ? err.message : "failed");
		core_report_fail(rep, err.message);
	}
	sc_error_clear(&err);
	q->sets = sets;
	if (status > q->status)
		q->status = status;
	q->ready = 1;
	if (rt->queue_tail)
		rt->queue_tail->next = q;
	else
		rt->queue = q;
	rt->queue_tail = q;
	flush(rt);
}

/* ------------------------------------------------------------------ */

/* An action's outputs as the SOAR app manifest lists them: the fields
 * every result has, then the plugin's own "path:type" entries. */
static cJSON *output_list(const char *const *outputs)
{
	static const char *const common[] = {"action_result.status:string",
	                                     "action_result.message:string",
	                                     "action_result.parameter:object",
	                                     "summary.total_objects:numeric",
	                                     "summary.total_objects_successful:numeric",
	                                     NULL};
	cJSON *list = cJSON_CreateArray();
	for (int pass = 0; pass < 2; pass++) {
		const char *const *v = pass ? outputs : common;
		for (; v && *v; v++) {
			const char *colon = strrchr(*v, ':');
			if (!colon)
				continue;
			char *path =
			    pass ? sc_asprintf("action_result.data.*.%.*s", (int)(colon - *v), *v)
			         : strndup(*v, (size_t)(colon - *v));
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "data_path", path ? path : "");
			cJSON_AddStringToObject(o, "data_type", colon + 1);
			cJSON_AddItemToArray(list, o);
			free(path);
		}
	}
	return list;
}

static cJSON *plugin_entry(const struct core_plugin *p)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", p->desc->name);
	cJSON_AddStringToObject(o, "identifier", p->desc->identifier);
	cJSON_AddStringToObject(o, "version", p->desc->version ? p->desc->version : "");
	cJSON_AddStringToObject(o, "description", p->desc->description ? p->desc->description : "");
	cJSON_AddStringToObject(o, "path", p->path);
	cJSON_AddItemToObject(o, "schema",
	                      p->schema ? cJSON_Duplicate(p->schema, 1) : cJSON_CreateNull());
	if (p->desc->kind == SC_PLUGIN_AUTH)
		cJSON_AddBoolToObject(o, "interactive_authorize", p->desc->auth->authorize != NULL);
	if (p->desc->kind == SC_PLUGIN_ACTION)
		cJSON_AddItemToObject(o, "output", output_list(p->desc->outputs));
	return o;
}

static int list_plugins(struct core_runtime *rt)
{
	struct sc_error err = SC_ERROR_INIT;
	int rc = core_loader_all(rt->loader, &err);
	if (!rc)
		rc = build_schemas(rt, &err);
	cJSON *root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "version", PACKAGE_VERSION);
	cJSON_AddNumberToObject(root, "abi", SC_PLUGIN_ABI);
	cJSON *dirs = cJSON_AddArrayToObject(root, "plugin_path");
	for (size_t i = 0; i < rt->loader->ndirs; i++)
		cJSON_AddItemToArray(dirs, cJSON_CreateString(rt->loader->dirs[i]));
	cJSON *acts = cJSON_AddArrayToObject(root, "actions");
	cJSON *auths = cJSON_AddArrayToObject(root, "auth");
	cJSON *sinks = cJSON_AddArrayToObject(root, "sinks");
	cJSON *support = cJSON_AddArrayToObject(root, "support");
	for (size_t i = 0; i < rt->loader->n; i++) {
		const struct core_plugin *p = &rt->loader->plugins[i];
		cJSON *to = p->desc->kind == SC_PLUGIN_AUTH      ? auths
		            : p->desc->kind == SC_PLUGIN_SINK    ? sinks
		            : p->desc->kind == SC_PLUGIN_SUPPORT ? support
		                                                 : acts;
		cJSON_AddItemToArray(to, plugin_entry(p));
	}
	if (rt->asset_schema)
		cJSON_AddItemToObject(root, "asset_schema", cJSON_Duplicate(rt->asset_schema, 1));
	int status = EXIT_OK;
	if (rc || rt->loader->n == 0) {
		if (!rc) {
			char *path = core_loader_path_text(rt->loader);
			sc_error_set(&err, SC_EPLUGIN, "no plugins found; looked in: %s",
			             path ? path : "");
			free(path);
		}
		cJSON_AddStringToObject(root, "status", "failed");
		cJSON_AddStringToObject(root, "message", err.message ? err.message : "");
		sc_log(SC_LOG_ERROR, "%s", err.message ? err.message : "");
		status = core_exit_status(rc ? rc : SC_EPLUGIN);
	}
	char *text = core_json_sanitize(root) ? NULL : cJSON_Print(root);
	if (text)
		puts(text);
	free(text);
	cJSON_Delete(root);
	sc_error_clear(&err);
	return status;
}

/* Failures before any request could be read still answer in JSON. */
int core_fail_main(enum sc_code code, const char *msg)
{
	struct core_report rep;
	if (core_report_init(&rep, "", NULL) == SC_OK) {
		core_report_fail(&rep, msg);
		core_report_print(&rep, stdout);
		core_report_free(&rep);
	}
	sc_log(SC_LOG_ERROR, "%s", msg);
	return core_exit_status(code);
}

/* What every entry point sets up, and tears down in reverse. */
static int runtime_open(struct core_runtime *rt, struct core_loader *loader,
                        const struct core_options *o, struct sc_error *err)
{
	memset(rt, 0, sizeof *rt);
	rt->state_dir_opt = o->state_dir;
	rt->secrets_dir_opt = o->secrets_dir;
	rt->loader = loader;
	core_log_set_verbose(o->verbose);
	if (curl_global_init(CURL_GLOBAL_DEFAULT))
		return sc_error_set(err, SC_EINTERNAL, "libcurl could not be initialised");
	int rc = core_loader_init(loader, o->plugin_dirs, o->nplugin_dirs, err);
	if (rc) {
		if (loader->dirs)
			core_loader_release(loader);
		curl_global_cleanup();
	}
	return rc;
}

static void runtime_close(struct core_runtime *rt)
{
	core_parallel_drain(rt);
	flush(rt);
	core_sessions_close(rt); /* stops the parallel sessions' threads too */
	core_parallel_free(rt);
	cJSON_Delete(rt->asset_schema);
	cJSON_Delete(rt->request_schema);
	core_loader_release(rt->loader);
	curl_global_cleanup();
}

/* One request at a time, as it arrives: its result is printed (and its
 * memory freed) before the next is read, or, when it went to parallel
 * sessions, as soon as it and all before it are complete. While messages
 * are in flight and no more input is at hand, the loop runs until input
 * comes, so a platform that waits for each answer before it writes the
 * next request gets it. */
static int read_requests(struct core_runtime *rt, int authorize, struct sc_error *err)
{
	struct core_reader reader;
	struct core_doc doc;
	size_t n = 0;
	int more, status = EXIT_OK;
	core_reader_init(&reader, stdin);
	for (;;) {
		if (rt->par && !core_reader_ready(&reader))
			core_parallel_wait_input(rt, fileno(stdin));
		if ((more = core_request_next(&reader, &doc, err)) <= 0)
			break;
		n++;
		run_request(rt, &doc, authorize);
		core_doc_release(&doc);
	}
	core_parallel_drain(rt);
	flush(rt);
	status = rt->status;
	if (more < 0) {
		int s =
		    core_fail_main(SC_EINPUT, err->message ? err->message : "cannot read stdin");
		if (s > status)
			status = s;
	} else if (n == 0) {
		status = core_fail_main(
		    SC_EINPUT,
		    "no request on stdin; send a JSON object with \"action\" and \"asset\"");
	}
	core_reader_release(&reader);
	return status;
}

/* Open the runtime, run `body` in it, close it: the one set-up and
 * teardown of every entry point. */
static int with_runtime(const struct core_options *o, int (*body)(struct core_runtime *, int),
                        int arg)
{
	struct core_runtime rt;
	struct core_loader loader;
	struct sc_error err = SC_ERROR_INIT;
	int rc = runtime_open(&rt, &loader, o, &err);
	if (rc) {
		int status = core_fail_main(rc, err.message ? err.message : "plugin loader failed");
		sc_error_clear(&err);
		return status;
	}
	int status = body(&rt, arg);
	runtime_close(&rt);
	return status;
}

static int run_requests(struct core_runtime *rt, int authorize)
{
	struct sc_error err = SC_ERROR_INIT;
	int status = read_requests(rt, authorize, &err);
	sc_error_clear(&err);
	return status;
}

static int run_list(struct core_runtime *rt, int unused)
{
	(void)unused;
	return list_plugins(rt);
}

int core_requests_main(const struct core_options *o, enum core_mode mode)
{
	return with_runtime(o, run_requests, mode == CORE_AUTHORIZE);
}

int core_list_main(const struct core_options *o)
{
	return with_runtime(o, run_list, 0);
}
