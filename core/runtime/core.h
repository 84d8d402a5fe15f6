/* Internal header of the runtime (core/). Plugins never include this:
 * they see <smtp-connector/plugin.h> and <smtp-connector/message.h>. */
#ifndef SC_CORE_H
#define SC_CORE_H

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "dev"
#endif

#include <stdarg.h>
#include <stddef.h>

#include <smtp-connector/plugin.h>
#include <smtp-connector/message.h>
#include <smtp-connector/sink.h>
#include <smtp-connector/template.h>

/* Allocated vprintf; NULL on allocation failure (sc_asprintf in plugin.h
 * is the printf form). */
char *core_vasprintf(const char *fmt, va_list ap) SC_PRINTF(1, 0);

void core_log_set_verbose(int v);

/* ctx.c: lower-case hex SHA-256 of data; 0 or -1. */
int core_sha256_hex(const char *data, size_t len, char out[65]);

/* http.c: the asset's TLS verification rules on an easy handle. */
int core_tls_policy(const struct sc_ctx *ctx, void *curl, struct sc_error *err);

/* Exit statuses (interface.md §7). */
enum core_exit { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_UNUSABLE = 2, EXIT_CANNOT_RUN = 3 };

/* error.c: the one map from error codes to exit statuses, for a request
 * (or the whole run) that stopped with `code` outside an action: SC_OK 0,
 * SC_EINPUT 2 (unusable request), SC_EPLUGIN and SC_EINTERNAL 3 (the
 * connector cannot run), any other code 1. A failed action is always 1. */
int core_exit_status(enum sc_code code);

#endif
