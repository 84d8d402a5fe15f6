/*
 * smtp-connector plugin interface: the only header a plugin includes
 * (with <smtp-connector/message.h> for plugins that build mail).
 *
 * A plugin is a libtool module that exports exactly one symbol,
 * `sc_plugin`, a const struct sc_plugin.  The runtime reads `abi` before
 * anything else and refuses a module whose ABI differs from SC_PLUGIN_ABI.
 *
 * Plugins link against libsmtp-connector (pkg-config: smtp-connector),
 * which provides every sc_* function below.
 *
 * Ownership, once for the whole API:
 *  - `const` pointers handed to a plugin stay owned by the runtime and are
 *    valid until the plugin function returns.
 *  - Strings passed *into* sc_* functions are copied; the caller may free
 *    or wipe them right after the call (do wipe secrets).
 *  - A `char *` returned by an sc_* function is the caller's, to free().
 *
 * Error contract, once for the whole API: functions return an enum
 * sc_code (SC_OK = 0).  On failure, when they take a struct sc_error *,
 * they fill it with a code and an allocated, human message that says what
 * failed and what to do; on success they leave it untouched.
 */
#ifndef SMTP_CONNECTOR_PLUGIN_H
#define SMTP_CONNECTOR_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bump on any incompatible change to this header or message.h. */
#define SC_PLUGIN_ABI 2
/* The symbol every module exports. */
#define SC_PLUGIN_SYMBOL "sc_plugin"

#if defined(__GNUC__)
#define SC_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SC_PRINTF(f, a)
#endif

/* ------------------------------------------------------------------ */
/* Errors                                                               */
/* ------------------------------------------------------------------ */

enum sc_code {
	SC_OK = 0,
	SC_EINPUT,     /* a request, asset or parameter value is unusable */
	SC_ESKIP,      /* auth: method not applicable (missing fields, no token) */
	SC_ECONNECT,   /* DNS, TCP connect, no greeting within the timeout */
	SC_ETLS,       /* TLS handshake, certificate, STARTTLS not offered */
	SC_EAUTH,      /* authentication refused or impossible */
	SC_ESEND,      /* server refused MAIL FROM, every RCPT, or DATA */
	SC_EPROTO,     /* server broke off or timed out mid-session */
	SC_EIO,        /* a local file: vault item, token store, state dir */
	SC_ENOMEM,
	SC_EPLUGIN,    /* plugin missing, unloadable or of another ABI */
	SC_EINTERNAL
};

struct sc_error {
	enum sc_code code;
	char *message; /* allocated; NULL while code == SC_OK */
};

#define SC_ERROR_INIT { SC_OK, NULL }

/* Replace err's content (freeing an earlier message); returns `code` so
 * that `return sc_error_set(err, SC_EINPUT, "...")` reads naturally. */
int sc_error_set(struct sc_error *err, enum sc_code code, const char *fmt, ...)
	SC_PRINTF(3, 4);
/* Prefix the existing message: "<prefix>: <old message>". */
void sc_error_prefix(struct sc_error *err, const char *fmt, ...) SC_PRINTF(2, 3);
void sc_error_clear(struct sc_error *err);
/* An allocated printf result (free() it), or NULL when out of memory:
 * messages quote server replies and user input of any length. */
char *sc_asprintf(const char *fmt, ...) SC_PRINTF(1, 2);
/* Short stable name of a code ("input", "tls", ...), for results. */
const char *sc_code_name(enum sc_code code);

/* ------------------------------------------------------------------ */
/* Growable buffer: the one byte buffer of the whole tree.              */
/* ------------------------------------------------------------------ */

/* Always NUL-terminated once anything was added (p may be NULL while
 * empty); `len` excludes the NUL, so binary data with NULs is fine.
 * Zero-initialise ({0}) to start. */
struct sc_buf {
	char *p;
	size_t len, cap;
};

/* Append n bytes. SC_OK, or SC_ENOMEM (b unchanged). */
int sc_buf_add(struct sc_buf *b, const void *data, size_t n);
/* Append a NUL-terminated string. SC_OK or SC_ENOMEM. */
int sc_buf_str(struct sc_buf *b, const char *s);
/* Append printf output. SC_OK or SC_ENOMEM. */
int sc_buf_printf(struct sc_buf *b, const char *fmt, ...) SC_PRINTF(2, 3);
/* Take the contents (a NUL-terminated string the caller frees; "" when
 * empty, NULL only when out of memory); b is left empty. */
