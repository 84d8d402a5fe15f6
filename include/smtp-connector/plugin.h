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

/* Bump on any incompatible change to this header, message.h or sink.h
 * (4: sc_sink_ops grew deliver_async). */
#define SC_PLUGIN_ABI 4
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
	SC_EINPUT,   /* a request, asset or parameter value is unusable */
	SC_ESKIP,    /* auth: method not applicable (missing fields, no token) */
	SC_ECONNECT, /* DNS, TCP connect, no greeting within the timeout */
	SC_ETLS,     /* TLS handshake, certificate, STARTTLS not offered */
	SC_EAUTH,    /* authentication refused or impossible */
	SC_ESEND,    /* server refused MAIL FROM, every RCPT, or DATA */
	SC_EPROTO,   /* server broke off or timed out mid-session */
	SC_EIO,      /* a local file: vault item, token store, state dir */
	SC_ENOMEM,
	SC_EPLUGIN, /* plugin missing, unloadable or of another ABI */
	SC_EINTERNAL,
	SC_ETHROTTLED, /* throttle_period not yet over (throttle_mode drop, or
	                  longer than throttle_max_wait) */
	SC_PENDING     /* not an error: sc_send_async handed the message to a
	                  parallel session; the core completes the result */
};

struct sc_error {
	enum sc_code code;
	char *message; /* allocated; NULL while code == SC_OK */
};

#define SC_ERROR_INIT                                                                              \
	{                                                                                          \
		SC_OK, NULL                                                                        \
	}

/* Replace err's content (freeing an earlier message); returns `code` so
 * that `return sc_error_set(err, SC_EINPUT, "...")` reads naturally.
 * `err` may be NULL (only the code is returned). When the message cannot
 * be allocated, err->message is NULL and err->code is still `code`. */
int sc_error_set(struct sc_error *err, enum sc_code code, const char *fmt, ...) SC_PRINTF(3, 4);
/* Prefix the existing message: "<prefix>: <old message>". Nothing when
 * err is NULL or holds SC_OK; the message stays as it was when out of
 * memory. */
void sc_error_prefix(struct sc_error *err, const char *fmt, ...) SC_PRINTF(2, 3);
void sc_error_clear(struct sc_error *err);
/* An allocated printf result (free() it), or NULL when out of memory:
 * messages quote server replies and user input of any length. */
char *sc_asprintf(const char *fmt, ...) SC_PRINTF(1, 2);

/* ------------------------------------------------------------------ */
/* Growable buffer: the one byte buffer of the whole tree.              */
/* ------------------------------------------------------------------ */

/* Always NUL-terminated once anything was added (p may be NULL while
 * empty); `len` excludes the NUL, so binary data with NULs is fine.
 * Zero-initialise ({0}) to start. A buffer that will hold a secret sets
 * `wipe` = 1 before the first add: growing it then copies into a new
 * block and wipes the old one (realloc would leave the secret behind in
 * freed memory); free it with sc_buf_wipe. */
