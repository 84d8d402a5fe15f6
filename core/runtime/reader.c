/* Requests arrive on stdin as one JSON object or as JSON Lines, and are
 * streamed: each document goes to the runtime as soon as its text is
 * complete and is freed once its result is printed. A platform may write a
 * request and wait for its result with the pipe still open, and a batch of
 * any length runs in the memory of one request.
 *
 * Input is read a whole line at a time (getline), so a number or a literal
 * is never cut in two. Whether the text so far is a whole document is
 * cJSON's call: it parses buf[off..len) plus a two-space sentinel, and
 *  - succeeds: a document (several on one line are handed out in turn);
 *  - fails past the text: the text ran out, read another line (at EOF:
 *    "ends too early");
 *  - fails inside a string that has no closing quote yet (cJSON points just
 *    after the opening quote, not at the end): the same;
 *  - fails anywhere else: the text is not JSON, whatever follows.
 * A verdict on a prefix of whole lines is the verdict on the whole text,
 * so results and messages are those of reading everything first. */
#include "reader.h"
#include "json_strings.h"
#include "utf8.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define BUF_KEEP ((size_t)1 << 20) /* give back a buffer larger than this */

void core_reader_init(struct core_reader *r, FILE *in)
{
	memset(r, 0, sizeof *r);
	r->in = in;
	r->line_no = 1;
	r->col = 1;
}

void core_reader_release(struct core_reader *r)
{
	free(r->buf);
	free(r->line);
	memset(r, 0, sizeof *r);
}

int core_reader_ready(const struct core_reader *r)
{
	if (r->eof || r->drain)
		return 1;
	for (size_t i = r->off; i < r->len; i++)
		if (!isspace((unsigned char)r->buf[i]))
			return 1; /* a document begun: its rest comes soon */
#ifdef __GLIBC__
	/* what stdio read ahead (gnulib's freadahead does the same) */
	if (r->in->_IO_read_ptr < r->in->_IO_read_end)
		return 1;
#else
	return 1; /* unknown: read on, as with one session */
#endif
	return feof(r->in) || ferror(r->in);
}

void core_doc_release(struct core_doc *doc)
{
	cJSON_Delete(doc->json);
	free(doc->error);
	doc->json = NULL;
	doc->error = NULL;
	doc->code = SC_OK;
}

/* Whitespace as JSON has it (RFC 8259 §2): not \v or \f, which isspace
 * takes and cJSON skips, and which json_strings.c refuses. */
static int json_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Line and column of `at` in the whole input (buf[0] is at line_no, col). */
static void line_col(const struct core_reader *r, const char *at, int *line, int *col)
{
	const char *p = r->buf, *nl;
	*line = r->line_no;
	*col = r->col;
	while ((nl = memchr(p, '\n', (size_t)(at - p)))) {
		(*line)++;
		*col = 1;
		p = nl + 1;
	}
	*col += (int)(at - p);
}

/* Forget buf[0..off): the text of documents already handed out. */
static void compact(struct core_reader *r)
{
	if (r->off == 0)
		return;
	line_col(r, r->buf + r->off, &r->line_no, &r->col);
	memmove(r->buf, r->buf + r->off, r->len - r->off);
	r->len -= r->off;
	r->scan_pos = r->scan_pos >= r->off ? r->scan_pos - r->off : 0;
	r->off = 0;
	if (r->cap > BUF_KEEP && r->len + 3 < BUF_KEEP / 4) {
		char *nb = realloc(r->buf, BUF_KEEP / 4);
		if (nb) {
			r->buf = nb;
			r->cap = BUF_KEEP / 4;
		}
	}
	if (r->buf)
		memcpy(r->buf + r->len, "  ", 3);
}

/* Append one line of input: 1, 0 at EOF, -1 on error. */
static int read_line(struct core_reader *r, struct sc_error *err)
{
	compact(r);
	errno = 0;
	ssize_t n = getline(&r->line, &r->linecap, r->in);
	if (n < 0) {
		if (ferror(r->in) || errno == ENOMEM) {
			sc_error_set(err, errno == ENOMEM ? SC_ENOMEM : SC_EIO,
			             "cannot read the request from stdin: %s", strerror(errno));
			return -1;
		}
		r->eof = 1;
		return 0;
	}
	size_t need = r->len + (size_t)n + 3; /* the sentinel and a NUL */
	if (need > r->cap) {
		size_t nc = r->cap ? r->cap : 4096;
		while (nc < need)
			nc *= 2;
		char *nb = realloc(r->buf, nc);
		if (!nb) {
			sc_error_set(err, SC_ENOMEM, "out of memory reading the request");
			return -1;
		}
		r->buf = nb;
		r->cap = nc;
	}
	memcpy(r->buf + r->len, r->line, (size_t)n);
	r->len += (size_t)n;
	memcpy(r->buf + r->len, "  ", 3);
	if (r->linecap > BUF_KEEP) {
		free(r->line);
		r->line = NULL;
		r->linecap = 0;
	}
	return 1;
}

/* Brackets and strings of a document that spans lines, continued over
 * the bytes read since the last call; `closed` once a value may have
 * ended (a bracket back at depth 0, a string at the top level). */
static void scan(struct core_reader *r)
{
	for (size_t i = r->scan_pos; i < r->len; i++) {
		char c = r->buf[i];
		if (r->in_str) {
			if (r->esc)
				r->esc = 0;
			else if (c == '\\')
				r->esc = 1;
			else if (c == '"') {
				r->in_str = 0;
				if (r->depth <= 0)
					r->closed = 1;
			}
		} else if (c == '"') {
			r->in_str = 1;
		} else if (c == '{' || c == '[') {
			r->depth++;
		} else if ((c == '}' || c == ']') && --r->depth <= 0) {
			r->closed = 1;
		}
	}
	r->scan_pos = r->len;
}

