/* The runtime: request -> validate -> load -> (plugins authenticate and
 * send) -> result. Everything that can reject a request runs before any
 * plugin touches the network. */
#include "ctx.h"
#include "reader.h"
#include "result.h"
#include "schema.h"
#include "schemas.h"
#include "session.h"
#include "serve.h"

#include <ctype.h>
#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
	"Usage: smtp-connector [OPTIONS] < request.json > result.json\n"
	"       smtp-connector [OPTIONS] authorize < request.json\n"
	"\n"
	"Runs SOAR e-mail actions (test connectivity, send email, send htmlemail,\n"
	"send rawemail) described by JSON requests on stdin; one JSON result line\n"
	"per request on stdout; diagnostics on stderr.\n"
	"\n"
	"  --plugin-dir DIR   look for plugins in DIR (repeatable; wins over\n"
	"                     SMTP_CONNECTOR_PLUGIN_PATH and the built-in " PLUGINDIR ")\n"
	"  --state-dir DIR    OAuth tokens and throttle state (or SMTP_CONNECTOR_STATE_DIR;\n"
	"                     default $XDG_STATE_HOME/smtp-connector or ~/.local/state/smtp-connector)\n"
	"  -v, --verbose      progress and the SMTP transcript on stderr, secrets redacted\n"
	"  --list             print the installed actions and auth plugins with their schemas\n"
	"  --version          print the version\n"
	"  --help             print this help\n"
	"\n"
	"authorize: prints the OAuth consent URL on stderr and waits (5 minutes, or\n"
	"SMTP_CONNECTOR_AUTHORIZE_TIMEOUT seconds) for the redirect on a loopback\n"
	"listener; paste the redirected URL on the terminal, or finish from another\n"
	"run with SMTP_CONNECTOR_REDIRECT_URL=<url>, when the browser cannot reach it.\n"
	"\n"
	"Exit status: 0 all succeeded, 1 an action failed, 2 unusable request,\n"
	"3 the connector cannot run (no plugins, wrong plugin ABI).\n";

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
		cJSON_ArrayForEach(k, pp)
			if (!cJSON_GetObjectItemCaseSensitive(props, k->string))
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

static int exit_for(int code)
{
	switch (code) {
	case SC_OK: return EXIT_OK;
	case SC_EINPUT: return EXIT_UNUSABLE;
	case SC_EPLUGIN: return EXIT_CANNOT_RUN;
	default: return EXIT_FAILED;
	}
}