struct sc_buf {
	char *p;
	size_t len, cap;
	int wipe;
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
/* Append what fd holds from its offset to end of file, at most `max`
 * bytes: the one "read a whole small file" loop (configs, spool
 * envelopes, token stores, secrets, received messages), so that each
 * caller only opens the file its own way. Read straight into b (with
 * b->wipe, growing b wipes the block it leaves; no other copy is made).
 * EINTR is retried. SC_OK; SC_EINPUT when the file holds more than max
 * bytes (b keeps the first max); SC_EIO with errno set (a read failed);
 * SC_ENOMEM. b always holds a NUL-terminated text on SC_OK ("" for an
 * empty file). */
int sc_buf_read_fd(struct sc_buf *b, int fd, size_t max);

/* Write all n bytes of p to fd, retrying short writes and EINTR (spool
 * and Maildir files, which must be whole before they are renamed into
 * place). SC_OK, or SC_EIO with errno set. */
int sc_write_all(int fd, const void *p, size_t n);
/* Create directory `path` with mode 0700 unless it exists; an existing
 * one is left as it is (its mode untouched) but must be a directory
 * (or a symbolic link to one). SC_OK, or SC_EIO with errno set (ENOTDIR
 * when something else is there). */
int sc_dir_make(const char *path);

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

/* JSON text that a request field carries as a string (headers given as
 * "{\"Reply-To\": ...}", attachment_json): parsed with the checks the
 * request itself gets, so no string in it is cut at a \u0000 escape and
 * every string is UTF-8 (text[0..len) must be exactly one JSON value). A
 * new tree the caller frees with cJSON_Delete, or NULL with err set:
 * SC_EINPUT, the message naming `what` ("headers") or a path below it
 * ("headers.X-Tag: contains a NUL character ..."); SC_ENOMEM. */
cJSON *sc_json_parse(const char *text, size_t len, const char *what, struct sc_error *err);
/* Why sc_json_parse_fault refused a text, for a caller that adds how to
 * write it (compose's "give a JSON object such as ..."): never by matching
 * the message. */
enum sc_json_fault {
	SC_JSON_OK,     /* parsed */
	SC_JSON_SYNTAX, /* not one JSON value: a syntax error, a raw control
	                   byte between values, or more text after the value */
	SC_JSON_STRING  /* JSON, but a string in it fails the request's checks
	                   (err SC_EINPUT), or memory ran out (SC_ENOMEM) */
};
/* sc_json_parse, and `why` (when not NULL) gets the kind of refusal
 * (SC_JSON_OK on success). */
cJSON *sc_json_parse_fault(const char *text, size_t len, const char *what, enum sc_json_fault *why,
                           struct sc_error *err);

/* ------------------------------------------------------------------ */
/* The request being run                                                */
/* ------------------------------------------------------------------ */

struct sc_ctx; /* one request: asset, action, state; runtime-owned */

/* A string asset field, or NULL when absent, empty or not a string.
 * The pointer is the runtime's, valid while the plugin function runs.
 * These getters cannot fail: the asset passed its schema. */
const char *sc_asset_string(const struct sc_ctx *ctx, const char *key);
/* A boolean asset field, or `dflt` when absent. */
int sc_asset_bool(const struct sc_ctx *ctx, const char *key, int dflt);
/* A numeric asset field with its fraction (timeout: 2.5), or `dflt`. */
double sc_asset_double(const struct sc_ctx *ctx, const char *key, double dflt);

/* "platform" object fields, e.g. "email_from"; NULL when absent. */
const char *sc_platform_string(const struct sc_ctx *ctx, const char *key);
/* State directory (created 0700 on first call when missing; an existing
 * one is never chmod'ed and must be the user's own and not writable by
 * group or others), owned by the runtime. NULL with err SC_EIO (none
 * configured, not absolute, cannot be created, or open to others: the fix
 * named) or SC_ENOMEM. */
const char *sc_state_dir(struct sc_ctx *ctx, struct sc_error *err);
/* The asset's key for per-asset state: asset_id, else a hash of the
 * server, port and username. Never NULL. */
const char *sc_asset_key(const struct sc_ctx *ctx);

/* Apply the asset's TLS and timeout rules (verification, ca_file,
 * timeout) to an easy handle the plugin uses for HTTP (token endpoints).
 * Also turns redirects and .netrc off. SC_OK, or SC_EINPUT (ca_file is
 * not readable: the message names it). */
int sc_http_apply_policy(const struct sc_ctx *ctx, void *curl_easy, struct sc_error *err);
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

/* The result's "message" (replaces any earlier one). The result
 * functions cannot fail visibly: out of memory, the field stays as it
 * was (cJSON * getters then return NULL). */
void sc_result_message(struct sc_result *r, const char *fmt, ...) SC_PRINTF(2, 3);
/* The first object of "data" (created on first call): add fields to it. */
cJSON *sc_result_data(struct sc_result *r);
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
 * server offers unless a mechanism is forced). Both are copied.
 * SC_OK or SC_ENOMEM (no error message: the caller names the step). */
int sc_credentials_login(struct sc_credentials *c, const char *username, const char *password);
/* OAuth 2.0 bearer token for XOAUTH2/OAUTHBEARER. Copied. SC_OK or
 * SC_ENOMEM. */
int sc_credentials_bearer(struct sc_credentials *c, const char *username, const char *token);
/* Force one SASL mechanism ("PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER");
 * NULL lets the server's offer decide. The asset's auth_mechanism, when
 * set, wins over this. SC_OK or SC_ENOMEM. */
int sc_credentials_mechanism(struct sc_credentials *c, const char *mech);

