/* Internal header of core/inbound/: reading a received message into the
 * summary object of sc_inbound_summary() (sink.h).
 *
 *   decode.c      RFC 2047 words, quoted-printable, base64 (OpenSSL EVP),
 *                 charset -> UTF-8 (iconv) and UTF-8 repair
 *   mime_parse.c  header sections (unfolding, fields), Content-Type and
 *                 Content-Disposition parameters (RFC 2231), boundaries
 *   summary.c     the streaming walk over the file and the JSON object
 *
 * Every function here takes untrusted bytes with their length (never a
 * NUL-terminated assumption) and appends to a caller-owned struct sc_buf.
 * Output text is always valid UTF-8. */
#ifndef SC_INBOUND_H
#define SC_INBOUND_H

#include <stddef.h>
#include <stdio.h>

#include <smtp-connector/plugin.h>

/* Bounds (why: memory is bounded whatever the message holds). */
#define INB_TOP_HEADER_MAX ((size_t)1 << 20)   /* top-level header section */
#define INB_PART_HEADER_MAX ((size_t)64 << 10) /* a body part's headers */
#define INB_MAX_DEPTH 32                       /* nested multiparts */
#define INB_MAX_ATTACHMENTS 1000               /* entries in "attachments" */
#define INB_MAX_FIELDS 10000                   /* fields in "headers" */
#define INB_BOUNDARY_MAX 998                   /* longer: not a multipart */
#define INB_NAME_MAX 1024                      /* attachment name, type: cut */

/* ---- decode.c: UTF-8 ------------------------------------------------- */

/* Append s[0..n) to out as valid UTF-8: every ill-formed sequence (a
 * maximal subpart, as Unicode and Python's errors="replace" count them)
 * becomes U+FFFD; NUL becomes U+FFFD too (C strings and JSON consumers).
 * SC_OK or SC_ENOMEM. */
int inb_utf8_append(struct sc_buf *out, const char *s, size_t n);

/* ---- decode.c: charset conversion ------------------------------------ */

/* A streaming converter from a MIME charset to UTF-8. Unknown charsets
 * (and a missing one) are read as UTF-8 with U+FFFD for what is not
 * UTF-8: today's unlabelled or mislabelled mail is far more often UTF-8
 * than Latin-1, and valid UTF-8 then survives intact. Bytes a known
 * charset cannot map become U+FFFD, one per byte. */
struct inb_conv {
	void *cd;            /* iconv_t, or NULL for the UTF-8 path */
	struct sc_buf carry; /* an incomplete sequence held to the next feed */
};

/* charset: its bytes and length (any content; NULL/0 for none). */
void inb_conv_open(struct inb_conv *c, const char *charset, size_t len);
/* Convert and append to out. SC_OK or SC_ENOMEM. */
int inb_conv_feed(struct inb_conv *c, const char *in, size_t n, struct sc_buf *out);
/* Flush what is held (an incomplete tail becomes U+FFFD). */
int inb_conv_finish(struct inb_conv *c, struct sc_buf *out);
void inb_conv_close(struct inb_conv *c);
/* One-shot: convert s[0..n) from charset and append. */
int inb_conv_append(const char *charset, size_t clen, const char *s, size_t n, struct sc_buf *out);

/* ---- decode.c: RFC 2047 ---------------------------------------------- */

/* Append the unstructured header text s[0..n) to out as UTF-8, encoded
 * words (B and Q) decoded; whitespace between adjacent encoded words is
 * dropped (RFC 2047 §6.2) and the bytes of adjacent words in the same
 * charset are joined before conversion, so a character split across
 * words survives. Malformed words stay as they are. */
int inb_rfc2047_decode(const char *s, size_t n, struct sc_buf *out);

/* ---- decode.c: transfer encodings (streaming) ------------------------ */

enum inb_cte { INB_CTE_IDENTITY, INB_CTE_QP, INB_CTE_BASE64 };

/* Decodes a part's body fed line by line: feed() the line's bytes
 * (possibly in several pieces), then eol() at its end. Decoded bytes are
 * appended to `out` of each call. */
