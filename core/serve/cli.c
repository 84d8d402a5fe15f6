/* `smtp-connector serve`: flags (smtp-pigeon's, unchanged, so a pigeon
 * user swaps the binary), --config, the delivery plugin, then the loop. */
#include "serve_config.h"
#include "ctx.h"
#include "listener.h"
#include "loader.h"
#include "msgfile.h"
#include "schema.h"
#include "signature.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const char serve_usage[] =
    "Usage: smtp-connector serve [OPTIONS]\n"
    "\n"
    "Accepts mail over SMTP and hands each message to a delivery plugin: an\n"
    "HTTP endpoint (--url) or a Maildir (--maildir). Runs in the foreground;\n"
    "one line per event on stderr; SIGTERM or SIGINT stops it cleanly.\n"
    "\n"
    "  --url URL          POST each message to URL (the http plugin)\n"
    "  --maildir DIR      write each message into the Maildir DIR (the maildir plugin)\n"
    "  --host ADDR        listen address (default 127.0.0.1)\n"
    "  --port N           listen port (default 1025)\n"
    "  --domain NAME      name in the greeting and EHLO reply (default localhost)\n"
    "  --header 'N: V'    extra HTTP request header (repeatable; split at the first colon)\n"
    "  --template TEXT    HTTP request body, a Mustache template over the message\n"
    "  --config FILE      JSON settings (schemas/serve.json): listen addresses, tls,\n"
    "                     auth, networks, limits, timeouts, delivery; flags override it\n"
    "  --spool-dir DIR    where messages are written while they arrive\n"
    "  --require-signature  refuse (550 5.7.1) mail without a valid\n"
    "                     X-SMTP-Connector-Signature (doc/signatures.md)\n"
    "  --secret-key-file FILE  its key (mode 0600); else SMTP_CONNECTOR_SECRET_KEY\n"
    "  --state-dir DIR    state directory (default as for the other commands)\n"
    "  --plugin-dir DIR   look for plugins in DIR (repeatable)\n"
    "  --hash-password NAME  read a password on stdin, print a users-file line\n"
    "  -v, --verbose      debug output\n"
    "  --version          print the version\n"
    "  --help             print this help\n"
    "\n"
    "Single-dash forms (-url, -port) work too, as with smtp-pigeon.\n"
    "Exit status: 0 stopped by a signal, 1 cannot listen or deliver,\n"
    "2 unusable flags or configuration, 3 the delivery plugin is missing or unusable.\n";

struct flags {
	const char *url, *host, *port, *domain, *template, *maildir, *config;
	const char *spool_dir, *state_dir, *hash_name, *key_file;
	int require_signature;
	const char **headers;
	size_t nheaders;
	char **dirs;
	size_t ndirs;
};

static int fail(int code, const char *msg)
{
	fprintf(stderr, "smtp-connector serve: error: %s\n", msg ? msg : "failed");
	return core_exit_status((enum sc_code)code);
}

static int hash_password(const char *name)
{
	if (!*name || strchr(name, ':') || strpbrk(name, "\r\n"))
		return fail(
		    SC_EINPUT,
		    "--hash-password: the user name must be non-empty, without ':' or line breaks");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, stdin);
	if (n < 0) {
		free(line);
		return fail(SC_EINPUT, "--hash-password: give the password on stdin (one line)");
	}
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	char *out =
	    n ? serve_users_hash_line(name, line, (size_t)n, SERVE_PBKDF2_ITERATIONS) : NULL;
	sc_secret_wipe(line, cap);
	free(line);
	if (!out)
		return fail(SC_EINPUT, "--hash-password: the password is empty");
	puts(out);
	free(out);
	return EXIT_OK;
}

/* "Name: Value" -> settings.headers[Name] = Value, split at the FIRST
 * colon (smtp-pigeon splits at the last one: a value holding ':' broke). */
