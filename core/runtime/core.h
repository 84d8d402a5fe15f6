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

/* ------------------------------------------------------------------ */
/* Host functions the core shares among its own files but does not      */
/* export: no plugin uses them, and the public headers are the whole     */
/* contract (libsmtp-connector exports exactly what they declare). They  */
/* keep their sc_ names so that the tree, being edited on several        */
/* branches at once, needs no rename; errors as in plugin.h.            */
/* ------------------------------------------------------------------ */

/* Short stable name of a code ("input", "tls", ...), for results. */
const char *sc_code_name(enum sc_code code);

/* The asset object as given (validated against the asset schema). */
const cJSON *sc_asset(const struct sc_ctx *ctx);

/* A numeric asset field, or `dflt` when absent. */
long sc_asset_long(const struct sc_ctx *ctx, const char *key, long dflt);

/* Request envelope fields: "asset_id", "vault_dir"; NULL when absent. */
const char *sc_request_string(const struct sc_ctx *ctx, const char *key);

/* The action's display name ("send email"). */
const char *sc_action_name(const struct sc_ctx *ctx);

/* The "summary" object of this action_result. */
cJSON *sc_result_summary(struct sc_result *r);

/* A display name as a phrase: atoms as is, else a quoted string, or
 * encoded words when non-ASCII and !utf8_ok, or when it holds text that
 * looks like an encoded word (decoders look inside quoted strings too). */
char *sc_header_encode_phrase(const char *phrase, int utf8_ok);

/* A MIME parameter: `param="value"` when ASCII (quoted, escaped) and
 * free of "=?", or the RFC 2231 form `param*=utf-8''%E2%82%AC...` split
 * into `param*0*=`... continuations when long. The result may contain
 * CRLF SP folds; sections are sized for a line of their own, so put a
 * long one after ";" CRLF SP. */
char *sc_mime_param_encode(const char *param, const char *value);

/* The transfer encoding a text body needs so no wire line passes 998
 * octets: "7bit" (ASCII, CRLF line ends only, short lines),
 * "quoted-printable" (mostly ASCII) or "base64". */
const char *sc_body_encoding(const char *text, size_t len);

/* Encode `len` bytes as base64 in 76-column CRLF lines (OpenSSL). */
char *sc_base64_lines(const unsigned char *data, size_t len, size_t *outlen);

/* Quoted-printable (RFC 2045), CRLF line breaks, lines <= 76. */
char *sc_qp_encode(const char *data, size_t len, size_t *outlen);

/* The current value of a header, or NULL. */
const char *sc_message_header_get(const struct sc_message *m, const char *name);

/* Remove a header (all of that name). */
void sc_message_header_remove(struct sc_message *m, const char *name);

/* Whether the server offered an ESMTP extension ("SMTPUTF8", "8BITMIME",
 * "SIZE", "STARTTLS"); ASCII case-insensitive. */
int sc_session_offers(const struct sc_session *s, const char *ext);

struct sc_refusal {
	char *addr;
	char *reply; /* server reply verbatim, e.g. "550 5.1.1 <x>: unknown" */
};

struct sc_delivery {
	char **accepted;
	size_t naccepted;
	struct sc_refusal *refused;
	size_t nrefused;
	char *reply; /* final reply to the end of DATA, verbatim */
};

/* Send `m` to the envelope. Accepted recipients get the mail even when
 * others are refused (listed in `out`); all refused is SC_ESEND.
 * SMTPUTF8 is requested only when needs_smtputf8; a server that cannot
 * carry the message is SC_ESEND naming the address or the reason, sent
 * before MAIL FROM. `out` is filled on success and on SC_ESEND. */
int sc_session_send(struct sc_session *s, const struct sc_envelope *env, struct sc_message *m,
                    struct sc_delivery *out, struct sc_error *err);
void sc_delivery_free(struct sc_delivery *d);

/* "a@x (550 5.1.1 ...); b@y (...)" for messages; NULL when none. */
char *sc_delivery_refused_text(const struct sc_delivery *d);
/* Put accepted/refused/smtp_reply/auth of a delivery into the result's
 * data object, and set the SOAR message: "Email sent", or "Email sent to
 * N of M recipients; refused: ..." when some were refused. */
void sc_delivery_report(const struct sc_session *s, const struct sc_delivery *d,
                        struct sc_result *r);

/* ------------------------------------------------------------------ */

/* Allocated vprintf; NULL on allocation failure (sc_asprintf in plugin.h
 * is the printf form). */
char *core_vasprintf(const char *fmt, va_list ap) SC_PRINTF(1, 0);

void core_log_set_verbose(int v);
/* Write a+b, then fmt's text, and a line end to stderr in one write():
 * sc_log's and serve's one-line logs. */
void core_log_line(const char *a, const char *b, const char *fmt, va_list ap) SC_PRINTF(3, 0);

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
