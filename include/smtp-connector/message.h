/*
 * smtp-connector message API: addresses, header encoding, MIME pieces,
 * vault files, and the SMTP session that sends a message.
 *
 * Ownership and errors follow the contract written at the top of
 * <smtp-connector/plugin.h>.
 */
#ifndef SMTP_CONNECTOR_MESSAGE_H
#define SMTP_CONNECTOR_MESSAGE_H

#include <stddef.h>
#include <sys/types.h>
#include <curl/curl.h>
#include <smtp-connector/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Addresses (RFC 5322 address lists; address.c)                        */
/* ------------------------------------------------------------------ */

struct sc_address {
	char *display; /* display name, unquoted and unescaped, UTF-8; NULL if none */
	char *addr;    /* addr-spec "local@domain" as written (quotes kept in a
			  quoted local part), never NULL */
};

struct sc_address_list {
	struct sc_address *v;
	size_t n;
};

/* Parse a comma- or semicolon-separated address list: display names,
 * quoted strings ("Doe, Jane" <jane@corp.example>), comments, groups
 * (members are returned flat, the group name is dropped), and the SOAR
 * form `Name <mailto:a@b>` (becomes Name <a@b>). Empty items are skipped.
 * Bare CR or LF anywhere, an address without '@', or unbalanced quotes,
 * angle brackets or comments are SC_EINPUT with a message naming the
 * offending item. `out` is replaced (free it with sc_address_list_free
 * even after failure). SC_OK, SC_EINPUT or SC_ENOMEM. */
int sc_address_list_parse(const char *text, size_t len,
			  struct sc_address_list *out, struct sc_error *err);
void sc_address_list_free(struct sc_address_list *list);
/* Append a copy of `a` unless its addr is already in `list` (ASCII
 * case-insensitive). Returns SC_OK or SC_ENOMEM. */
int sc_address_list_add_unique(struct sc_address_list *list,
			       const struct sc_address *a);
/* True when the address (or display) contains a byte >= 0x80. (The
 * predicates and formatters of this header return values, not codes: a
 * formatter's NULL means out of memory.) */
int sc_address_is_utf8(const struct sc_address *a);

/* "Display <addr>" for a header, the display name as a quoted string or
 * RFC 2047 encoded words when needed (raw UTF-8 if `utf8_ok`), or just
 * "addr" when there is no display name. */
char *sc_address_format(const struct sc_address *a, int utf8_ok);
/* Comma-separated header value of a whole list (", "), folded so that no
 * line passes 78 columns when preceded by "<name>: ". */
char *sc_address_list_format(const char *name, const struct sc_address_list *l,
			     int utf8_ok);

/* ------------------------------------------------------------------ */
/* Header encoding (RFC 2047 / RFC 2231; encode.c)                      */
/* ------------------------------------------------------------------ */

/* A valid header field name: printable ASCII 33..126 except ':'. */
int sc_header_name_valid(const char *name);
/* Unstructured value (Subject, custom headers) for header `name`:
 * unchanged when ASCII, otherwise RFC 2047 encoded words (UTF-8, B or Q,
 * each <= 75 chars); folded with CRLF SP so no line passes 78 columns
 * counting "<name>: ". With `utf8_ok` non-ASCII is left raw (SMTPUTF8),
 * only folded. NULL on allocation failure. CR/LF must be rejected by the
 * caller beforehand. */
char *sc_header_encode_unstructured(const char *name, const char *value,
				    int utf8_ok);

/* ------------------------------------------------------------------ */
/* Bodies and MIME parts (mime.c)                                      */
/* ------------------------------------------------------------------ */


/* A text body ready for the wire: line breaks made CRLF (the canonical
 * form of text), then encoded as sc_body_encoding() picks; *cte is set to
 * that encoding's name. NULL on allocation failure. */
char *sc_text_encode(const char *text, size_t len, const char **cte, size_t *outlen);

/* A new, empty MIME tree for this request (curl_mime_init on the
 * request's handle). Freed by the message that takes it. NULL when the
 * session cannot be created or memory is short. */
curl_mime *sc_mime_new(struct sc_ctx *ctx);
/* Add a text part (type "text/plain" or "text/html"; charset utf-8) with
 * the encoding sc_body_encoding() picks. Returns the part, or NULL with
 * err SC_ENOMEM. */
curl_mimepart *sc_mime_add_text(curl_mime *mime, const char *type,
				const char *text, size_t len,
				struct sc_error *err);

/* ------------------------------------------------------------------ */
/* Vault files (vault.c)                                                */
/* ------------------------------------------------------------------ */

struct sc_vault_file {
	char *id;           /* vault id as given */
	char *path;         /* absolute path of the content */
	char *name;         /* display file name (from <id>.json, else id) */
	char *content_type; /* from <id>.json, else from the name's extension */
	off_t size;
};