struct inb_tdec {
	enum inb_cte cte;
	int qp_state;         /* quoted-printable: where in "=XY" */
	char qp_hex;          /* the first hex digit seen after "=" */
	size_t qp_ws;         /* trailing blanks held: dropped at line end */
	struct sc_buf qp_wsb; /* those blanks */
	void *b64;            /* EVP_ENCODE_CTX */
	char quad[4];         /* base64 characters of the current quad */
	int nquad;
	struct sc_buf b64in; /* filtered input handed to EVP */
	int pending_eol;     /* a line end seen, written if more text comes */
};

/* SC_OK or SC_ENOMEM. */
int inb_tdec_init(struct inb_tdec *d, enum inb_cte cte);
int inb_tdec_feed(struct inb_tdec *d, const char *s, size_t n, struct sc_buf *out);
/* The current line ended (eol=1 when a line terminator was read). */
int inb_tdec_eol(struct inb_tdec *d, struct sc_buf *out);
/* End of the part: `final_eol` is 1 at the end of the file, where the
 * last line end belongs to the body, 0 before a boundary, where it
 * belongs to the delimiter (RFC 2046 §5.1.1). */
int inb_tdec_finish(struct inb_tdec *d, int final_eol, struct sc_buf *out);
void inb_tdec_free(struct inb_tdec *d);

/* ---- mime_parse.c ---------------------------------------------------- */

/* One header field of a section: name and raw (unfolded) value, both
 * pointing into the section buffer. */
struct inb_field {
	const char *name;
	size_t nlen;
	const char *value;
	size_t vlen;
};

/* Split a header section (lines separated by "\n", as the walk stores
 * them) into fields, unfolding continuation lines in place (the CR/LF of
 * a fold is removed, the blank kept) and dropping the blanks before
 * the value. *fields is allocated (free() it), *n its length, at most `max`
 * (*cut set to 1 when fields were left out). SC_OK or SC_ENOMEM. */
int inb_fields_split(char *sec, size_t len, size_t max, struct inb_field **fields, size_t *n,
                     int *cut);

/* 1 when line[0..n) starts a header field ("name:"), else 0. */
int inb_is_field_start(const char *line, size_t n);

/* What the walk needs from a part's headers. Strings are allocated and
 * NUL-terminated (valid UTF-8 except boundary and charset, which are
 * bytes compared and handed to iconv as they are). */
struct inb_mime {
	char *type;     /* "text/plain", lower case; never NULL */
	char *charset;  /* parameter value or NULL */
	char *boundary; /* multipart only, or NULL */
	size_t blen;
	char *name;     /* filename (Content-Disposition) or name, UTF-8, or NULL */
	int attachment; /* Content-Disposition: attachment */
	enum inb_cte cte;
};

/* Fill m from the fields (Content-Type, Content-Disposition,
 * Content-Transfer-Encoding). `dflt_type` applies when Content-Type is
 * absent or unusable ("text/plain", or "message/rfc822" in a digest).
 * SC_OK or SC_ENOMEM. */
int inb_mime_from_fields(const struct inb_field *f, size_t n, const char *dflt_type,
                         struct inb_mime *m);
void inb_mime_free(struct inb_mime *m);

/* Is line[0..n) (without its line end) the delimiter "--boundary" or the
 * close delimiter "--boundary--", blanks allowed after it? 0 no, 1
 * delimiter, 2 close delimiter. */
int inb_boundary_match(const char *line, size_t n, const char *b, size_t blen);

/* ---- summary.c ------------------------------------------------------- */

/* sc_inbound_summary() over an open stream that can be rewound (a file,
 * or fmemopen() for the fuzz target). The stream stays the caller's. */
int inb_summary_stream(FILE *f, size_t max_body, cJSON **out, struct sc_error *err);
/* The same with a read buffer of `chunk` bytes (at least 2) instead of
 * 64 KiB: lines longer than that arrive in pieces, so tests and the fuzz
 * target reach the piece-joining paths (quoted-printable, base64 and
 * UTF-8 sequences cut between pieces) with small inputs. */
int inb_summary_chunked(FILE *f, size_t max_body, size_t chunk, cJSON **out, struct sc_error *err);

#endif
