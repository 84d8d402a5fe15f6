/* A text body streamed onto the wire (internal to core/message/): the
 * text is held once, by the caller, and every read makes the next few
 * KiB of its transfer encoding. Before, a 50 MB body was copied once per
 * step (CRLF form, encoded form, the message's copy, the upload buffer)
 * and peaked at 265 MiB RSS; bench/body_rss.sh measures it. */
#ifndef SC_BODY_STREAM_H
#define SC_BODY_STREAM_H

#include "core.h"

#include <curl/curl.h>

/* transfer_encoding.c: the encoding sc_body_encoding() would pick for
 * `text` once its line breaks are CRLF, without making that copy. */
const char *core_text_encoding(const char *text, size_t len);
/* transfer_encoding.c: quoted-printable of data[0..len) appended to `out`,
 * the column carried in *col between calls. Unless `final`, stops short
 * of the last few octets (their encoding depends on what follows) and
 * returns how many it consumed; the caller passes the rest again with
 * more text. (size_t)-1 when out of memory. */
size_t core_qp_step(struct sc_buf *out, size_t *col, const char *data, size_t len, int final);

struct body_stream;

/* A stream over `text` (borrowed when `copy` is 0: it must stay valid
 * and unchanged until body_stream_free; else copied once). *cte is set to
 * the encoding chosen, as sc_text_encode() would. NULL when out of memory. */
struct body_stream *body_stream_new(const char *text, size_t len, int copy, const char **cte);
/* Exact length of the whole encoded body (computed once, by encoding it
 * into nothing: nothing is kept). */
size_t body_stream_size(const struct body_stream *s);
/* Up to `cap` bytes of the encoded body; 0 at the end; (size_t)-1 when
 * out of memory. */
size_t body_stream_read(struct body_stream *s, char *buf, size_t cap);
/* Back to the first byte (libcurl rewinds before it resends). */
void body_stream_rewind(struct body_stream *s);
void body_stream_free(struct body_stream *s);

/* curl_mime_data_cb callbacks over a body_stream (the part owns it). */
size_t body_stream_curl_read(char *buf, size_t size, size_t nitems, void *arg);
int body_stream_curl_seek(void *arg, curl_off_t offset, int origin);
void body_stream_curl_free(void *arg);

#endif