/* cJSON failed at `at` just after a '"' that opens a string with no
 * closing quote before `end`: the string goes on in the next line. */
static int open_string(const char *p, const char *at, const char *end)
{
	if (at <= p || at[-1] != '"')
		return 0;
	int in_str = 0;
	for (const char *q = p; q < at - 1; q++) {
		if (in_str && *q == '\\')
			q++;
		else if (*q == '"')
			in_str = !in_str;
	}
	if (in_str)
		return 0; /* that quote closes a string: a different error */
	for (const char *q = at; q < end; q++) {
		if (*q == '\\')
			q++;
		else if (*q == '"')
			return 0;
	}
	return 1;
}

static char *not_json(const struct core_reader *r, const char *at)
{
	const char *end = r->buf + r->len;
	int line, col;
	line_col(r, at, &line, &col);
	size_t show = 0;
	while (at + show < end && show < 24 && at[show] != '\n')
		show++;
	while (at + show < end && show < 28 && ((unsigned char)at[show] & 0xC0) == 0x80)
		show++; /* finish a character cut at 24 bytes */
	/* the text near a fault is often the fault: quote it as valid UTF-8 */
	char *near = core_utf8_sanitize(at, show, NULL);
	char *m = sc_asprintf("the request is not valid JSON at line %d, column %d, near \"%s\"; "
	                      "send one JSON object, or one object per line",
	                      line, col, near ? near : "");
	free(near);
	return m;
}

static char *ends_too_early(const struct core_reader *r)
{
	const char *p = r->buf + r->off, *last = r->buf + r->len - 1;
	while (last > p && isspace((unsigned char)*last))
		last--;
	int line, col;
	line_col(r, last, &line, &col);
	return sc_asprintf("the request is not valid JSON: it ends too early (line %d); "
	                   "send one JSON object, or one object per line",
	                   line);
}

/* cJSON accepted p..off: its strings must also say what the text says
 * (no NUL, no raw controls, UTF-8); else the document is refused, its tree
 * kept only so the result can name the action. */
static void refuse_bad_strings(const struct core_reader *r, const char *p, struct core_doc *doc)
{
	struct sc_error e = SC_ERROR_INIT;
	int line, col;
	line_col(r, p, &line, &col);
	if (core_json_strings_check(p, (size_t)(r->buf + r->off - p), doc->json, line, col, &e)) {
		doc->code = e.code;
		doc->error = e.message ? e.message : strdup("out of memory checking the request");
		e.message = NULL;
	}
	sc_error_clear(&e);
}

/* 1: *doc is set (a value or an error) and off is past it; 0: the text
 * so far is the start of a document. */
static int try_parse(struct core_reader *r, struct core_doc *doc)
{
	const char *p = r->buf + r->off, *end = r->buf + r->len;
	const char *stop = NULL;
	/* + 2: the sentinel. cJSON reports an error at or past the end of its
	 * buffer at the buffer's last character; with two spaces after the
	 * text, running out of text is reported at end + 1, and only that. */
	cJSON *j = cJSON_ParseWithLengthOpts(p, (size_t)(end - p) + 2, &stop, 0);
	if (j) {
		doc->json = j;
		r->parsed_any = 1;
		r->off = stop && stop > p && stop <= end ? (size_t)(stop - r->buf) : r->len;
		refuse_bad_strings(r, p, doc);
		return 1;
	}
	const char *at = cJSON_GetErrorPtr();
	if (!at || at < p)
		at = p;
	if (at > end || (at == end && !r->eof) || open_string(p, at, end)) {
		if (!r->eof)
			return 0;
		doc->code = SC_EINPUT;
		doc->error = ends_too_early(r);
	} else {
		/* At `end` only at EOF: cJSON failed on the last character
		 * itself, and without the sentinel reports it there. */
		doc->code = SC_EINPUT;
		doc->error = not_json(r, at < end ? at : end - 1);
	}
	/* JSON Lines: resume on the next line. A single broken document:
	 * one error is enough. */
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	if (r->parsed_any && nl) {
		r->off = (size_t)(nl + 1 - r->buf);
	} else {
		r->off = r->len;
		r->drain = !r->parsed_any;
	}
	return 1;
}

/* After a broken first document: read the rest of the input and drop it. */
static int drain(struct core_reader *r, struct sc_error *err)
{
	char chunk[16384];
	r->off = r->len = 0;
	while (fread(chunk, 1, sizeof chunk, r->in) > 0)
		;
	if (ferror(r->in)) {
		sc_error_set(err, SC_EIO, "cannot read the request from stdin: %s",
		             strerror(errno));
		return -1;
	}
	r->eof = 1;
	return 0;
}

int core_request_next(struct core_reader *r, struct core_doc *doc, struct sc_error *err)
{
	doc->json = NULL;
	doc->error = NULL;
	doc->code = SC_OK;
	for (;;) {
		if (r->drain)
			return drain(r, err);
		if (!r->tried)
			while (r->off < r->len && json_space(r->buf[r->off]))
				r->off++;
		if (r->off < r->len) {
			size_t have = r->len - r->off;
			if (r->tried)
				scan(r);
			if (!r->tried || r->eof || r->closed || have >= 2 * r->tried) {
				if (try_parse(r, doc)) {
					r->tried = 0;
					/* the document's text is not needed while it
					 * runs: a 50 MB body is held once, in the tree */
					compact(r);
					return 1;
				}
				if (!r->tried) {
					r->scan_pos = r->off;
					r->depth = r->in_str = r->esc = 0;
					scan(r);
				}
				r->tried = have;
				r->closed = 0;
			}
		} else if (r->eof) {
			return 0;
		}
		if (read_line(r, err) < 0)
			return -1;
	}
}
