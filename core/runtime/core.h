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

/* The whole program; main() only calls this. Exported (sc_ prefix) so
 * that the executable can reach it in libsmtp-connector. */
int sc_connector_main(int argc, char **argv);

/* Exit statuses (interface.md §7). */
enum core_exit { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_UNUSABLE = 2, EXIT_CANNOT_RUN = 3 };

#endif
