/* Finding and loading plugins with libltdl (interface.md §8). */
#ifndef SC_LOADER_H
#define SC_LOADER_H

#include "core.h"
#include <ltdl.h>

struct core_plugin {
	const struct sc_plugin *desc;
	lt_dlhandle handle;
	char *path;    /* absolute path without extension */
	cJSON *schema; /* parsed desc->schema, or NULL */
};

struct core_loader {
	char **dirs; /* absolute search path, in precedence order */
	size_t ndirs;
	struct core_plugin *plugins; /* loaded, in load order; sized once at
	                              * init and never moved (entries are pointed to) */
	size_t n, cap;
	int scanned_auth, scanned_all;
};

/* The search path, stated once: --plugin-dir (repeatable) wins; else
 * SMTP_CONNECTOR_PLUGIN_PATH (colon-separated); else PLUGINDIR. Relative
 * directories are made absolute: libltdl would resolve them against the
 * working directory. */
int core_loader_init(struct core_loader *l, char **cli_dirs, size_t ncli, struct sc_error *err);
/* Load action_<identifier>. SC_EINPUT when no such module exists (the
 * message lists the actions that do), SC_EPLUGIN when it exists but
 * cannot be used. */
int core_loader_action(struct core_loader *l, const char *identifier,
                       const struct core_plugin **out, struct sc_error *err);
/* Load sink_<identifier> (serve's delivery plugins). SC_EINPUT when no
 * such module exists (the message lists those that do), SC_EPLUGIN when
 * it exists but cannot be used. */
int core_loader_sink(struct core_loader *l, const char *identifier, const struct core_plugin **out,
                     struct sc_error *err);
/* Load support_<identifier> (a module plugins share; sc_support_load).
 * SC_EPLUGIN when it is not on the path or cannot be used. */
int core_loader_support(struct core_loader *l, const char *identifier,
                        const struct core_plugin **out, struct sc_error *err);
/* "action", "auth", "sink", "support". */
const char *core_plugin_kind_name(enum sc_plugin_kind kind);
/* Load every auth_* module on the path (once). */
int core_loader_auth_all(struct core_loader *l, struct sc_error *err);
/* The loaded auth plugin called `name` (case-insensitive), or NULL. */
const struct core_plugin *core_loader_find_auth(const struct core_loader *l, const char *name);
/* Load every module (for --list). */
int core_loader_all(struct core_loader *l, struct sc_error *err);
/* "dir1, dir2" for messages. */
char *core_loader_path_text(const struct core_loader *l);
/* Unload in reverse order, then lt_dlexit. */
void core_loader_release(struct core_loader *l);

#endif
