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
/* Text bytes (text.c): the one copy of each check in the tree          */
/* ------------------------------------------------------------------ */

/* Length of the well-formed UTF-8 sequence at `s` (at most `n` bytes;
 * RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF):
 * 1 for ASCII, 2..4, or 0 when the bytes there are not UTF-8 (or n is 0). */
size_t sc_utf8_len(const void *s, size_t n);
/* Whether any of the n bytes is >= 0x80. */
int sc_has_8bit(const void *s, size_t n);
/* The same for a NUL-terminated string; 0 for NULL. */
int sc_str_8bit(const char *s);
/* Make `s` one line in place: each control code, 0x00 to 0x1F (CR, LF
 * and TAB among them) and 0x7F (DEL), becomes a space, so a text from
 * an event, a template or a server's reply cannot start a line of its own
 * in a header or a log (CR LF injection). UTF-8 is left as it is (its
 * bytes are >= 0x80). Returns `s`; NULL stays NULL. */
char *sc_str_one_line(char *s);
/* The CRLF normaliser: append `len` bytes of `s` to `b` with every line
 * break (CRLF, bare LF, bare CR) written as CRLF, the canonical form of
 * text on the wire (RFC 5322 §2.3; a bare LF defeats dot-stuffing).
 * SC_OK or SC_ENOMEM. */
int sc_buf_add_crlf(struct sc_buf *b, const char *s, size_t len);

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
int sc_address_list_parse(const char *text, size_t len, struct sc_address_list *out,
                          struct sc_error *err);
void sc_address_list_free(struct sc_address_list *list);
/* Append a copy of `a` unless its addr is already in `list` (ASCII
 * case-insensitive). Returns SC_OK or SC_ENOMEM. */
int sc_address_list_add_unique(struct sc_address_list *list, const struct sc_address *a);
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
char *sc_address_list_format(const char *name, const struct sc_address_list *l, int utf8_ok);

/* ------------------------------------------------------------------ */
/* Header encoding (RFC 2047 / RFC 2231; encode.c)                      */
/* ------------------------------------------------------------------ */

/* A valid header field name: printable ASCII 33..126 except ':'. */
int sc_header_name_valid(const char *name);
/* Unstructured value (Subject, custom headers) for header `name`:
 * unchanged when ASCII, otherwise RFC 2047 encoded words (UTF-8, B or Q,
 * each <= 75 chars); folded with CRLF SP so no line passes 78 columns
 * counting "<name>: ", 76 when it holds an encoded word. With `utf8_ok`
 * non-ASCII is left raw (SMTPUTF8), only folded. A word that a reader
 * could decode as an encoded word ("=?" then "?=" in it) is encoded
 * itself, in both modes, so the value reads back exactly as given.
 * NULL on allocation failure. CR/LF must be rejected by the caller
 * beforehand. */
char *sc_header_encode_unstructured(const char *name, const char *value, int utf8_ok);

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
/* Add a text part (type "text/plain" or "text/html"; charset utf-8),
 * its line breaks made CRLF and encoded as sc_text_encode() would, but
 * as libcurl reads it: the encoded body is never held in memory. The
 * text is copied once. Returns the part, or NULL with err SC_ENOMEM. */
curl_mimepart *sc_mime_add_text(curl_mime *mime, const char *type, const char *text, size_t len,
                                struct sc_error *err);
/* The same without the copy: `text` is borrowed (an exception to the
 * copy rule of plugin.h) and must stay valid and unchanged until the
 * message that takes this tree is freed. For bodies that come from the
 * request, so a large body is held once. Returns the part, or NULL with
 * err SC_ENOMEM. */
curl_mimepart *sc_mime_add_text_ref(curl_mime *mime, const char *type, const char *text, size_t len,
                                    struct sc_error *err);
/* A nested multipart of `type` ("multipart/alternative", or with
 * parameters) as the next part of `parent`, which owns it. Its
 * Content-Type is folded before libcurl's "; boundary=" (which made the
 * line 80 to 112 octets). Returns the new tree or NULL+err. */
curl_mime *sc_mime_add_multipart(curl_mime *parent, const char *type, struct sc_error *err);

/* ------------------------------------------------------------------ */
/* Raw messages (rawmsg.c): the one header-section parser of the tree,  */
/* used by send rawemail and by sc_message_raw's own look-ups           */
/* ------------------------------------------------------------------ */

/* The parser only records where each header field starts and ends, so a
 * caller can read a field (unfolded) and drop fields (Bcc) while every
 * other byte stays as given. It never rewrites, re-folds or decodes.
 * Line endings may be LF, CRLF or a bare CR (each one line end); callers
 * that remove fields give it text already normalised to CRLF
 * (sc_buf_add_crlf), so that removing a field can never join a bare CR
 * before it and a bare LF after it into one CRLF. Errors are SC_EINPUT
 * with a message naming the line ("line 3 ..."), or SC_ENOMEM. */