struct sc_auth_ops {
	/* Fill `creds` from the asset (and any store). Return SC_ESKIP with
	 * a reason when this method does not apply (required fields missing,
	 * no stored token): Automatic then tries the next method. Setting
	 * no credentials at all means "no AUTH" (Passwordless).
	 * `*priv` is this plugin's per-session state (starts NULL). */
	int (*acquire)(struct sc_ctx *ctx, struct sc_credentials *creds, void **priv,
	               struct sc_error *err);
	/* The server refused the credentials with `reply` (verbatim). Renew
	 * them (refresh a token) and return SC_OK to have the runtime retry
	 * exactly once; return anything else to give up (err's message then
	 * prefixes the refusal). Returning SC_OK with err set is allowed:
	 * its message is a hint appended if the retry is refused as well.
	 * May be NULL. */
	int (*refused)(struct sc_ctx *ctx, const char *reply, struct sc_credentials *creds,
	               void **priv, struct sc_error *err);
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
	int (*run)(struct sc_ctx *ctx, const cJSON *params, struct sc_result *result,
	           struct sc_error *err);
};

/* ------------------------------------------------------------------ */
/* The descriptor                                                       */
/* ------------------------------------------------------------------ */

enum sc_plugin_kind {
	SC_PLUGIN_ACTION = 1,
	SC_PLUGIN_AUTH = 2,
	SC_PLUGIN_SINK = 3,
	SC_PLUGIN_SUPPORT = 4 /* code plugins share, loaded on first use */
};

struct sc_sink_ops; /* <smtp-connector/sink.h> */

struct sc_plugin {
	unsigned abi; /* SC_PLUGIN_ABI; checked first */
	enum sc_plugin_kind kind;
	const char *name;       /* "send email", "Basic" */
	const char *identifier; /* "send_email", "basic": module file is
	                           action_<identifier> / auth_<identifier> */
	const char *version;    /* plugin's own version, free form */
	const char *description;
	/* JSON Schema (2020-12) text. Action: the parameter object. Auth: an
	 * object schema whose "properties" are asset keys the plugin adds
	 * (merged into the asset schema; may be NULL). Sink: the object of
	 * its settings in the serve configuration ("delivery"). */
	const char *schema;
	const struct sc_action_ops *action; /* kind == SC_PLUGIN_ACTION */
	const struct sc_auth_ops *auth;     /* kind == SC_PLUGIN_AUTH */
	const struct sc_sink_ops *sink;     /* kind == SC_PLUGIN_SINK */
	/* kind == SC_PLUGIN_SUPPORT: the table of functions the module
	 * offers, in a layout its users know (sc_support_load). */
	const void *support;
	/* Action: the data its results carry, for --list (the SOAR app
	 * manifest's "output" list): NULL-terminated "path:type" entries,
	 * path below action_result.data.* ("refused.*.reply"), type one of
	 * string, numeric, boolean. May be NULL. */
	const char *const *outputs;
};

/* The data every sending action's results carry (sc_send, message.h). */
#define SC_SEND_OUTPUTS                                                                            \
	"message_id:string", "accepted.*:string", "refused.*.address:string",                      \
	    "refused.*.reply:string", "refused.*.temporary:boolean", "smtp_reply:string",          \
	    "auth:string", "auth_attempts.*.method:string", "auth_attempts.*.outcome:string",      \
	    "auth_attempts.*.reason:string", "warnings.*:string"

/* ------------------------------------------------------------------ */
/* Support modules                                                      */
/* ------------------------------------------------------------------ */

/* A support module is code several plugins share that is too heavy to
 * link into each (support_html: libxml2 and ICU, which a plain-text mail
 * should never load). Its module file is support_<identifier>, its kind
 * SC_PLUGIN_SUPPORT. sc_support_load() finds it on the plugin search path
 * like any plugin (same ABI check and diagnostics; --list shows it),
 * loads it once per process and returns its descriptor's `support`
 * table, which stays valid until the process exits. Not thread-safe:
 * call it from the main thread (actions run there).
 * Returns NULL with err set: SC_EPLUGIN (the module is not on the path,
 * is present but not loadable, or is of another ABI: the message says
 * which and where it looked), SC_ENOMEM. */
const void *sc_support_load(const char *identifier, struct sc_error *err);

#ifdef __cplusplus
}
#endif
#endif
