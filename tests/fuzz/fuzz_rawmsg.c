// clang-format off
// fuzz-sources: core/message/rawmsg.c core/message/text.c core/runtime/error.c core/runtime/buf.c core/runtime/log.c core/runtime/utf8.c
// clang-format on
/* libFuzzer target for the raw-message header splitter of send rawemail
 * (core/message/rawmsg.c). Build, e.g.:
 *   clang -g -fsanitize=fuzzer,address,undefined -Iinclude -Icore/runtime \
 *     $(pkg-config --cflags libcjson) tests/fuzz/fuzz_rawmsg.c \
 *     core/message/rawmsg.c core/message/text.c core/runtime/error.c core/runtime/buf.c
 * core/runtime/log.c
 *   ./a.out tests/fuzz/corpus/rawmsg
 *
 * Beyond "no crash, no leak", it checks what the action relies on:
 *  - fields are in order, inside the header section, and do not overlap;
 *    each starts with its name and has a ':' right after name + blanks;
 *  - the header section is exactly the fields plus the empty line, so
 *    dropping fields removes exactly their bytes and nothing else;
 *  - an unfolded value never holds CR or LF (it goes to the address
 *    parser, which would call a line break header injection);
 *  - an error has a message naming a line;
 *  - the `\n` rule never grows the text and is a no-op on text with a
 *    real line break;
 *  - a parsed message has no line over 998 octets (headers or body);
 *  - made CRLF first (as send rawemail does), dropping fields leaves a
 *    message that parses again with the other fields and the same body:
 *    no bare CR and bare LF around a dropped field merge into the
 *    header/body separator. */
#include "core.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "fuzz_rawmsg: %s\n", what);
		abort();
	}
}

static int drop_odd(const struct sc_rawmsg *m, size_t i, void *arg)
{
	(void)m;
	(void)arg;
	return i % 2 == 1;
}

static void check_fields(const struct sc_rawmsg *m)
{
	size_t prev = 0, kept = m->len;
	for (size_t i = 0; i < m->n; i++) {
		const struct sc_rawmsg_field *f = &m->f[i];
		check(f->start == prev, "fields are contiguous from offset 0");
		check(f->start < f->end && f->end <= m->body, "field inside the header section");
		check(f->name_len > 0 && f->value > f->start + f->name_len, "name before value");
		check(m->text[f->value - 1] == ':', "':' ends the name");
		prev = f->end;
		if (i % 2 == 1)
			kept -= f->end - f->start;
		size_t vlen = 0;
		char *v = sc_rawmsg_value(m, i, &vlen);
		check(v != NULL, "value allocated");
		check(!memchr(v, '\r', vlen) && !memchr(v, '\n', vlen), "unfolded");
		check(v[vlen] == '\0', "terminated");
		free(v);
	}
	/* between the last field and the body: nothing (no empty line, so no
	 * body), or exactly the empty line's one line ending */
	size_t gap = m->body - prev;
	const char *g = m->text + prev;
	check(gap == 0
	          ? m->body == m->len
	          : (gap == 1 && (*g == '\n' || *g == '\r')) || (gap == 2 && !memcmp(g, "\r\n", 2)),
	      "the header section is the fields plus the empty line");
	size_t olen = 0;
	char *o = sc_rawmsg_without(m, drop_odd, NULL, &olen);
	check(o != NULL && olen == kept, "dropping removes exactly the fields' bytes");
	check(memcmp(o + olen - (m->len - m->body), m->text + m->body, m->len - m->body) == 0,
	      "body unchanged");
	free(o);
}

static void check_line_lengths(const struct sc_rawmsg *m)
{
	size_t col = 0;
	for (size_t i = 0; i < m->len; i++) {
		if (m->text[i] == '\r' || m->text[i] == '\n')
			col = 0;
		else
			check(++col <= 998, "no line over 998 octets");
	}
}

/* The send rawemail path: CRLF, parse, drop every other field, parse again. */
static void check_crlf_drop(const char *t, size_t len)
{
	struct sc_buf b = {0};
	check(sc_buf_add_crlf(&b, t, len) == SC_OK, "normalised");
	check(!memchr(b.p, '\n', b.len) || b.len >= 2, "sane");
	struct sc_rawmsg m, again;
	struct sc_error err = SC_ERROR_INIT;
	if (sc_rawmsg_parse(b.p, b.len, &m, &err) == SC_OK) {
		size_t olen = 0, nkept = m.n - m.n / 2;
		char *o = sc_rawmsg_without(&m, drop_odd, NULL, &olen);
		check(o != NULL, "dropped");
		check(sc_rawmsg_parse(o, olen, &again, &err) == SC_OK, "still parses");
		check(again.n == nkept, "the other fields stay fields");
		check(again.len - again.body == m.len - m.body &&
		          !memcmp(again.text + again.body, m.text + m.body, m.len - m.body),
		      "the body stays the body");
		sc_rawmsg_free(&again);
		free(o);
	}
	sc_error_clear(&err);
	sc_rawmsg_free(&m);
	sc_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *t = malloc(size + 1);
	if (!t)
		return 0;
	memcpy(t, data, size);
	t[size] = '\0';
	int multi = memchr(t, '\n', size) || memchr(t, '\r', size);
	size_t len = sc_rawmsg_expand_newlines(t, size);
	check(len <= size, "expansion never grows");
	check(!multi || (len == size && memcmp(t, data, size) == 0), "no-op with real newlines");

	struct sc_rawmsg m;
	struct sc_error err = SC_ERROR_INIT;
	int rc = sc_rawmsg_parse(t, len, &m, &err);
	if (rc == SC_OK) {
		check_fields(&m);
		check_line_lengths(&m);
	} else {
		check(rc == SC_EINPUT && err.message && strncmp(err.message, "line ", 5) == 0,
		      "an error names the line");
	}
	check_crlf_drop(t, len);
	sc_error_clear(&err);
	sc_rawmsg_free(&m);
	free(t);
	return 0;
}