struct sc_rawmsg_field {
	size_t start;    /* offset of the field name's first byte */
	size_t end;      /* just past the last line ending of the field
	                    (continuation lines included) */
	size_t name_len; /* the name, without blanks before the ':' */
	size_t value;    /* just past the ':' */
	size_t line;     /* 1-based line number of the field's first line */
};

struct sc_rawmsg {
	const char *text; /* borrowed: the text given to the parser */
	size_t len;
	struct sc_rawmsg_field *f; /* in order of appearance */
	size_t n;
	size_t body;     /* offset of the body (past the empty line);
	                    == len when the message has no body */
	int header_8bit; /* a byte >= 0x80 in the header section */
	int body_8bit;   /* a byte >= 0x80 in the body */
};

/* The `\n` rule of send rawemail: when the text contains no line break
 * at all (no LF, no CR), every backslash + 'n' becomes a newline, so a
 * one-line UI field can carry "From: a@x\nTo: b@y\n\nHello". A text with
 * a real line break is left alone ("C:\new" survives). In place (the text
 * only shrinks); returns the new length. */
size_t sc_rawmsg_expand_newlines(char *text, size_t len);
/* Split the header section of `text` into fields: `Name: value` (a name
 * of printable ASCII without ':', optionally followed by blanks before
 * the ':') and continuation lines that start with a space or a tab. The
 * first empty line ends the headers; without one the whole text is
 * headers. Anything else in the header section (a line without ':', a
 * continuation before the first field, a line of only blanks) is an
 * error naming the line, as is a line anywhere (headers or body) longer
 * than 998 octets without its line end (RFC 5322 §2.1.1): guessing, or
 * letting the server refuse it after connecting, would send another
 * message than the one meant, or half of one. `out` borrows `text`; free
 * it with sc_rawmsg_free(), also after failure. SC_OK; SC_EINPUT naming
 * the line; SC_ENOMEM. */
int sc_rawmsg_parse(const char *text, size_t len, struct sc_rawmsg *out, struct sc_error *err);
void sc_rawmsg_free(struct sc_rawmsg *m);
/* True when field `i` is named `name` (ASCII case-insensitive): a
 * predicate, not an SC_ code. */
int sc_rawmsg_is(const struct sc_rawmsg *m, size_t i, const char *name);
/* Index of the first field named `name` at or after `from`, or m->n. */
size_t sc_rawmsg_find(const struct sc_rawmsg *m, const char *name, size_t from);
/* The value of field `i` unfolded (line endings removed, RFC 5322
 * §2.2.3), leading and trailing blanks trimmed, NUL-terminated, its length
 * in *vlen when not NULL (it may hold a NUL); NULL when out of memory.
 * The caller frees it. */
char *sc_rawmsg_value(const struct sc_rawmsg *m, size_t i, size_t *vlen);
/* The whole text without the fields for which `drop` is true (each with
 * all its continuation lines); every other byte as given. NULL when out
 * of memory. The caller frees it; *outlen is its length. */
char *sc_rawmsg_without(const struct sc_rawmsg *m,
                        int (*drop)(const struct sc_rawmsg *m, size_t i, void *arg), void *arg,
                        size_t *outlen);

/* ------------------------------------------------------------------ */
/* Vault files (vault.c)                                                */
/* ------------------------------------------------------------------ */

struct sc_vault_file {
	char *id;           /* vault id as given */
	char *path;         /* absolute path of the content */
	char *name;         /* display file name (from <id>.json, else id) */
	char *content_type; /* from <id>.json, else from the name's extension */
	off_t size;
	int fd; /* the content, open for reading; owned (closed by
	           sc_vault_file_free). Read through it, never
	           through `path` (which is for messages only) */
};

/* Resolve a vault id in the request's vault_dir: the content must exist
 * and be readable; <id>.json, when present, must be valid; a 40-hex id
 * must equal the SHA-1 of the content. Both are opened below vault_dir
 * with O_NOFOLLOW (openat on vault_dir), so nothing outside vault_dir can
 * be read through it. `param` names the parameter in messages
 * ("attachments"). Fills `out` (free with sc_vault_file_free).
 * SC_OK; SC_EINPUT (no vault_dir, an unusable id or metadata, a content
 * that does not match its SHA-1 id: the message names the parameter and
 * id); SC_EIO (missing or unreadable file, a symbolic link or anything but
 * a regular file: the message names the id and the fix); SC_ENOMEM. */
int sc_vault_resolve(struct sc_ctx *ctx, const char *param, const char *id,
                     struct sc_vault_file *out, struct sc_error *err);