char *sc_buf_take(struct sc_buf *b);
/* Free the contents and empty b. */
void sc_buf_free(struct sc_buf *b);
/* Wipe (secrets), free and empty b. */
void sc_buf_wipe(struct sc_buf *b);

/* ------------------------------------------------------------------ */
/* Logging (stderr; never stdout).                                      */
/* ------------------------------------------------------------------ */

enum sc_log_level { SC_LOG_ERROR, SC_LOG_WARN, SC_LOG_INFO, SC_LOG_DEBUG };

void sc_log(enum sc_log_level level, const char *fmt, ...) SC_PRINTF(2, 3);
/* True when -v was given: worth building expensive debug text. */
int sc_verbose(void);

/* Overwrite then free a secret (OPENSSL_cleanse). NULL is fine. */
void sc_secret_free(char *secret);
void sc_secret_wipe(void *p, size_t len);

/* ------------------------------------------------------------------ */
/* The request being run                                                */
/* ------------------------------------------------------------------ */

struct sc_ctx; /* one request: asset, action, state; runtime-owned */

/* The asset object as given (validated against the asset schema). */
const cJSON *sc_asset(const struct sc_ctx *ctx);
/* A string asset field, or NULL when absent or empty. */
const char *sc_asset_string(const struct sc_ctx *ctx, const char *key);
/* A boolean asset field, or `dflt` when absent. */
int sc_asset_bool(const struct sc_ctx *ctx, const char *key, int dflt);
/* A numeric asset field, or `dflt` when absent. */
long sc_asset_long(const struct sc_ctx *ctx, const char *key, long dflt);
/* A numeric asset field with its fraction (timeout: 2.5), or `dflt`. */
double sc_asset_double(const struct sc_ctx *ctx, const char *key, double dflt);

/* Request envelope fields: "asset_id", "vault_dir"; NULL when absent. */
const char *sc_request_string(const struct sc_ctx *ctx, const char *key);
/* "platform" object fields, e.g. "email_from"; NULL when absent. */
const char *sc_platform_string(const struct sc_ctx *ctx, const char *key);
/* The action's display name ("send email"). */
const char *sc_action_name(const struct sc_ctx *ctx);
/* State directory (created 0700 on first call); NULL + err on failure. */
const char *sc_state_dir(struct sc_ctx *ctx, struct sc_error *err);
/* The asset's key for per-asset state: asset_id, else a hash of the
 * server, port and username. Never NULL. */
const char *sc_asset_key(const struct sc_ctx *ctx);

/* Apply the asset's TLS and timeout rules (verification, ca_file,
 * timeout) to an easy handle the plugin uses for HTTP (token endpoints).
 * Also turns redirects and .netrc off. */
int sc_http_apply_policy(const struct sc_ctx *ctx, void *curl_easy,
			 struct sc_error *err);
/* The same rules without a request (delivery plugins have none): TLS 1.2
 * at least, the peer verified unless `verify` is 0, `ca_file` (NULL or
 * "": the system store) trusted, `timeout` seconds (<= 0: 30) for connect
 * and transfer, no redirects, no .netrc. SC_EINPUT names "ca_file" when
 * it cannot be read. */
int sc_http_tls_policy(void *curl_easy, const char *ca_file, int verify, double timeout,
		       struct sc_error *err);

/* ------------------------------------------------------------------ */
/* Results                                                              */
/* ------------------------------------------------------------------ */

struct sc_result; /* one action_result (one parameter set); runtime-owned */

/* The result's "message" (replaces any earlier one). */
void sc_result_message(struct sc_result *r, const char *fmt, ...) SC_PRINTF(2, 3);
/* The first object of "data" (created on first call): add fields to it. */
cJSON *sc_result_data(struct sc_result *r);
/* The "summary" object of this action_result. */
cJSON *sc_result_summary(struct sc_result *r);
/* "parameter": the parameters as given; plugins may update fields
 * (send email writes the effective "from" back, as SOAR does). */