static char *auth_names(const struct core_loader *l)
{
	char *s = NULL;
	for (size_t i = 0; i < l->n; i++) {
		if (l->plugins[i].desc->kind != SC_PLUGIN_AUTH)
			continue;
		char *n = sc_asprintf("%s%s\"%s\"", s ? s : "", s ? ", " : "", l->plugins[i].desc->name);
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
				  "asset.auth_type: no auth plugin named \"%s\" is installed; use \"Automatic\" or one of %s",
				  t->valuestring, names ? names : "(none)");
	}
	int i = 0;
	const cJSON *o;
	cJSON_ArrayForEach(o, order) {
		if (rc)
			break;
		if (!core_loader_find_auth(rt->loader, o->valuestring)) {
			names = auth_names(rt->loader);
			rc = sc_error_set(err, SC_EINPUT,
					  "asset.auth_order[%d]: no auth plugin named \"%s\" is installed; installed: %s",
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
		cJSON_ArrayForEach(e, p)
			cJSON_AddItemReferenceToArray(sets, (cJSON *)e);
		if (cJSON_GetArraySize(sets) == 0) {
			cJSON_Delete(sets);
			sc_error_set(err, SC_EINPUT,
				     "parameters: the list is empty; give at least one parameter set (an object)");
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
		rc = sc_error_set(err, SC_EINPUT, "asset: is required; authorize sets up the asset's OAuth tokens");
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
	cJSON_ArrayForEach(p, *sets) {
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

static int run_sets(struct core_runtime *rt, const cJSON *req, const struct core_plugin *action,
		    const cJSON *sets, struct core_report *rep)
{
	struct sc_ctx ctx;
	core_ctx_init(&ctx, rt, req);
	ctx.action = action;
	int worst = EXIT_OK;
	const cJSON *p;
	cJSON_ArrayForEach(p, sets) {
		struct sc_result *r = core_report_add(rep, p);
		if (!r) {
			worst = EXIT_FAILED;
			break;
		}
		struct sc_error err = SC_ERROR_INIT;
		int rc = action->desc->action->run(&ctx, p, r, &err);
		if (rc && !err.message)
			sc_error_set(&err, rc, "%s failed (%s)", action->desc->name, sc_code_name(rc));
		if (rc)
			sc_log(SC_LOG_ERROR, "%s", err.message ? err.message : "failed");
		if (ctx.session)
			core_session_report(ctx.session, r);
		core_report_close(rep, r, rc, &err);
		sc_error_clear(&err);
		if (rc && worst < EXIT_FAILED)
			worst = EXIT_FAILED;
	}
	core_ctx_release(&ctx);
	return worst;
}

static int run_request(struct core_runtime *rt, struct core_doc *doc, int authorize)
{
	struct core_report rep;
	const cJSON *a = doc->json ? cJSON_GetObjectItemCaseSensitive(doc->json, "action") : NULL;
	if (core_report_init(&rep, cJSON_IsString(a) ? a->valuestring : (authorize ? "authorize" : ""),
			     NULL))
		return EXIT_CANNOT_RUN;
	int status, rc; /* exit status; sc_code */
	struct sc_error err = SC_ERROR_INIT;
	const struct core_plugin *action = NULL;
	cJSON *sets = NULL;
	if (!doc->json) {
		sc_error_set(&err, SC_EINPUT, "%s", doc->error ? doc->error : "not JSON");
		status = EXIT_UNUSABLE;
	} else if (!cJSON_IsObject(doc->json)) {
		sc_error_set(&err, SC_EINPUT, "request: must be a JSON object with \"action\" and \"asset\"");
		status = EXIT_UNUSABLE;
	} else if (authorize) {
		rc = validate_for_authorize(rt, doc->json, &err);
		status = rc ? exit_for(rc) : core_authorize(rt, doc->json, &rep, &err);
	} else if ((rc = prepare(rt, doc->json, &action, &sets, &err)) == SC_OK) {
		cJSON_ReplaceItemInObjectCaseSensitive(rep.root, "action",
						       cJSON_CreateString(action->desc->name));
		cJSON_ReplaceItemInObjectCaseSensitive(rep.root, "identifier",
						       cJSON_CreateString(action->desc->identifier));
		status = run_sets(rt, doc->json, action, sets, &rep);
	} else {
		status = exit_for(rc);
	}
	if (err.code) {
		sc_log(SC_LOG_ERROR, "%s", err.message ? err.message : "failed");
		core_report_fail(&rep, err.message);
	}
	core_report_print(&rep, stdout);
	core_report_free(&rep);
	cJSON_Delete(sets);
	sc_error_clear(&err);
	return status;
}

/* ------------------------------------------------------------------ */

static cJSON *plugin_entry(const struct core_plugin *p)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", p->desc->name);
	cJSON_AddStringToObject(o, "identifier", p->desc->identifier);
	cJSON_AddStringToObject(o, "version", p->desc->version ? p->desc->version : "");
	cJSON_AddStringToObject(o, "description", p->desc->description ? p->desc->description : "");
	cJSON_AddStringToObject(o, "path", p->path);
	cJSON_AddItemToObject(o, "schema", p->schema ? cJSON_Duplicate(p->schema, 1) : cJSON_CreateNull());
	if (p->desc->kind == SC_PLUGIN_AUTH)
		cJSON_AddBoolToObject(o, "interactive_authorize", p->desc->auth->authorize != NULL);
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
	for (size_t i = 0; i < rt->loader->n; i++) {
		const struct core_plugin *p = &rt->loader->plugins[i];
		enum sc_plugin_kind k = p->desc->kind;
		cJSON_AddItemToArray(k == SC_PLUGIN_AUTH ? auths : k == SC_PLUGIN_SINK ? sinks : acts,
				     plugin_entry(p));
	}
	if (rt->asset_schema)
		cJSON_AddItemToObject(root, "asset_schema", cJSON_Duplicate(rt->asset_schema, 1));
	int status = EXIT_OK;
	if (rc || rt->loader->n == 0) {
		if (!rc) {
			char *path = core_loader_path_text(rt->loader);
			sc_error_set(&err, SC_EPLUGIN, "no plugins found; looked in: %s", path ? path : "");
			free(path);
		}
		cJSON_AddStringToObject(root, "status", "failed");
		cJSON_AddStringToObject(root, "message", err.message ? err.message : "");
		sc_log(SC_LOG_ERROR, "%s", err.message ? err.message : "");
		status = EXIT_CANNOT_RUN;
	}
	char *text = cJSON_Print(root);
	if (text)
		puts(text);
	free(text);
	cJSON_Delete(root);
	sc_error_clear(&err);
	return status;
}

/* Failures before any request could be read still answer in JSON. */
static int fail_early(int status, const char *msg)
{
	struct core_report rep;
	if (core_report_init(&rep, "", NULL) == SC_OK) {
		core_report_fail(&rep, msg);
		core_report_print(&rep, stdout);
		core_report_free(&rep);
	}
	sc_log(SC_LOG_ERROR, "%s", msg);
	return status;
}

int sc_connector_main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "serve") == 0)
		return core_serve_main(argc - 1, argv + 1);
	static const struct option opts[] = {
		{ "plugin-dir", required_argument, NULL, 'p' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "list", no_argument, NULL, 'l' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	char **dirs = calloc((size_t)argc + 1, sizeof *dirs);
	size_t ndirs = 0;
	int list = 0, c;
	struct core_runtime rt;
	memset(&rt, 0, sizeof rt);
	while ((c = getopt_long(argc, argv, "v", opts, NULL)) != -1) {
		switch (c) {
		case 'p': dirs[ndirs++] = optarg; break;
		case 's': rt.state_dir_opt = optarg; break;
		case 'v': core_log_set_verbose(1); break;
		case 'l': list = 1; break;
		case 'V': printf("smtp-connector %s (plugin ABI %d)\n", PACKAGE_VERSION, SC_PLUGIN_ABI);
			  free(dirs);
			  return EXIT_OK;
		case 'h': fputs(usage_text, stdout); free(dirs); return EXIT_OK;
		default:
			fputs(usage_text, stderr);
			free(dirs);
			return fail_early(EXIT_UNUSABLE, "unknown command-line option; see smtp-connector --help");
		}
	}
	int authorize = 0;
	if (optind < argc) {
		if (strcmp(argv[optind], "authorize") == 0 && optind + 1 == argc) {
			authorize = 1;
		} else {
			free(dirs);
			return fail_early(EXIT_UNUSABLE, "unexpected argument; the only command is \"authorize\" (see --help)");
		}
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		free(dirs);
		return fail_early(EXIT_CANNOT_RUN, "libcurl could not be initialised");
	}
	struct core_loader loader;
	struct sc_error err = SC_ERROR_INIT;
	int status;
	rt.loader = &loader;
	if (core_loader_init(&loader, dirs, ndirs, &err)) {
		status = fail_early(EXIT_CANNOT_RUN, err.message ? err.message : "plugin loader failed");
	} else if (list) {
		status = list_plugins(&rt);
	} else {
		/* One request at a time, as it arrives: its result is printed
		 * (and its memory freed) before the next is read. */
		struct core_reader reader;
		struct core_doc doc;
		size_t n = 0;
		int more;
		core_reader_init(&reader, stdin);
		status = EXIT_OK;
		while ((more = core_request_next(&reader, &doc, &err)) > 0) {
			n++;
			int s = run_request(&rt, &doc, authorize);
			core_doc_release(&doc);
			if (s > status)
				status = s;
		}
		if (more < 0) {
			int s = fail_early(EXIT_UNUSABLE, err.message ? err.message : "cannot read stdin");
			if (s > status)
				status = s;
		} else if (n == 0) {
			status = fail_early(EXIT_UNUSABLE,
					    "no request on stdin; send a JSON object with \"action\" and \"asset\"");
		}
		core_reader_release(&reader);
	}
	core_sessions_close(&rt);
	cJSON_Delete(rt.asset_schema);
	cJSON_Delete(rt.request_schema);
	if (rt.loader->dirs || rt.loader->plugins)
		core_loader_release(&loader);
	curl_global_cleanup();
	sc_error_clear(&err);
	free(dirs);
	return status;
}