void sc_vault_file_free(struct sc_vault_file *f);
/* A file by absolute path (the "files" parameter), accepted only when its
 * real path lies inside one of the asset's "attachment_dirs" (symbolic
 * links out of them are refused); opened below that directory one
 * component at a time with O_NOFOLLOW, so the file read is the file
 * checked. `filename` (may be NULL: the base name) is the name shown.
 * SC_EINPUT (no attachment_dirs, outside them, relative path), SC_EIO
 * (cannot read, not a regular file), SC_ENOMEM. Fills `out` like
 * sc_vault_resolve (its id is the path as given). */
int sc_file_resolve(struct sc_ctx *ctx, const char *param, const char *path, const char *filename,
                    struct sc_vault_file *out, struct sc_error *err);
/* Add `f` as a part streamed from disk (base64-encoded as it is read;
 * memory does not grow with its size) with
 * Content-Disposition `disposition` ("attachment" or "inline"), the
 * RFC 2231 filename, and Content-ID <cid> when cid is non-NULL. Returns
 * the part, or NULL with err SC_EIO (the file cannot be opened) or
 * SC_ENOMEM. */
curl_mimepart *sc_mime_add_file(curl_mime *mime, const struct sc_vault_file *f,
                                const char *disposition, const char *cid, struct sc_error *err);

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
int sc_message_header(struct sc_message *m, const char *name, const char *value,
                      struct sc_error *err);
/* Body = MIME tree with root type `root_type` ("multipart/mixed",
 * "multipart/alternative", "multipart/related"). Takes ownership of
 * `mime`, also on failure. SC_OK or SC_ENOMEM. */
int sc_message_body_mime(struct sc_message *m, curl_mime *mime, const char *root_type,
                         struct sc_error *err);
/* Body = one part: Content-Type `type` and Content-Transfer-Encoding
 * `cte` go into the top-level headers, `body` (already encoded) follows.
 * SC_OK, SC_EINPUT (as sc_message_header) or SC_ENOMEM. */
int sc_message_body_single(struct sc_message *m, const char *type, const char *cte,
                           const char *body, size_t len, struct sc_error *err);
/* Body = one text part of `type` ("text/plain; charset=utf-8"): `text`
 * in CRLF form, encoded as sc_text_encode() picks (the
 * Content-Transfer-Encoding header is set to match) while it is uploaded,
 * so the encoded body is never held in memory. `text` is borrowed (an
 * exception to the copy rule of plugin.h): it must stay valid and
 * unchanged until the message is freed. SC_OK or SC_ENOMEM. */
int sc_message_body_text(struct sc_message *m, const char *type, const char *text, size_t len,
                         struct sc_error *err);
/* Whole message = `raw` (headers + body as given), copied with its line
 * endings made CRLF (sc_buf_add_crlf); top-level headers set with
 * sc_message_header() are not used. A text sc_rawmsg_parse() refuses is
 * SC_EINPUT with its message ("line 3 ..."); SC_ENOMEM. */
int sc_message_raw(struct sc_message *m, const char *raw, size_t len, struct sc_error *err);
/* Give the message a buffer it borrows (a text of sc_mime_add_text_ref or
 * sc_message_body_text that the plugin allocated): it is freed with the
 * message, which may outlive the plugin's run under sc_send_async. Takes
 * `p` (also on failure; NULL is a no-op). SC_OK or SC_ENOMEM. */
int sc_message_keep(struct sc_message *m, void *p, struct sc_error *err);
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
int sc_session_open(struct sc_ctx *ctx, struct sc_session **out, struct sc_error *err);
/* Name of the auth plugin that authenticated the session ("Basic"). */
const char *sc_session_auth(const struct sc_session *s);

struct sc_envelope {
	const char *mail_from;   /* bare addr-spec, may be "" */
	const char *const *rcpt; /* bare addr-specs */
	size_t nrcpt;
	int needs_smtputf8; /* an address or header is UTF-8 */
	int needs_8bit;     /* body carries 8-bit octets */
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
/* sc_send for an action that can let the core finish its result: with the
 * asset's max_connections above 1, once the asset's first session is
 * authenticated, the message goes to a free one of up to max_connections
 * parallel SMTP sessions (one thread each, core/smtp/parallel.c) and the
 * call returns SC_PENDING at once; when all are busy it first waits until
 * one frees. With SC_PENDING the core holds its own reference
 * to `m` (free it as usual: sc_message_free drops the plugin's) and
 * copies `env`; everything else `m` borrows must outlive the request
 * (the request's own strings do) or be given to it with
 * sc_message_keep. The plugin may add data to `r` as for success, then
 * returns SC_PENDING from run(); the core adds the delivery fields, sets
 * the status and prints the request's result line, in request order, when
 * the transfer ends. Otherwise exactly sc_send. */
int sc_send_async(struct sc_ctx *ctx, const struct sc_envelope *env, struct sc_message *m,
                  struct sc_result *r, struct sc_error *err);

#ifdef __cplusplus
}
#endif
#endif
