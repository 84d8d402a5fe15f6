/* smtp-connector's command line: global options, then an optional
 * subcommand, dispatched to the runtime's entry point for it
 * (core/runtime/runtime.h). Nothing here touches a request. */
#include "runtime.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "Usage: smtp-connector [OPTIONS] < request.json > result.json\n"
    "       smtp-connector [OPTIONS] authorize < request.json\n"
    "       smtp-connector verify [--secret-key-file FILE] < message.eml\n"
    "       smtp-connector --list\n"
    "       smtp-connector serve [--url URL | --maildir DIR] [--config FILE] ... (see serve "
    "--help)\n"
    "\n"
    "Runs SOAR e-mail actions (test connectivity, send email, send htmlemail,\n"
    "send rawemail) described by JSON requests on stdin; one JSON result line\n"
    "per request on stdout; diagnostics on stderr.\n"
    "\n"
    "  --plugin-dir DIR   look for plugins in DIR (repeatable; wins over\n"
    "                     SMTP_CONNECTOR_PLUGIN_PATH and the built-in " PLUGINDIR ")\n"
    "  --state-dir DIR    OAuth tokens and throttle state (or SMTP_CONNECTOR_STATE_DIR;\n"
    "                     default $XDG_STATE_HOME/smtp-connector or "
    "~/.local/state/smtp-connector)\n"
    "  --secrets-dir DIR  named secrets (\"secret\": \"NAME\" loads DIR/NAME.json; default\n"
    "                     $XDG_CONFIG_HOME/smtp-connector/secrets or\n"
    "                     ~/.config/smtp-connector/secrets)\n"
    "  -v, --verbose      progress and the SMTP transcript on stderr, secrets redacted\n"
    "  --list             print the installed actions and auth plugins with their schemas\n"
    "  --version          print the version\n"
    "  --help             print this help\n"
    "\n"
    "verify: checks the X-SMTP-Connector-Signature (secret_key) of a message;\n"
    "the key from --secret-key-file FILE or SMTP_CONNECTOR_SECRET_KEY.\n"
    "\n"
    "authorize: prints the OAuth consent URL on stderr and waits (5 minutes, or\n"
    "SMTP_CONNECTOR_AUTHORIZE_TIMEOUT seconds) for the redirect on a loopback\n"
    "listener; paste the redirected URL on the terminal, or finish from another\n"
    "run with SMTP_CONNECTOR_REDIRECT_URL=<url>, when the browser cannot reach it.\n"
    "\n"
    "Exit status: 0 all succeeded, 1 an action failed, 2 unusable request,\n"
    "3 the connector cannot run (no plugins, wrong plugin ABI).\n";

/* What the global options asked for besides core_options. */
enum cli_action { CLI_RUN, CLI_LIST, CLI_VERSION, CLI_HELP, CLI_BAD };

/* Global options of argv[0..argc), which may stand before and after the
 * subcommand (`authorize -v`). Stops at the first argument that is not an
 * option: *next is its index. */
static enum cli_action parse_options(int argc, char **argv, struct core_options *o, int *next)
{
	static const struct option opts[] = {{"plugin-dir", required_argument, NULL, 'p'},
	                                     {"state-dir", required_argument, NULL, 's'},
	                                     {"secrets-dir", required_argument, NULL, 'S'},
	                                     {"verbose", no_argument, NULL, 'v'},
	                                     {"list", no_argument, NULL, 'l'},
	                                     {"version", no_argument, NULL, 'V'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	enum cli_action act = CLI_RUN;
	int c;
	optind = 0; /* GNU: start afresh (this runs once per argument list) */
	while ((c = getopt_long(argc, argv, "+v", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			o->plugin_dirs[o->nplugin_dirs++] = optarg;
			break;
		case 's':
			o->state_dir = optarg;
			break;
		case 'S':
			o->secrets_dir = optarg;
			break;
		case 'v':
			o->verbose = 1;
			break;
		case 'l':
			act = CLI_LIST;
			break;
		case 'V':
			return CLI_VERSION;
		case 'h':
			return CLI_HELP;
		default:
			return CLI_BAD;
		}
	}
	*next = optind;
	return act;
}

/* The subcommands: the name after the global options, and what runs it
 * with the arguments that follow (argv[0] is the name). */
static int cmd_authorize(struct core_options *o, int argc, char **argv);
static int cmd_serve(struct core_options *o, int argc, char **argv);
static int cmd_verify(struct core_options *o, int argc, char **argv);

static const struct subcommand {
	const char *name;
	int (*run)(struct core_options *o, int argc, char **argv);
} subcommands[] = {
    {"authorize", cmd_authorize},
    {"serve", cmd_serve},
    {"verify", cmd_verify},
};

static int bad_usage(const char *msg)
{
	fputs(usage_text, stderr);
	return core_fail_main(SC_EINPUT, msg);
}

static int cmd_authorize(struct core_options *o, int argc, char **argv)
{
	int next;
	if (parse_options(argc, argv, o, &next) != CLI_RUN)
		return bad_usage("authorize takes -v, --plugin-dir and --state-dir only; see "
		                 "smtp-connector --help");
	if (next < argc)
		return bad_usage("authorize takes no arguments; the request comes on stdin");
	return core_requests_main(o, CORE_AUTHORIZE);
}

/* serve (core/serve/) parses its own options after "serve": smtp-pigeon's
 * flags, --config, --plugin-dir. */
static int cmd_serve(struct core_options *o, int argc, char **argv)
{
	(void)o;
	return core_serve_main(argc, argv);
}

/* verify (core/runtime/verify.c): a message's signature; the key from
 * --secret-key-file or SMTP_CONNECTOR_SECRET_KEY, never from argv. */
static int cmd_verify(struct core_options *o, int argc, char **argv)
{
	(void)o;
	return core_verify_main(argc, argv);
}

static int dispatch(struct core_options *o, int argc, char **argv)
{
	for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
		if (strcmp(argv[0], subcommands[i].name) == 0)
			return subcommands[i].run(o, argc, argv);
	char *msg =
	    sc_asprintf("unknown command \"%s\"; the commands are: authorize, serve, verify "
	                "(or none, to run the requests on stdin); see --help",
	                argv[0]);
	int status = bad_usage(msg ? msg : "unknown command; see --help");
	free(msg);
	return status;
}

int main(int argc, char **argv)
{
	struct core_options o;
	memset(&o, 0, sizeof o);
	o.plugin_dirs = calloc((size_t)argc + 1, sizeof *o.plugin_dirs);
	if (!o.plugin_dirs)
		return core_fail_main(SC_ENOMEM, "out of memory");
	int next, status;
	switch (parse_options(argc, argv, &o, &next)) {
	case CLI_VERSION:
		printf("smtp-connector %s (plugin ABI %d)\n", PACKAGE_VERSION, SC_PLUGIN_ABI);
		status = EXIT_OK;
		break;
	case CLI_HELP:
		fputs(usage_text, stdout);
		status = EXIT_OK;
		break;
	case CLI_BAD:
		status = bad_usage("unknown command-line option; see smtp-connector --help");
		break;
	case CLI_LIST:
		status = next < argc ? bad_usage("--list takes no command") : core_list_main(&o);
		break;
	case CLI_RUN:
	default:
		status = next < argc ? dispatch(&o, argc - next, argv + next)
		                     : core_requests_main(&o, CORE_RUN);
		break;
	}
	free(o.plugin_dirs);
	return status;
}
