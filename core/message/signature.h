/* X-SMTP-Connector-Signature (doc/signatures.md): the one implementation
 * the sender (message.c), `smtp-connector verify` (core/runtime/verify.c)
 * and serve's require_signature (core/serve/listener.c) share. Internal
 * to the core. */
#ifndef SC_SIGNATURE_H
#define SC_SIGNATURE_H

#include "core.h"

#include <curl/curl.h>
#include <openssl/evp.h>

#define SIG_HEADER "X-SMTP-Connector-Signature"
#define SIG_HEADERS_MAX (1024 * 1024) /* header section a verifier reads */
#define SIG_KEY_ENV "SMTP_CONNECTOR_SECRET_KEY"

/* ---- sig_canon.c: canonical forms (untrusted input; fuzz_verify) --- */

/* The body hash bh=: SHA-256 of the body in DKIM "simple" form (RFC 6376
 * §3.4.3: trailing empty lines reduced to one CRLF, a CRLF added when
 * the body does not end with one; an empty body is CRLF), with every
 * bare LF counted as CRLF (what a mail store that rewrote line ends
 * changed back). Fed in pieces of any size; memory is constant. */
struct sig_body {
	EVP_MD_CTX *md;
	size_t held; /* CRLFs seen but not yet hashed: they may be trailing */
	int cr;      /* a CR seen, its LF not yet */
	int failed;
};
int sig_body_init(struct sig_body *b);
void sig_body_update(struct sig_body *b, const char *p, size_t n);
/* The digest into out[32] and the state freed; -1 on failure. */
int sig_body_final(struct sig_body *b, unsigned char out[32]);
void sig_body_free(struct sig_body *b);

/* A message read as a stream: the header section (bare LF made CRLF) is
 * kept, at most SIG_HEADERS_MAX octets; the body goes to a sig_body. */
struct sig_reader {
	struct sc_buf head;
	int in_body, too_big;
	struct sig_body body;
};
int sig_reader_init(struct sig_reader *r);
void sig_reader_feed(struct sig_reader *r, const char *p, size_t n);
void sig_reader_free(struct sig_reader *r);

/* Header fields named `name` (ASCII case-insensitive) in a header
 * section: how many there are, and the value of the first one unfolded
 * (CR and LF removed) and trimmed of blanks, in a new buffer (*vlen its
 * length; it may hold a NUL), or NULL when there is none. */
/* The canonical form of a header value, signer's and verifier's alike:
 * v[0..n) unfolded (CR and LF dropped) and trimmed of blanks at both
 * ends, in place; NUL-terminated (v has room for n + 1). Its length. */
size_t sig_unfold_trim(char *v, size_t n);
char *sig_header_value(const char *head, size_t len, const char *name, size_t *count, size_t *vlen);

/* The tags of a signature header value (folds allowed). */
struct sig_tags {
	char *copy; /* the unfolded value; the pointers below point into it */
	const char *v, *a, *t, *bh, *h, *hh, *b;
};
/* 0, or -1 with a reason in why[] ("tag \"x\" appears twice", ...). */
int sig_tags_parse(const char *value, size_t len, struct sig_tags *t, char *why, size_t whylen);
void sig_tags_free(struct sig_tags *t);

/* "name:" + value + CRLF, the line a signed header contributes. */
int sig_header_line(struct sc_buf *out, const char *name, const char *value, size_t vlen);

/* ---- signature.c: signing and verifying ---------------------------- */

/* The identity headers v2 signs, lower case, in signing order. */
extern const char *const sig_names[6];

/* A signature header value (v=2) over the headers `value_of` returns
 * (NULL: absent; the caller frees) and the body digest `bh`. */
char *sig_sign_v2(const char *key, char *(*value_of)(void *arg, const char *name), void *arg,
                  const unsigned char bh[32], long long t, struct sc_error *err);

enum sig_status {
	SIG_VALID,
	SIG_NONE,      /* no signature header */
	SIG_VERSION,   /* v= is not 1 or 2 */
	SIG_MALFORMED, /* a tag */
	SIG_CHANGED,   /* a signed header, the body, or the HMAC */
	SIG_UNREADABLE /* the message itself: too big a header section, I/O */
};
struct sig_verdict {
	enum sig_status status;
	int version;
	long long t;
	char reason[512];
};
/* Verify a message read with a sig_reader (fed to its end). */
void sig_verify(struct sig_reader *r, const char *key, struct sig_verdict *out);
/* Verify the message in `fd` (read to its end, bounded memory). */
void sig_verify_fd(int fd, const char *key, struct sig_verdict *out);

/* The key: the file's content (it must be a regular file no one but its
 * owner can read or write; one final newline dropped) when `file` is
 * given, else $SMTP_CONNECTOR_SECRET_KEY. SC_EINPUT naming the fix. The
 * caller frees it with sc_secret_free. */
int sig_key_load(const char *file, char **key, struct sc_error *err);

/* ---- mime_hash.c ---------------------------------------------------- */

/* The body digest of a curl_mime message exactly as libcurl sends it:
 * libcurl serialises `mime` (with the top-level `headers`) to an SMTP
 * peer inside this process, over a socketpair, which hashes what it
 * receives as a server would store it. The tree is left as it was
 * (rewound, unattached). *uploaded: the octets libcurl sent in DATA
 * (CURLINFO_SIZE_UPLOAD_T), so the real send can be checked against it.
 * SC_EIO when libcurl could not read a part. */
int core_mime_body_hash(curl_mime *mime, struct curl_slist *headers, unsigned char bh[32],
                        curl_off_t *uploaded, struct sc_error *err);

#endif