static int add_header(cJSON *settings, cJSON *headers, const char *arg, struct sc_error *err)
{
	const char *colon = strchr(arg, ':');
	size_t nl = colon ? (size_t)(colon - arg) : 0;
	while (nl && (arg[nl - 1] == ' ' || arg[nl - 1] == '\t'))
		nl--;
	/* never quote the argument: its value may be a bearer token */
	if (!colon || nl == 0)
		return sc_error_set(err, SC_EINPUT,
		                    "--header: an argument is not \"Name: Value\" (no colon, or "
		                    "no name before it)");
	for (size_t i = 0; i < nl; i++)
		if ((unsigned char)arg[i] <= 0x20 || (unsigned char)arg[i] >= 0x7f)
			return sc_error_set(err, SC_EINPUT,
			                    "--header: a header name holds a space or control "
			                    "character (\"Name: Value\", the name a token)");
	const char *v = colon + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	/* smtp-pigeon's way of setting the body's type: it is content_type,
	 * which also picks the template's escaping (a header of its own
	 * could say text/html over a JSON-escaped body) */
	if (nl == 12 && strncasecmp(arg, "Content-Type", 12) == 0) {
		cJSON_DeleteItemFromObjectCaseSensitive(settings, "content_type");
		return cJSON_AddStringToObject(settings, "content_type", v)
		           ? SC_OK
		           : sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	char *name = sc_asprintf("%.*s", (int)nl, arg);
	if (!name)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	const cJSON *old;
	cJSON_ArrayForEach(old, headers) /* a later flag replaces, as smtp-pigeon's Set */
	    if (strcasecmp(old->string, name) == 0)
	{
		cJSON_DeleteItemFromObjectCaseSensitive(headers, old->string);
		break;
	}
	cJSON_AddStringToObject(headers, name, v);
	free(name);
	return SC_OK;
}

static cJSON *settings_for(struct serve_config *c, const char *plugin)
{
	if (!c->plugin || strcmp(c->plugin, plugin) != 0 || !c->settings) {
		cJSON_Delete(c->settings);
		c->settings = cJSON_CreateObject();
		free(c->plugin);
		c->plugin = strdup(plugin);
	}
	return c->settings;
}

static void put_string(cJSON *o, const char *k, const char *v)
{
	cJSON_DeleteItemFromObjectCaseSensitive(o, k);
	cJSON_AddStringToObject(o, k, v);
}

/* Flags over the file. */
static int apply_flags(struct serve_config *c, const struct flags *f, struct sc_error *err)
{
	if (f->host || f->port || !c->nlisten) {
		const char *host = f->host ? f->host : c->nlisten ? c->listen[0].host : "127.0.0.1";
		const char *port = f->port ? f->port : c->nlisten ? c->listen[0].port : "1025";
		struct serve_listen l = {strdup(host), strdup(port), 0};
		for (size_t i = 0; i < c->nlisten; i++) {
			free(c->listen[i].host);
			free(c->listen[i].port);
		}
		free(c->listen);
		c->listen = malloc(sizeof *c->listen);
		if (!c->listen || !l.host || !l.port)
			return sc_error_set(err, SC_ENOMEM, "out of memory");
		c->listen[0] = l;
		c->nlisten = 1;
	}
	if (f->domain) {
		free(c->domain);
		c->domain = strdup(f->domain);
	}
	if (!c->domain)
		c->domain = strdup("localhost");
	if (f->spool_dir) {
		free(c->spool_dir);
		c->spool_dir = strdup(f->spool_dir);
	}
	if (f->url && f->maildir)
		return sc_error_set(err, SC_EINPUT,
		                    "--url and --maildir: give one delivery, not both");
	if (f->maildir)
		put_string(settings_for(c, "maildir"), "dir", f->maildir);
	if (f->url)
		put_string(settings_for(c, "http"), "url", f->url);
	if ((f->nheaders || f->template) && (!c->plugin || strcmp(c->plugin, "http") != 0))
		return sc_error_set(
		    err, SC_EINPUT,
		    "--header and --template need --url (the http delivery plugin)");
	if (f->template)
		put_string(c->settings, "template", f->template);
	if (f->nheaders) {
		cJSON *h = cJSON_GetObjectItemCaseSensitive(c->settings, "headers");
		if (!cJSON_IsObject(h)) {
			cJSON_DeleteItemFromObjectCaseSensitive(c->settings, "headers");
			h = cJSON_AddObjectToObject(c->settings, "headers");
		}
		for (size_t i = 0; i < f->nheaders; i++) {
			int rc = add_header(c->settings, h, f->headers[i], err);
			if (rc)
				return rc;
		}
	}
	if (f->require_signature)
		c->require_signature = 1;
	if (f->key_file) {
		free(c->secret_key_file);
		c->secret_key_file = strdup(f->key_file);
	}
	if (c->secret_key_file && !c->require_signature)
		return sc_error_set(err, SC_EINPUT,
		                    "secret_key_file is only read with require_signature: add "
		                    "--require-signature (or \"require_signature\": true)");
	if (c->require_signature) {
		int rc = sig_key_load(c->secret_key_file, &c->secret_key, err);
		if (rc) {
			sc_error_prefix(err, "require_signature");
			return rc;
		}
	}
	if (!c->plugin)
		return sc_error_set(err, SC_EINPUT,
		                    "Must provide --url or --maildir (or \"delivery\" in "
		                    "--config); see smtp-connector serve --help");
	char *end;
	for (size_t i = 0; i < c->nlisten; i++) {
		long p = strtol(c->listen[i].port, &end, 10);
		if (!*c->listen[i].port || *end || p < 0 || p > 65535)
			return sc_error_set(err, SC_EINPUT,
			                    "--port: \"%s\" is not a port number (0-65535)",
			                    c->listen[i].port);
	}
	return SC_OK;
}

/* getopt_long_only takes abbreviations: "--secret-key VALUE" would be
 * --secret-key-file with the key as a file name, then quoted in the
 * error. The option just parsed must be `name` in full. */
static int spelled_out(int argc, char **argv, const char *name)
{
	int at = optind - 1 >= 0 && optind - 1 < argc && argv[optind - 1] == optarg ? optind - 2
	                                                                            : optind - 1;
	if (at < 0 || at >= argc)
		return 0;
	const char *a = argv[at];
	while (*a == '-')
		a++;
	size_t n = strcspn(a, "=");
	return n == strlen(name) && !strncmp(a, name, n);
}

static int parse_args(int argc, char **argv, struct flags *f, int *done)
{
	static const struct option opts[] = {{"url", required_argument, NULL, 'u'},
	                                     {"host", required_argument, NULL, 'H'},
	                                     {"port", required_argument, NULL, 'P'},
	                                     {"domain", required_argument, NULL, 'd'},
	                                     {"header", required_argument, NULL, 'e'},
	                                     {"template", required_argument, NULL, 't'},
	                                     {"maildir", required_argument, NULL, 'm'},
	                                     {"config", required_argument, NULL, 'c'},
	                                     {"spool-dir", required_argument, NULL, 'S'},
	                                     {"state-dir", required_argument, NULL, 's'},
	                                     {"plugin-dir", required_argument, NULL, 'p'},
	                                     {"hash-password", required_argument, NULL, 'x'},
	                                     {"require-signature", no_argument, NULL, 'R'},
	                                     {"secret-key-file", required_argument, NULL, 'k'},
	                                     {"standalone-logging", no_argument, NULL, 'L'},
	                                     {"verbose", no_argument, NULL, 'v'},
	                                     {"version", no_argument, NULL, 'V'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	int c;
	optind = 1;
	while ((c = getopt_long_only(argc, argv, "v", opts, NULL)) != -1) {
		switch (c) {
		case 'u':
			f->url = optarg;
			break;
		case 'H':
			f->host = optarg;
			break;
		case 'P':
			f->port = optarg;
			break;
		case 'd':
			f->domain = optarg;
			break;
		case 'e':
			f->headers[f->nheaders++] = optarg;
			break;
		case 't':
			f->template = optarg;
			break;
		case 'm':
			f->maildir = optarg;
			break;
		case 'c':
			f->config = optarg;
			break;
		case 'S':
			f->spool_dir = optarg;
			break;
		case 's':
			f->state_dir = optarg;
			break;
		case 'p':
			f->dirs[f->ndirs++] = optarg;
			break;
		case 'x':
			f->hash_name = optarg;
			break;
		case 'R':
			f->require_signature = 1;
			break;
		case 'k':
			if (!spelled_out(argc, argv, "secret-key-file")) {
				*done = 1;
				return fail(SC_EINPUT,
				            "the key is never taken on the command line (any "
				            "user can read it there): write --secret-key-file "
				            "FILE in full, or set SMTP_CONNECTOR_SECRET_KEY");
			}
			f->key_file = optarg;
			break;
		case 'L':
			break; /* smtp-pigeon's log prefix: lines here are always plain */
		case 'v':
			core_log_set_verbose(1);
			break;
		case 'V':
			printf("smtp-connector serve version: %s (plugin ABI %d)\n",
			       PACKAGE_VERSION, SC_PLUGIN_ABI);
			*done = 1;
			return EXIT_OK;
		case 'h':
			fputs(serve_usage, stdout);
			*done = 1;
			return EXIT_OK;
		default:
			fputs(serve_usage, stderr);
			*done = 1;
			return fail(SC_EINPUT, "unknown option; see smtp-connector serve --help");
		}
	}
	if (optind < argc) {
		*done = 1;
		return fail(SC_EINPUT,
		            "unexpected argument; serve takes options only (see --help)");
	}
	return EXIT_OK;
}

/* The spool dir, emptied of message files an earlier run left behind (a
 * crash): none of them was answered 250 by this listener without the sink
 * having taken its own copy first. */
static int make_spool(const char *dir, struct sc_error *err)
{
	struct stat st;
	if (mkdir(dir, 0700) && errno != EEXIST)
		return sc_error_set(err, SC_EIO, "spool_dir: cannot create %s: %s", dir,
		                    strerror(errno));
	if (stat(dir, &st) || !S_ISDIR(st.st_mode))
		return sc_error_set(err, SC_EIO, "spool_dir: %s is not a directory", dir);
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		size_t n = strlen(e->d_name);
		if (n > 4 && strcmp(e->d_name + n - 4, ".msg") == 0) {
			char *p = sc_asprintf("%s/%s", dir, e->d_name);
			if (p)
				unlink(p);
			free(p);
		}
	}
	if (d)
		closedir(d);
	return SC_OK;
}

/* Load the sink, check its settings, start it, run the loop, stop it. */
static int run_with_sink(struct serve_config *cfg, struct flags *f, const char *state_dir,
                         struct sc_error *err)
{
	struct core_loader loader;
	memset(&loader, 0, sizeof loader);
	const struct core_plugin *p = NULL;
	int rc = core_loader_init(&loader, f->dirs, f->ndirs, err);
	if (!rc)
		rc = core_loader_sink(&loader, cfg->plugin, &p, err);
	if (!rc && p->schema && (rc = core_schema_check(p->schema, err)) == SC_OK)
		rc = core_schema_validate(p->schema, cfg->settings, "delivery", NULL, NULL, err);
	void *priv = NULL;
	struct sc_sink_host host = {cfg->domain, state_dir, sc_verbose()};
	if (!rc)
		rc = p->desc->sink->start(cfg->settings, &host, &priv, err);
	if (!rc) {
		rc = serve_run(cfg, p->desc->sink, priv, err);
		serve_msgfile_clear();
		if (p->desc->sink->stop)
			p->desc->sink->stop(priv, cfg->shutdown_grace);
		if (!rc)
			fprintf(stderr, "smtp-connector serve stopped\n");
	}
	if (loader.dirs || loader.plugins)
		core_loader_release(&loader);
	return rc;
}

int core_serve_main(int argc, char **argv)
{
	struct flags f;
	memset(&f, 0, sizeof f);
	f.headers = calloc((size_t)argc + 1, sizeof *f.headers);
	f.dirs = calloc((size_t)argc + 1, sizeof *f.dirs);
	if (!f.headers || !f.dirs) {
		free(f.headers);
		free(f.dirs);
		return fail(SC_ENOMEM, "out of memory");
	}
	int done = 0;
	int status = parse_args(argc, argv, &f, &done);
	if (!done && f.hash_name) {
		status = hash_password(f.hash_name);
		done = 1;
	}
	if (done) {
		free(f.headers);
		free(f.dirs);
		return status;
	}
	struct serve_config cfg;
	struct sc_error err = SC_ERROR_INIT;
	serve_config_defaults(&cfg);
	int rc = f.config ? serve_config_load(&cfg, f.config, &err) : SC_OK;
	if (!rc)
		rc = apply_flags(&cfg, &f, &err);
	struct core_runtime rt;
	struct sc_ctx ctx;
	memset(&rt, 0, sizeof rt);
	memset(&ctx, 0, sizeof ctx);
	rt.state_dir_opt = f.state_dir;
	ctx.rt = &rt;
	const char *state_dir = rc ? NULL : sc_state_dir(&ctx, &err);
	if (!rc && !state_dir)
		rc = err.code;
	if (!rc && !cfg.spool_dir && !(cfg.spool_dir = sc_asprintf("%s/serve-spool", state_dir)))
		rc = sc_error_set(&err, SC_ENOMEM, "out of memory");
	if (!rc)
		rc = make_spool(cfg.spool_dir, &err);
	if (!rc)
		rc = run_with_sink(&cfg, &f, state_dir, &err);
	status = rc ? fail(rc, err.message) : EXIT_OK;
	free(ctx.state_dir);
	serve_config_free(&cfg);
	sc_error_clear(&err);
	free(f.headers);
	free(f.dirs);
	return status;
}
