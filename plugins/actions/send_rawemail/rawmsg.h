/*
 * The header section of a complete message given as text (send rawemail).
 *
 * The parser only records where each header field starts and ends, so
 * the action can read a field (unfolded), and drop fields (Bcc) while
 * every other byte goes out exactly as given. It never rewrites, re-folds
 * or decodes anything.
 *
 * Line endings are LF, CRLF or a bare CR, the same three the message
 * layer turns into CRLF on the wire (core/message/message.c), so the fields seen
 * here are the fields the server sees.
 *
 * Errors follow <smtp-connector/plugin.h>: SC_EINPUT with a message that
 * names the line ("line 3 ..."), SC_ENOMEM.
 */
#ifndef SC_RAWMSG_H
#define SC_RAWMSG_H

#include <stddef.h>

#include <smtp-connector/plugin.h>

struct rawmsg_field {
	size_t start;    /* offset of the field name's first byte */
	size_t end;      /* just past the last line ending of the field
			    (continuation lines included) */
	size_t name_len; /* the name, without blanks before the ':' */
	size_t value;    /* just past the ':' */
	size_t line;     /* 1-based line number of the field's first line */
};

struct rawmsg {
	const char *text;       /* borrowed: the text given to rawmsg_parse */
	size_t len;
	struct rawmsg_field *f; /* in order of appearance */
	size_t n;
	size_t body;            /* offset of the body (past the empty line);
				   == len when the message has no body */
	int header_8bit;        /* a byte >= 0x80 in the header section */
	int body_8bit;          /* a byte >= 0x80 in the body */
};

/*
 * The `\n` rule of send rawemail (as the SOAR app, minus its damage): when
 * the text contains no line break at all (no LF, no CR), every two-byte
 * sequence backslash + 'n' becomes a newline, so someone typing into a
 * one-line UI field can write "From: a@x\nTo: b@y\n\nHello". A text that
 * has a real line break is a real multi-line message and is left alone,
 * so "C:\new" in it survives (the SOAR app replaced `\n` everywhere).
 * Works in place (the text only shrinks); returns the new length.
 */
size_t rawmsg_expand_newlines(char *text, size_t len);

/*
 * Split the header section of `text` into fields. Header fields are
 * `Name: value` (a name of printable ASCII without ':', optionally
 * followed by blanks before the ':') and continuation lines that start
 * with a space or a tab. The first empty line ends the headers; without
 * one the whole text is headers. Anything else in the header section
 * (a line without ':', a continuation line before the first field, a line
 * of only blanks) is an error naming the line: guessing where the
 * headers end would send a different message from the one meant.
 * `out` borrows `text`; free it with rawmsg_free(), also after failure.
 */
int rawmsg_parse(const char *text, size_t len, struct rawmsg *out, struct sc_error *err);
void rawmsg_free(struct rawmsg *m);

/* True when field `i` is named `name` (ASCII case-insensitive). */
int rawmsg_is(const struct rawmsg *m, size_t i, const char *name);
/* Index of the first field named `name` at or after `from`, or m->n. */
size_t rawmsg_find(const struct rawmsg *m, const char *name, size_t from);
/* The value of field `i` unfolded (line endings removed, RFC 5322
 * §2.2.3) with leading and trailing blanks trimmed, NUL-terminated, its
 * length in *vlen when vlen is not NULL (the value itself may hold a NUL
 * byte); NULL when out of memory. The caller frees it. */
char *rawmsg_value(const struct rawmsg *m, size_t i, size_t *vlen);
/* The whole text without the fields for which `drop` is true (each with
 * all its continuation lines); every other byte as given. NULL when out
 * of memory. The caller frees it; *outlen is its length. */
char *rawmsg_without(const struct rawmsg *m,
		     int (*drop)(const struct rawmsg *m, size_t i, void *arg),
		     void *arg, size_t *outlen);

#endif
