/* Plugin loading. We write our own diagnostics because lt_dlerror() says
 * "file not found" even for a module that exists but whose dependencies
 * do not: the user needs to know which of "not there", "there but not
 * loadable" and "there but built for another ABI" happened, and where we
 * looked. */
#include "loader.h"
#include "schema.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef PLUGINDIR
#define PLUGINDIR "/usr/local/lib/smtp-connector"
#endif

/* The runtime's one loader, for sc_support_load (plugins call it without
 * a handle on the runtime). */
static struct core_loader *active;

static int add_dir(struct core_loader *l, const char *d)
{
	char *abs;
	if (d[0] == '/') {
		abs = strdup(d);
	} else {
		char *cwd = getcwd(NULL, 0);
		abs = cwd ? sc_asprintf("%s/%s", cwd, d) : NULL;
		free(cwd);
	}
	if (!abs)
		return -1;
	size_t n = strlen(abs);
	while (n > 1 && abs[n - 1] == '/')
		abs[--n] = '\0';
	char **nd = realloc(l->dirs, (l->ndirs + 1) * sizeof *nd);
	if (!nd) {
		free(abs);
		return -1;
	}
	l->dirs = nd;
	l->dirs[l->ndirs++] = abs;
	return 0;
}

/* An installed plugin directory holds each module twice (libtool's
 * action_x.la next to action_x.so), a build tree once, and a module may
 * be in several directories of the path: `seen` keeps the bases met so
 * far so each is listed and loaded once, from the first directory. */
struct base_set {
	char **v;
	size_t n;
};

static int base_seen(const struct base_set *s, const char *base)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i], base) == 0)
			return 1;
	return 0;
}

/* Takes `base` (freed on failure). */
static int base_add(struct base_set *s, char *base)
{
	char **nv = realloc(s->v, (s->n + 1) * sizeof *nv);
	if (!nv) {
		free(base);
		return -1;
	}
	s->v = nv;
	s->v[s->n++] = base;
	return 0;
}

static void base_set_free(struct base_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
}

static int scan_dirs(struct core_loader *l, const char *prefix, int load, char **names,
                     struct base_set *seen, struct sc_error *err);

/* The plugin table never moves: the runtime, sessions and contexts keep
 * pointers to its entries while later modules load (an auth plugin in one
 * request, support_html in the middle of an action). So it is allocated
 * once, for every module file on the path at start. */
static int size_table(struct core_loader *l)
{
	struct base_set seen = {NULL, 0};
	int rc = scan_dirs(l, "", 0, NULL, &seen, NULL);
	size_t cap = seen.n + 1;
	base_set_free(&seen);
	if (rc)
		return -1;
	l->plugins = calloc(cap, sizeof *l->plugins);
	if (!l->plugins)
		return -1;
	l->cap = cap;
	return 0;
}

int core_loader_init(struct core_loader *l, char **cli_dirs, size_t ncli, struct sc_error *err)
{
	memset(l, 0, sizeof *l);
	if (lt_dlinit())
		return sc_error_set(err, SC_EPLUGIN, "cannot initialise libltdl: %s", lt_dlerror());
	int rc = 0;
	const char *env = getenv("SMTP_CONNECTOR_PLUGIN_PATH");
	if (ncli) {
		for (size_t i = 0; i < ncli && !rc; i++)
			rc = add_dir(l, cli_dirs[i]);
	} else if (env && *env) {
		char *copy = strdup(env), *save = NULL;
		for (char *t = copy ? strtok_r(copy, ":", &save) : NULL; t && !rc;
		     t = strtok_r(NULL, ":", &save))
			rc = add_dir(l, t);
		free(copy);
	} else {
		rc = add_dir(l, PLUGINDIR);
	}
	if (!rc)
		rc = size_table(l);
	if (rc)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	active = l;
	return SC_OK;
}

char *core_loader_path_text(const struct core_loader *l)
{
	char *s = strdup("");
	for (size_t i = 0; s && i < l->ndirs; i++) {
		struct stat st;
		int missing = stat(l->dirs[i], &st) || !S_ISDIR(st.st_mode);
		char *n = sc_asprintf("%s%s%s%s", s, i ? ", " : "", l->dirs[i],
		                      missing ? " (no such directory)" : "");
		free(s);
		s = n;
	}
	return s;
}

