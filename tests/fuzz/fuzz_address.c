// clang-format off
// fuzz-sources: core/message/address.c core/runtime/error.c core/runtime/buf.c core/runtime/log.c core/message/text.c core/runtime/utf8.c
// clang-format on
/* libFuzzer target for sc_address_list_parse(): whatever the bytes, the
 * parser either fails with a message or returns addresses that are safe
 * to put into MAIL FROM/RCPT TO and a header: an '@', no CR/LF or other
 * control byte, well-formed UTF-8 (rule 1 of address.c), and no leaks. */
#include "core.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int has_ctl(const char *s, int tab_ok)
{
	for (; s && *s; s++)
		if (((unsigned char)*s < 0x20 && !(tab_ok && *s == '\t')) || *s == 0x7f)
			return 1;
	return 0;
}

/* Well-formed UTF-8, checked independently of address.c's own check
 * (no overlongs, no surrogates, nothing above U+10FFFF). */
static int utf8_ok(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	while (s && *s) {
		unsigned c = *s, n = c < 0x80   ? 0
		                     : c < 0xc2 ? 9
		                     : c < 0xe0 ? 1
		                     : c < 0xf0 ? 2
		                     : c < 0xf5 ? 3
		                                : 9;
		uint32_t cp = n == 0 ? c : c & (0x3f >> n);
		if (n == 9)
			return 0;
		for (unsigned i = 1; i <= n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		s += n + 1;
	}
	return 1;
}

static void check(const struct sc_address *a)
{
	if (!a->addr || !strchr(a->addr, '@') || has_ctl(a->addr, 0) ||
	    /* a TAB is legal in a quoted display name (RFC 5322 FWS) */
	    has_ctl(a->display, 1) || (a->display && !*a->display) || !utf8_ok(a->addr) ||
	    !utf8_ok(a->display))
		abort();
	/* Spaces only inside a quoted local part. */
	if (strchr(a->addr, ' ') && a->addr[0] != '"')
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sc_address_list l, u = {NULL, 0};
	struct sc_error err = SC_ERROR_INIT;

	/* `data` is not NUL-terminated: ASan catches any read past size. */
	int rc = sc_address_list_parse((const char *)data, size, &l, &err);
	if (rc == SC_OK) {
		if (err.message || (l.n && !l.v))
			abort();
		for (size_t i = 0; i < l.n; i++) {
			check(&l.v[i]);
			(void)sc_address_is_utf8(&l.v[i]);
			if (sc_address_list_add_unique(&u, &l.v[i]) != SC_OK)
				abort();
		}
		if (u.n > l.n)
			abort();
	} else if (!err.message || (int)err.code != rc || l.n || l.v || has_ctl(err.message, 1)) {
		abort();
	}
	sc_address_list_free(&l);
	sc_address_list_free(&u);
	sc_error_clear(&err);
	return 0;
}
