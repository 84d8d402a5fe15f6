/* Internal header of the runtime (core/). Plugins never include this:
 * they see <smtp-connector/plugin.h> and <smtp-connector/message.h>. */
#ifndef SC_CORE_H
#define SC_CORE_H

#include <stdarg.h>
#include <stddef.h>

#include <smtp-connector/plugin.h>
#include <smtp-connector/message.h>

/* Allocated printf; NULL on allocation failure. */
char *core_vasprintf(const char *fmt, va_list ap);
char *core_asprintf(const char *fmt, ...) SC_PRINTF(1, 2);

void core_log_set_verbose(int v);

#endif
