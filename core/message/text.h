/* Internal side of text.c (the public helpers are in message.h). */
#ifndef SC_TEXT_H
#define SC_TEXT_H

#include "core.h"

/* Length of `s` once sc_buf_add_crlf() has made its line breaks CRLF. */
size_t core_crlf_len(const char *s, size_t len);

#endif
