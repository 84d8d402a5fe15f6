/* The DATA reader (RFC 5321 §4.1.1.4, §4.5.2): undoes dot-stuffing and
 * finds the end of the message, which is <CRLF>.<CRLF> and nothing else.
 * A bare LF, a bare CR or a NUL anywhere in the message is fatal: the
 * session answers 5xx and closes, so no other reading of the byte stream
 * (<LF>.<LF>, <CR>.<CR>, <LF>.<CRLF>, ...) can ever end a message here
 * and start a second, smuggled one (Postfix's smtpd_forbid_bare_newline).
 * Pure and incremental: bytes in, message bytes out, no I/O. */
#ifndef SC_SERVE_DATA_READER_H
#define SC_SERVE_DATA_READER_H

#include <smtp-connector/plugin.h>
#include <stddef.h>

enum serve_data_error {
	SD_OK = 0,
	SD_TOO_BIG,   /* soft: more than max_size bytes; reading goes on */
	SD_LINE_LONG, /* soft: a line over max_line octets; reading goes on */
	SD_BARE_LF,   /* fatal */
	SD_BARE_CR,   /* fatal */
	SD_NUL        /* fatal */
};

enum serve_data_status { SD_MORE = 0, SD_END, SD_FATAL, SD_NOMEM };

struct serve_data_reader {
	int state;
	size_t line_len;             /* octets of the current line so far */
	size_t max_line;             /* with CRLF; 0: no limit */
	unsigned long long size;     /* message bytes seen (after unstuffing) */
	unsigned long long max_size; /* 0: no limit */
	enum serve_data_error error; /* first error */
};

/* Start reading a message (right after the 354 reply). */
void serve_data_init(struct serve_data_reader *r, unsigned long long max_size, size_t max_line);

/* Feed n bytes. Message bytes are appended to `out` (with CRLF line ends,
 * without the final ".", and not at all once a soft error happened).
 * *used is set to the bytes taken from `in`: all of them on SD_MORE; up
 * to and including the end marker on SD_END (the rest is the client's
 * next commands, pipelined); up to the offending byte on SD_FATAL. On
 * SD_END, r->error tells whether the message is to be refused. */
enum serve_data_status serve_data_feed(struct serve_data_reader *r, const char *in, size_t n,
                                       size_t *used, struct sc_buf *out);

/* The reply (code and text, no CRLF) for r->error. */
const char *serve_data_error_reply(enum serve_data_error e);

#endif
