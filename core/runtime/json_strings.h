/* The strings of a request, checked against the JSON text they came from:
 * cJSON keeps strings NUL-terminated, so "a@x\u0000, b@y" would silently
 * become "a@x"; and it accepts raw control bytes inside strings, which
 * JSON does not (RFC 8259 §7). */
#ifndef SC_JSON_STRINGS_H
#define SC_JSON_STRINGS_H

#include "core.h"

/* Checks every string of `json` (values and member names, at any depth)
 * against text[0..len), the text cJSON parsed `json` from. Refused:
 *  - a \u0000 escape (the decoded string would end early);
 *  - a raw byte 0x00-0x1F inside a string, and one other than space,
 *    tab, CR, LF between tokens;
 *  - a string that is not well-formed UTF-8.
 * `line`, `col` are the position of text[0] in the whole input (for
 * messages). SC_OK, or SC_EINPUT with a message that names the field
 * ("parameters[0].to: ...") or the position, and what to do; the message
 * is valid UTF-8 whatever the input. SC_EINTERNAL if the text is not the
 * one `json` was parsed from; SC_ENOMEM. */
int core_json_strings_check(const char *text, size_t len, const cJSON *json, int line, int col,
                            struct sc_error *err);
/* The same for a value named `root` (paths "root.key[0]"), not a request;
 * *syntax (when not NULL) says whether a refusal is of the text's syntax
 * (a raw control byte between values) rather than of a string. */
int core_json_strings_check_named(const char *text, size_t len, const cJSON *json, const char *root,
                                  int line, int col, int *syntax, struct sc_error *err);

#endif
