/* The Mustache tokenizer (scan.c), used by compile.c only. */
#ifndef SC_TEMPLATE_SCAN_H
#define SC_TEMPLATE_SCAN_H

#include <stddef.h>

#include "template_int.h"

/* Where the tokenizer is, and the delimiters in force (pointing at the
 * defaults or into the source). */
struct tpl_scan {
	const char *src;
	size_t len, pos;
	const char *open, *close;
	size_t open_n, close_n;
	size_t pair_at, pair_next; /* a pair's second tag, and where after it to go on */
};

/* One tag as written. `type` is 0 for {{name}}, else the character after
 * the opening delimiter: { & # ^ / ! > = $ <. */
struct tpl_tag {
	char type;
	const char *name; /* trimmed content; after the '*' when dynamic */
	size_t n;
	int dynamic;
	size_t start, end;  /* the tag's bytes in the source */
	int standalone;     /* the whole line was removed */
	const char *indent; /* when standalone: the whitespace before the tag */
	size_t indent_n;
};

enum { TPL_SCAN_END = -1, TPL_SCAN_TAG = -2 };

void tpl_scan_init(struct tpl_scan *s, const char *src, size_t len);
/* The text before the next tag is [*text_start, *text_end); then either
 * TPL_SCAN_TAG with *t filled, TPL_SCAN_END (no more tags), or an error
 * code with err set (naming line and column). */
int tpl_scan_next(struct tpl_scan *s, size_t *text_start, size_t *text_end, struct tpl_tag *t,
                  struct sc_error *err);

/* ~inheritance: a tag the spec counts as standalone together with the
 * tag right after it on the same line ({{<parent}}{{/parent}},
 * {{<parent}}{{$block}}, {{$block}}{{/block}}, {{/block}}{{/parent}}).
 * When the next tag is of one of `types` and the two alone fill their
 * line, marks *t standalone, moves *text_end back to the line's start
 * and removes the line end after the second (unless keep_line_end).
 * `text_start` is where the text before *t began. 1 if so, else 0. */
int tpl_scan_pair(struct tpl_scan *s, size_t text_start, struct tpl_tag *t, const char *types,
                  int keep_line_end, size_t *text_end);

#endif