static int valid_base(const char *b, size_t n)
{
	if (n == 0 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)b[i]) || isdigit((unsigned char)b[i]) || b[i] == '_'))
			return 0;
	return 1;
}

static const struct core_plugin *already(const struct core_loader *l, const char *base)
{
	for (size_t i = 0; i < l->n; i++) {
		const char *p = strrchr(l->plugins[i].path, '/');
		if (p && strcmp(p + 1, base) == 0)
			return &l->plugins[i];
	}
	return NULL;
}

static int exists(const char *path, const char *ext)
{
	char *f = sc_asprintf("%s%s", path, ext);
	struct stat st;
	int ok = f && stat(f, &st) == 0 && S_ISREG(st.st_mode);
	free(f);
	return ok;
}

/* The module file's prefix says its kind. */
static const struct {
	const char *prefix, *name;
	enum sc_plugin_kind kind;
} kinds[] = {
    {"action_", "action", SC_PLUGIN_ACTION},
    {"auth_", "auth", SC_PLUGIN_AUTH},
    {"sink_", "sink", SC_PLUGIN_SINK},
    {"support_", "support", SC_PLUGIN_SUPPORT},
};

static enum sc_plugin_kind kind_of_base(const char *base)
{
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (strncmp(base, kinds[i].prefix, strlen(kinds[i].prefix)) == 0)
			return kinds[i].kind;
	return SC_PLUGIN_ACTION;
}

const char *core_plugin_kind_name(enum sc_plugin_kind kind)
{
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (kinds[i].kind == kind)
			return kinds[i].name;
	return "unknown";
}

static int check_descriptor(const struct sc_plugin *d, const char *file, const char *base,
                            struct sc_error *err)
{
	enum sc_plugin_kind want = kind_of_base(base);
	if (d->abi != SC_PLUGIN_ABI)
		return sc_error_set(
		    err, SC_EPLUGIN,
		    "plugin %s was built for plugin ABI %u, but this smtp-connector "
		    "(%s) uses ABI %d: rebuild the plugin against it",
		    file, d->abi, PACKAGE_VERSION, SC_PLUGIN_ABI);
	if (d->kind != want || !d->name || !d->identifier ||
	    (want == SC_PLUGIN_ACTION && (!d->action || !d->action->run)) ||
	    (want == SC_PLUGIN_AUTH && (!d->auth || !d->auth->acquire)) ||
	    (want == SC_PLUGIN_SINK && (!d->sink || !d->sink->start || !d->sink->deliver)) ||
	    (want == SC_PLUGIN_SUPPORT && !d->support))
		return sc_error_set(
		    err, SC_EPLUGIN,
		    "plugin %s has an incomplete descriptor (kind, name, identifier "
		    "or functions missing, or kind does not match the file name)",
		    file);
	return SC_OK;
}

