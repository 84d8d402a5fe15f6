/* Reading requests from stdin: one JSON document, or JSON Lines, streamed. */
#ifndef SC_REQUEST_H
#define SC_REQUEST_H

#include "core.h"
#include <stdio.h>

struct core_doc {
	cJSON *json;       /* NULL when the text was not JSON */
	char *error;       /* why the document is refused: not JSON (json NULL),
	                    * or JSON whose strings do not say what its text says
	                    * (json_strings.h; json kept for the action's name) */
	enum sc_code code; /* with error: SC_EINPUT; SC_EINTERNAL when the
	                    * check could not be made; SC_ENOMEM */
};

/* Reads stdin a line at a time and hands out each JSON value as soon as
 * its text is complete (so both a pretty-printed object and JSON Lines
 * work, and a platform that keeps the pipe open gets each answer before it
 * writes the next request). Memory holds one document, not the batch. */
struct core_reader {
	FILE *in;
	char *buf; /* unconsumed input, whole lines, then "  " and a NUL */
	size_t len, cap;
	size_t off; /* where the next document starts */
	char *line; /* getline's buffer */
	size_t linecap;
	int line_no, col; /* position of buf[0] in the whole input, 1-based */
	int eof;          /* nothing more to read */
	int drain;        /* a single broken document: discard the rest */
	int parsed_any;   /* a document parsed: JSON Lines resume after a bad line */
	/* A document spanning lines: cJSON is tried again only when a bracket
	 * closes at depth 0 or the text has doubled since the last try, so a
	 * long pretty-printed document costs linear, not quadratic, time. */
	size_t tried;    /* bytes from off at the last incomplete try; 0: none */
	size_t scan_pos; /* bytes before this are scanned */
	int depth, in_str, esc, closed;
};

void core_reader_init(struct core_reader *r, FILE *in);
/* The next document: 1 and *doc (json, or error for text that is not
 * JSON; release it with core_doc_release), 0 at the end of the input, or -1
 * with err set (SC_EIO, SC_ENOMEM). A broken JSON Lines line becomes one
 * error document and reading resumes on the next line; a broken first
 * document is the only one (the rest of the input is read and dropped);
 * text that ends inside a document is an error ("ends too early"). */
int core_request_next(struct core_reader *r, struct core_doc *doc, struct sc_error *err);
void core_doc_release(struct core_doc *doc);
/* Whether core_request_next can go on without waiting for the input:
 * text is buffered (here or in stdio) or the input has ended. */
int core_reader_ready(const struct core_reader *r);
void core_reader_release(struct core_reader *r);

#endif
