/* Diagnostics go to stderr only: stdout is reserved for result JSON,
 * which a platform parses. */
#include "core.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int log_verbosity; /* 0: warnings and errors, 1: -v */

void core_log_set_verbose(int v)
{
	log_verbosity = v;
}

int sc_verbose(void)
{
	return log_verbosity > 0;
}

/* Straight to fd 2, not through stdio: fwrite() on stderr takes the
 * FILE's lock, which serve's threads (eight lines per message) then
 * queue on. A failure has nowhere else to be said. errno is kept, so a
 * caller can log and then report it. */
static void write_line(const char *p, size_t n)
{
	int saved = errno;
	(void)sc_write_all(STDERR_FILENO, p, n);
	errno = saved;
}

void core_log_line(const char *a, const char *b, const char *fmt, va_list ap)
{
	/* One line, one write: serve's threads never mix their lines.
	 * Formatted on the stack when it fits (nearly every line: several per
	 * message in serve), else allocated. */
	char buf[512];
	va_list aq;
	va_copy(aq, ap);
	int n = snprintf(buf, sizeof buf, "%s%s", a, b);
	int m = n < 0 || (size_t)n >= sizeof buf
	            ? -1
	            : vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, aq);
	va_end(aq);
	if (m >= 0 && (size_t)n + (size_t)m + 1 < sizeof buf) {
		buf[n + m] = '\n';
		write_line(buf, (size_t)n + (size_t)m + 1);
		return;
	}
	char *t = core_vasprintf(fmt, ap);
	char *line = sc_asprintf("%s%s%s\n", a, b, t ? t : "(out of memory)");
	if (line)
		write_line(line, strlen(line));
	free(line);
	free(t);
}

void sc_log(enum sc_log_level level, const char *fmt, ...)
{
	static const char *const tag[] = {"smtp-connector: error: ", "smtp-connector: warning: ",
	                                  "smtp-connector: info: ", "smtp-connector: debug: "};
	if (level == SC_LOG_DEBUG && log_verbosity < 1)
		return;
	va_list ap;
	va_start(ap, fmt);
	core_log_line(tag[level], "", fmt, ap);
	va_end(ap);
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