/* Load <dir>/<base>: SC_ESKIP when no such file is in dir. */
static int load_one(struct core_loader *l, const char *dir, const char *base,
                    const struct core_plugin **out, struct sc_error *err)
{
	char *path = sc_asprintf("%s/%s", dir, base);
	if (!path)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	if (!exists(path, ".la") && !exists(path, ".so")) {
		free(path);
		return SC_ESKIP;
	}
	lt_dlhandle h = lt_dlopenext(path);
	if (!h) {
		const char *why = lt_dlerror();
		sc_error_set(
		    err, SC_EPLUGIN,
		    "plugin %s is present but failed to load: %s. Check that its libraries "
		    "resolve with: ldd %s.so (or %s/.libs/%s.so in a build tree)",
		    path, why ? why : "unknown error", path, dir, base);
		free(path);
		return SC_EPLUGIN;
	}
	const struct sc_plugin *d = lt_dlsym(h, SC_PLUGIN_SYMBOL);
	int rc =
	    d ? check_descriptor(d, path, base, err)
	      : sc_error_set(err, SC_EPLUGIN,
	                     "%s is not an smtp-connector plugin: it exports no \"%s\" descriptor",
	                     path, SC_PLUGIN_SYMBOL);
	cJSON *schema = NULL;
	if (!rc && d->schema) {
		schema = cJSON_Parse(d->schema);
		if (!schema)
			rc = sc_error_set(err, SC_EPLUGIN,
			                  "plugin %s carries a schema that is not JSON", path);
		else if ((rc = core_schema_check(schema, err)))
			sc_error_prefix(err, "plugin %s", path);
	}
	if (!rc && l->n == l->cap)
		rc = sc_error_set(
		    err, SC_EPLUGIN,
		    "plugin %s appeared after smtp-connector started (its plugin table "
		    "is sized at start); restart it to load new plugins",
		    path);
	if (rc) {
		cJSON_Delete(schema);
		lt_dlclose(h);
		free(path);
		return rc;
	}
	struct core_plugin *p = &l->plugins[l->n++];
	p->desc = d;
	p->handle = h;
	p->path = path;
	p->schema = schema;
	if (out)
		*out = p;
	sc_log(SC_LOG_DEBUG, "loaded %s plugin \"%s\" from %s", core_plugin_kind_name(d->kind),
	       d->name, path);
	return SC_OK;
}

static int scan_dirs(struct core_loader *l, const char *prefix, int load, char **names,
                     struct base_set *seen, struct sc_error *err)
{
	size_t plen = strlen(prefix);
	for (size_t i = 0; i < l->ndirs; i++) {
		DIR *dh = opendir(l->dirs[i]);
		if (!dh)
			continue;
		struct dirent *e;
		while ((e = readdir(dh))) {
			const char *dot = strrchr(e->d_name, '.');
			if (!dot || strncmp(e->d_name, prefix, plen) ||
			    (strcmp(dot, ".la") && strcmp(dot, ".so")))
				continue;
			size_t n = (size_t)(dot - e->d_name);
			if (!valid_base(e->d_name, n))
				continue;
			char *base = strndup(e->d_name, n);
			if (base && base_seen(seen, base)) {
				free(base);
				continue;
			}
			if (!base || base_add(seen, base)) {
				closedir(dh);
				return sc_error_set(err, SC_ENOMEM, "out of memory");
			}
			if (names) {
				char *t = sc_asprintf("%s%s\"%s\"", *names ? *names : "",
				                      *names ? ", " : "", base + plen);
				free(*names);
				*names = t;
			}
			int rc = SC_OK;
			if (load && !already(l, base))
				rc = load_one(l, l->dirs[i], base, NULL, err);
			if (rc && rc != SC_ESKIP) {
				closedir(dh);
				return rc;
			}
		}
		closedir(dh);
	}
	return SC_OK;
}

/* Names of modules with `prefix` across the path, first directory wins. */
static int scan(struct core_loader *l, const char *prefix, int load, char **names,
                struct sc_error *err)
{
	struct base_set seen = {NULL, 0};
	int rc = scan_dirs(l, prefix, load, names, &seen, err);
	base_set_free(&seen);
	return rc;
}

/* The module <prefix><identifier>: already loaded, or loaded from the
 * first directory of the path that has it. SC_ESKIP when none has it. */
static int find_or_load(struct core_loader *l, const char *prefix, const char *identifier,
                        const struct core_plugin **out, struct sc_error *err)
{
	char *base = sc_asprintf("%s%s", prefix, identifier);
	if (!base)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	int rc = SC_ESKIP;
	const struct core_plugin *p = already(l, base);
	if (p) {
		*out = p;
		rc = SC_OK;
	} else if (valid_base(base, strlen(base))) {
		for (size_t i = 0; i < l->ndirs && rc == SC_ESKIP; i++)
			rc = load_one(l, l->dirs[i], base, out, err);
	}
	free(base);
	return rc;
}

