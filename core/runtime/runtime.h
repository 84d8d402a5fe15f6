/* The runtime's entry points, one per subcommand of the command line
 * (core/main.c parses it and calls these). libsmtp-connector exports
 * them (core_*_main) next to the host API, so that the executable is
 * main.c alone. Each returns the process exit status (enum core_exit). */
#ifndef SC_RUNTIME_H
#define SC_RUNTIME_H

#include "core.h"

/* What the global options say. Strings are borrowed from argv. */
struct core_options {
	char **plugin_dirs; /* --plugin-dir, in order; NULL-terminated */
	size_t nplugin_dirs;
	const char *state_dir;   /* --state-dir, or NULL */
	const char *secrets_dir; /* --secrets-dir, or NULL */
	int verbose;             /* -v */
};

enum core_mode {
	CORE_RUN,      /* run the requests on stdin */
	CORE_AUTHORIZE /* `authorize`: set up each request's asset (OAuth) */
};

/* Read requests from stdin, one at a time, and print one result line for
 * each. The worst status over all requests. */
int core_requests_main(const struct core_options *o, enum core_mode mode);
/* `--list`: the plugins, their schemas and the asset schema as JSON. */
int core_list_main(const struct core_options *o);
/* `serve`: the inbound SMTP listener (core/serve/cli.c, doc/serve.md),
 * with the arguments after "serve" (argv[0] is "serve"). */
int core_serve_main(int argc, char **argv);
/* `verify`: check the X-SMTP-Connector-Signature of the message on stdin
 * (core/runtime/verify.c, doc/signatures.md); argv[0] is "verify". 0
 * valid, 1 invalid, 2 usage error or no key. */
int core_verify_main(int argc, char **argv);
/* A failure before any request was read (a bad option): a failed result
 * with `msg` on stdout, `msg` on stderr, and the status for `code`. */
int core_fail_main(enum sc_code code, const char *msg);

#endif
