/* `smtp-connector verify < message.eml`: checks the message's
 * X-SMTP-Connector-Signature (core/message/signature.c, the one
 * implementation serve's require_signature uses too). The key comes from
 * --secret-key-file or SMTP_CONNECTOR_SECRET_KEY, never from the command
 * line, where every user of the machine can read it (ps, /proc). */
#include "runtime.h"
#include "signature.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char verify_usage[] =
    "Usage: smtp-connector verify [--secret-key-file FILE] < message.eml\n"
    "\n"
    "Checks the X-SMTP-Connector-Signature of the message on stdin (v=2, and\n"
    "v=1 of earlier versions) with the sender's secret_key, read from FILE\n"
    "(mode 0600) or from the environment variable " SIG_KEY_ENV ".\n"
    "Prints \"valid: ...\" and exits 0, or \"invalid: <what failed>\" and exits 1;\n"
    "exit status 2 for a usage error or no key.\n";

static int usage_error(const char *msg)
{
	fprintf(stderr, "smtp-connector verify: %s\n%s", msg, verify_usage);
	return EXIT_UNUSABLE;
}

/* By hand, not getopt_long: it takes abbreviations, and "--secret-key
 * VALUE" would become --secret-key-file with the key as the file name
 * (and the key in the error message). */
int core_verify_main(int argc, char **argv)
{
	const char *file = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(verify_usage, stdout);
			return EXIT_OK;
		} else if (!strcmp(a, "--secret-key-file") && i + 1 < argc) {
			file = argv[++i];
		} else if (!strncmp(a, "--secret-key-file=", 18) && a[18]) {
			file = a + 18;
		} else if (!strcmp(a, "--secret-key-file")) {
			return usage_error("--secret-key-file needs a file name");
		} else if (a[0] == '-' && strstr(a, "key")) {
			return usage_error(
			    "the key is never taken on the command line (any user can "
			    "read it there): use --secret-key-file FILE or the "
			    "environment variable " SIG_KEY_ENV);
		} else if (a[0] == '-') {
			return usage_error(
			    "unknown option; verify takes --secret-key-file FILE only");
		} else {
			return usage_error("the message comes on stdin: give no file name "
			                   "(smtp-connector verify < message.eml)");
		}
	}
	if (isatty(STDIN_FILENO))
		return usage_error("stdin is a terminal: redirect the message to it");
	char *key = NULL;
	struct sc_error err = {0};
	if (sig_key_load(file, &key, &err)) {
		int st = usage_error(err.message ? err.message : "no key");
		sc_error_clear(&err);
		return st;
	}
	struct sig_verdict v;
	sig_verify_fd(STDIN_FILENO, key, &v);
	sc_secret_free(key);
	if (v.status == SIG_VALID) {
		printf("%s\n", v.reason);
		return EXIT_OK;
	}
	printf("invalid: %s\n", v.reason);
	return EXIT_FAILED;
}
