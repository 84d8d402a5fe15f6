/* Diagnostics go to stderr only: stdout is reserved for result JSON,
 * which a platform parses. */
#include "core.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int log_verbosity; /* 0: warnings and errors, 1: -v */

void core_log_set_verbose(int v)
{
	log_verbosity = v;
}

int sc_verbose(void)
{
	return log_verbosity > 0;
}

void sc_log(enum sc_log_level level, const char *fmt, ...)
{
	static const char *const tag[] = {"error", "warning", "info", "debug"};
	if (level == SC_LOG_DEBUG && log_verbosity < 1)
		return;
	/* one write per line: serve's threads never mix their lines; on the
	 * stack when it fits (once per POST in serve's spool mode) */
	char buf[512];
	va_list ap;
	int n = snprintf(buf, sizeof buf, "smtp-connector: %s: ", tag[level]);
	va_start(ap, fmt);
	int m = vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
	va_end(ap);
	if (m >= 0 && (size_t)n + (size_t)m + 1 < sizeof buf) {
		buf[n + m] = '\n';
		fwrite(buf, 1, (size_t)n + (size_t)m + 1, stderr);
		return;
	}
	va_start(ap, fmt);
	char *t = core_vasprintf(fmt, ap);
	va_end(ap);
	char *line = sc_asprintf("smtp-connector: %s: %s\n", tag[level], t ? t : "(out of memory)");
	if (line)
		fputs(line, stderr);
	free(line);
	free(t);
}

void sc_secret_wipe(void *p, size_t len)
{
	if (p && len)
		OPENSSL_cleanse(p, len);
}

void sc_secret_free(char *secret)
{
	if (!secret)
		return;
	OPENSSL_cleanse(secret, strlen(secret));
	free(secret);
}