/* Resolve a vault id in the request's vault_dir: the content must exist
 * and be readable; <id>.json, when present, must be valid; a 40-hex id
 * must equal the SHA-1 of the content. `param` names the parameter in
 * messages ("attachments"). Fills `out` (free with sc_vault_file_free).
 * SC_OK; SC_EINPUT (no vault_dir, an unusable id or metadata, a content
 * that does not match its SHA-1 id: the message names the parameter and
 * id); SC_EIO (missing or unreadable file); SC_ENOMEM. */
int sc_vault_resolve(struct sc_ctx *ctx, const char *param, const char *id,
		     struct sc_vault_file *out, struct sc_error *err);
void sc_vault_file_free(struct sc_vault_file *f);
/* Add `f` as a part streamed from disk (base64-encoded as it is read;
 * memory does not grow with its size) with
 * Content-Disposition `disposition` ("attachment" or "inline"), the
 * RFC 2231 filename, and Content-ID <cid> when cid is non-NULL. Returns
 * the part, or NULL with err SC_EIO (the file cannot be opened) or
 * SC_ENOMEM. */
curl_mimepart *sc_mime_add_file(curl_mime *mime, const struct sc_vault_file *f,
				const char *disposition, const char *cid,
				struct sc_error *err);

/* ------------------------------------------------------------------ */
/* Messages (message.c)                                                 */
/* ------------------------------------------------------------------ */

struct sc_message; /* headers + body (a MIME tree or complete bytes) */

/* NULL when out of memory. */
struct sc_message *sc_message_new(void);
void sc_message_free(struct sc_message *m);
/* Set a top-level header, replacing any header of the same name
 * (case-insensitive): a message never carries a header twice. `value`
 * must be wire-ready (encoded, folded); CR/LF other than CRLF SP folds is
 * SC_EINPUT naming the header (so is an invalid name); SC_ENOMEM. */
int sc_message_header(struct sc_message *m, const char *name,
		      const char *value, struct sc_error *err);
/* Body = MIME tree with root type `root_type` ("multipart/mixed",
 * "multipart/alternative", "multipart/related"). Takes ownership of
 * `mime`, also on failure. SC_OK or SC_ENOMEM. */
int sc_message_body_mime(struct sc_message *m, curl_mime *mime,
			 const char *root_type, struct sc_error *err);
/* Body = one part: Content-Type `type` and Content-Transfer-Encoding
 * `cte` go into the top-level headers, `body` (already encoded) follows.
 * SC_OK, SC_EINPUT (as sc_message_header) or SC_ENOMEM. */
int sc_message_body_single(struct sc_message *m, const char *type,
			   const char *cte, const char *body, size_t len,
			   struct sc_error *err);
/* Whole message = `raw` (headers + body as given). Line endings are
 * normalised to CRLF when sent; top-level headers set with
 * sc_message_header() are not used. Copies `raw`. SC_OK or SC_ENOMEM. */
int sc_message_raw(struct sc_message *m, const char *raw, size_t len,
		   struct sc_error *err);
/* Adds Date and Message-ID (<random@domain>) when absent; returns the
 * Message-ID in use (owned by the message); NULL when out of memory. */
const char *sc_message_ensure_ids(struct sc_message *m, const char *domain);

/* ------------------------------------------------------------------ */
/* The SMTP session (session.c)                                         */
/* ------------------------------------------------------------------ */

struct sc_session; /* runtime-owned; one per asset per process */

/* Connect, secure and authenticate as the asset says (auth_type, or the
 * Automatic order), or return the session already open for this asset.
 * Every auth attempt is recorded for the result (data[].auth_attempts).
 * Never frees: the runtime QUITs and closes sessions at exit.
 * SC_OK; SC_EINPUT (an unusable server or ca_file); SC_ECONNECT (DNS,
 * connect, no greeting); SC_ETLS (handshake, certificate, no STARTTLS);
 * SC_EAUTH (every method refused or not applicable); SC_EPROTO (the
 * server broke off or timed out); SC_EIO (state dir); SC_ENOMEM. */
int sc_session_open(struct sc_ctx *ctx, struct sc_session **out,
		    struct sc_error *err);
/* Name of the auth plugin that authenticated the session ("Basic"). */
const char *sc_session_auth(const struct sc_session *s);

struct sc_envelope {
	const char *mail_from;          /* bare addr-spec, may be "" */
	const char *const *rcpt;        /* bare addr-specs */
	size_t nrcpt;
	int needs_smtputf8;             /* an address or header is UTF-8 */
	int needs_8bit;                 /* body carries 8-bit octets */
};

/* What every sending action does: open the session (sc_session_open),
 * send `m` to `env` (sc_session_send), and report it in `r`: data[0]
 * message_id (the message's own Message-ID), accepted, refused,
 * smtp_reply, auth, and the SOAR message (sc_delivery_report). A failure
 * is prefixed "Email send failed". The codes of sc_session_open, and
 * SC_ESEND (MAIL FROM, every RCPT or DATA refused; what the server
 * said is in the message) and SC_EPROTO. */
int sc_send(struct sc_ctx *ctx, const struct sc_envelope *env, struct sc_message *m,
	    struct sc_result *r, struct sc_error *err);

#ifdef __cplusplus
}
#endif
#endif