cJSON *sc_result_parameter(struct sc_result *r);
/* A non-fatal note, listed under data[0].warnings. */
void sc_result_warn(struct sc_result *r, const char *fmt, ...) SC_PRINTF(2, 3);

/* ------------------------------------------------------------------ */
/* Auth plugins                                                         */
/* ------------------------------------------------------------------ */

struct sc_credentials; /* runtime-owned; copied into libcurl, then wiped */

/* User name and password for SASL PLAIN/LOGIN (and whatever else the
 * server offers unless a mechanism is forced). Both are copied. */
int sc_credentials_login(struct sc_credentials *c, const char *username,
			 const char *password);
/* OAuth 2.0 bearer token for XOAUTH2/OAUTHBEARER. Copied. */
int sc_credentials_bearer(struct sc_credentials *c, const char *username,
			  const char *token);
/* Force one SASL mechanism ("PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER");
 * NULL lets the server's offer decide. The asset's auth_mechanism, when
 * set, wins over this. */
int sc_credentials_mechanism(struct sc_credentials *c, const char *mech);

struct sc_auth_ops {
	/* Fill `creds` from the asset (and any store). Return SC_ESKIP with
	 * a reason when this method does not apply (required fields missing,
	 * no stored token): Automatic then tries the next method. Setting
	 * no credentials at all means "no AUTH" (Passwordless).
	 * `*priv` is this plugin's per-session state (starts NULL). */
	int (*acquire)(struct sc_ctx *ctx, struct sc_credentials *creds,
		       void **priv, struct sc_error *err);
	/* The server refused the credentials with `reply` (verbatim). Renew
	 * them (refresh a token) and return SC_OK to have the runtime retry
	 * exactly once; return anything else to give up (err's message then
	 * prefixes the refusal). Returning SC_OK with err set is allowed:
	 * its message is a hint appended if the retry is refused as well.
	 * May be NULL. */
	int (*refused)(struct sc_ctx *ctx, const char *reply,
		       struct sc_credentials *creds, void **priv,
		       struct sc_error *err);
	/* Free `priv`. May be NULL. */
	void (*release)(void *priv);
	/* `smtp-connector authorize`: interactive set-up (OAuth consent).
	 * Add result fields to `data`. NULL when the method needs none. */
	int (*authorize)(struct sc_ctx *ctx, cJSON *data, struct sc_error *err);
};

/* ------------------------------------------------------------------ */
/* Action plugins                                                       */
/* ------------------------------------------------------------------ */

struct sc_action_ops {
	/* Run one parameter set (validated against the plugin's schema).
	 * Check everything that can fail locally first; open the session
	 * (sc_session_open, in message.h) only when the message is ready, so
	 * nothing is ever half-sent. On success set the result message; on
	 * failure return a code with `err` set: its message becomes the
	 * result's message. */
	int (*run)(struct sc_ctx *ctx, const cJSON *params,
		   struct sc_result *result, struct sc_error *err);
};

/* ------------------------------------------------------------------ */
/* The descriptor                                                       */
/* ------------------------------------------------------------------ */

enum sc_plugin_kind { SC_PLUGIN_ACTION = 1, SC_PLUGIN_AUTH = 2, SC_PLUGIN_SINK = 3 };

struct sc_sink_ops; /* <smtp-connector/sink.h> */

struct sc_plugin {
	unsigned abi;             /* SC_PLUGIN_ABI; checked first */
	enum sc_plugin_kind kind;
	const char *name;         /* "send email", "Basic" */
	const char *identifier;   /* "send_email", "basic": module file is
				     action_<identifier> / auth_<identifier> */
	const char *version;      /* plugin's own version, free form */
	const char *description;
	/* JSON Schema (2020-12) text. Action: the parameter object. Auth: an
	 * object schema whose "properties" are asset keys the plugin adds
	 * (merged into the asset schema; may be NULL). Sink: the object of
	 * its settings in the serve configuration ("delivery"). */
	const char *schema;
	const struct sc_action_ops *action; /* kind == SC_PLUGIN_ACTION */
	const struct sc_auth_ops *auth;     /* kind == SC_PLUGIN_AUTH */
	const struct sc_sink_ops *sink;     /* kind == SC_PLUGIN_SINK */
};

#ifdef __cplusplus
}
#endif
#endif
