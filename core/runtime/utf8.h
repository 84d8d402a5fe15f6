/* UTF-8 well-formedness (RFC 3629, Unicode §3.9 table 3-7): the one
 * validator of the tree. Internal to the core; any part of it (request
 * checks, result, message building) includes this. */
#ifndef SC_UTF8_H
#define SC_UTF8_H

#include <stddef.h>

/* The length (1-4) of the well-formed sequence at s[0..len), or 0 when the
 * bytes there are not one (len 0 included). Overlong forms, surrogates
 * (U+D800..U+DFFF) and values past U+10FFFF are ill-formed. */
size_t sc_utf8_len(const void *text, size_t n); /* also in message.h */

/* 1 when s[0..len) is well-formed UTF-8 (a NUL byte is U+0000, well
 * formed: callers that must refuse NUL check for it themselves); else 0
 * and, when bad_offset is not NULL, the offset of the first byte that
 * does not begin a well-formed sequence. */
int core_utf8_valid(const char *s, size_t len, size_t *bad_offset);

/* A copy of s[0..len), NUL-terminated, in which each maximal ill-formed
 * subpart (Unicode §3.9, "U+FFFD substitution of maximal subparts", as
 * WHATWG's decoder and Python's errors="replace" do) is replaced by U+FFFD
 * (EF BF BD); well-formed input is copied unchanged. The caller frees it
 * with free(). *out_len (may be NULL) is its length. NULL when out of
 * memory. */
char *core_utf8_sanitize(const char *s, size_t len, size_t *out_len);

#endif
