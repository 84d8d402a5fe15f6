/* The one error contract (see <smtp-connector/plugin.h>): codes, their
 * names, and allocated messages. Messages are built with vsnprintf into an
 * exact-size allocation, never a fixed buffer, because they quote server
 * replies and user input of any length. */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *core_vasprintf(const char *fmt, va_list ap)
{
	/* One formatting pass when the text is short (log lines, replies,
	 * paths: most of them), the second only when it is not. The copy on
	 * the stack is wiped: a caller may be formatting a secret. */
	char tmp[256];
	va_list aq;
	va_copy(aq, ap);
	int n = vsnprintf(tmp, sizeof tmp, fmt, aq);
	va_end(aq);
	size_t used = n < 0 ? 0 : (size_t)n < sizeof tmp ? (size_t)n + 1 : sizeof tmp;
	char *s = n < 0 ? NULL : malloc((size_t)n + 1);
	if (s && (size_t)n < sizeof tmp)
		memcpy(s, tmp, (size_t)n + 1);
	else if (s)
		vsnprintf(s, (size_t)n + 1, fmt, ap);
	sc_secret_wipe(tmp, used);
	return s;
}

char *sc_asprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = core_vasprintf(fmt, ap);
	va_end(ap);
	return s;
}

int sc_error_set(struct sc_error *err, enum sc_code code, const char *fmt, ...)
{
	if (!err)
		return code;
	va_list ap;
	va_start(ap, fmt);
	char *msg = core_vasprintf(fmt, ap);
	va_end(ap);
	free(err->message);
	err->code = code;
	err->message = msg;
	return code;
}

void sc_error_prefix(struct sc_error *err, const char *fmt, ...)
{
	if (!err || err->code == SC_OK)
		return;
	va_list ap;
	va_start(ap, fmt);
	char *pre = core_vasprintf(fmt, ap);
	va_end(ap);
	if (!pre)
		return;
	char *msg = sc_asprintf("%s: %s", pre, err->message ? err->message : "unknown error");
	free(pre);
	if (msg) {
		free(err->message);
		err->message = msg;
	}
}

void sc_error_clear(struct sc_error *err)
{
	if (!err)
		return;
	free(err->message);
	err->message = NULL;
	err->code = SC_OK;
}

const char *sc_code_name(enum sc_code code)
{
	switch (code) {
	case SC_OK:
		return "ok";
	case SC_EINPUT:
		return "input";
	case SC_ESKIP:
		return "skipped";
	case SC_ECONNECT:
		return "connect";
	case SC_ETLS:
		return "tls";
	case SC_EAUTH:
		return "auth";
	case SC_ESEND:
		return "send";
	case SC_EPROTO:
		return "protocol";
	case SC_EIO:
		return "io";
	case SC_ENOMEM:
		return "memory";
	case SC_EPLUGIN:
		return "plugin";
	case SC_EINTERNAL:
		return "internal";
	case SC_ETHROTTLED:
		return "throttled";
	case SC_PENDING:
		return "pending";
	}
	return "unknown";
}

int core_exit_status(enum sc_code code)
{
	switch (code) {
	case SC_OK:
		return EXIT_OK;
	case SC_EINPUT:
		return EXIT_UNUSABLE;
	case SC_EPLUGIN:
	case SC_EINTERNAL:
		return EXIT_CANNOT_RUN;
	case SC_ESKIP:
	case SC_ECONNECT:
	case SC_ETLS:
	case SC_EAUTH:
	case SC_ESEND:
	case SC_EPROTO:
	case SC_EIO:
	case SC_ENOMEM:
	case SC_ETHROTTLED:
		return EXIT_FAILED;
	case SC_PENDING:
		return EXIT_OK; /* the result's own status decides, when it ends */
	}
	return EXIT_FAILED;
}