int core_loader_action(struct core_loader *l, const char *identifier,
                       const struct core_plugin **out, struct sc_error *err)
{
	int rc = find_or_load(l, "action_", identifier, out, err);
	if (rc != SC_ESKIP)
		return rc;
	char *names = NULL, *path = core_loader_path_text(l);
	scan(l, "action_", 0, &names, NULL);
	char *any = NULL;
	scan(l, "auth_", 0, &any, NULL);
	if (!names && !any)
		rc = sc_error_set(
		    err, SC_EPLUGIN,
		    "no plugins found; looked in: %s. Point --plugin-dir or "
		    "SMTP_CONNECTOR_PLUGIN_PATH at the directory holding action_*.so and auth_*.so",
		    path ? path : "");
	else
		rc = sc_error_set(
		    err, SC_EINPUT,
		    "action: unknown action \"%s\"; installed actions: %s (looked in: %s)",
		    identifier, names ? names : "none", path ? path : "");
	free(names);
	free(any);
	free(path);
	return rc;
}

int core_loader_sink(struct core_loader *l, const char *identifier, const struct core_plugin **out,
                     struct sc_error *err)
{
	int rc = find_or_load(l, "sink_", identifier, out, err);
	if (rc != SC_ESKIP)
		return rc;
	char *names = NULL, *path = core_loader_path_text(l);
	scan(l, "sink_", 0, &names, NULL);
	rc = sc_error_set(
	    err, SC_EINPUT,
	    "delivery.plugin: unknown delivery plugin \"%s\"; installed: %s (looked in: %s)",
	    identifier, names ? names : "none", path ? path : "");
	free(names);
	free(path);
	return rc;
}

int core_loader_support(struct core_loader *l, const char *identifier,
                        const struct core_plugin **out, struct sc_error *err)
{
	int rc = find_or_load(l, "support_", identifier, out, err);
	if (rc != SC_ESKIP)
		return rc;
	char *path = core_loader_path_text(l);
	rc = sc_error_set(err, SC_EPLUGIN,
	                  "support module support_%s is not installed (looked in: %s); reinstall "
	                  "smtp-connector, or point --plugin-dir at the directory that holds it",
	                  identifier, path ? path : "");
	free(path);
	return rc;
}

const void *sc_support_load(const char *identifier, struct sc_error *err)
{
	if (!active) {
		sc_error_set(err, SC_EPLUGIN, "support module %s: no plugin loader is running",
		             identifier);
		return NULL;
	}
	const struct core_plugin *p = NULL;
	if (core_loader_support(active, identifier, &p, err))
		return NULL;
	return p->desc->support;
}

int core_loader_auth_all(struct core_loader *l, struct sc_error *err)
{
	if (l->scanned_auth)
		return SC_OK;
	int rc = scan(l, "auth_", 1, NULL, err);
	if (!rc)
		l->scanned_auth = 1;
	return rc;
}

int core_loader_all(struct core_loader *l, struct sc_error *err)
{
	int rc = core_loader_auth_all(l, err);
	if (!rc && !l->scanned_all) {
		rc = scan(l, "action_", 1, NULL, err);
		if (!rc)
			rc = scan(l, "sink_", 1, NULL, err);
		if (!rc)
			rc = scan(l, "support_", 1, NULL, err);
		l->scanned_all = !rc;
	}
	return rc;
}

const struct core_plugin *core_loader_find_auth(const struct core_loader *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->plugins[i].desc->kind == SC_PLUGIN_AUTH &&
		    strcasecmp(l->plugins[i].desc->name, name) == 0)
			return &l->plugins[i];
	return NULL;
}

void core_loader_release(struct core_loader *l)
{
	/* Sanitizer builds keep modules mapped so leak reports can name
	 * the plugin's functions. */
	int keep = getenv("SMTP_CONNECTOR_KEEP_MODULES") != NULL;
	for (size_t i = l->n; i-- > 0;) {
		if (!keep)
			lt_dlclose(l->plugins[i].handle);
		cJSON_Delete(l->plugins[i].schema);
		free(l->plugins[i].path);
	}
	free(l->plugins);
	for (size_t i = 0; i < l->ndirs; i++)
		free(l->dirs[i]);
	free(l->dirs);
	lt_dlexit();
	if (active == l)
		active = NULL;
	memset(l, 0, sizeof *l);
}
