// clang-format off
// fuzz-sources: core/message/sig_canon.c core/message/signature.c core/runtime/private_file.c core/runtime/buf.c core/runtime/error.c core/runtime/log.c
// fuzz-pkgs: libcrypto
// clang-format on
/* libFuzzer target for what `smtp-connector verify` and serve's
 * require_signature read from untrusted mail (core/message/sig_canon.c,
 * signature.c): the message as a stream (header section and body), header
 * unfolding, the signature header's tag parser, and the verdict. Build as
 * tests/run.sh does, e.g.:
 *   clang -g -fsanitize=fuzzer,address,undefined -Iinclude -Icore/runtime \
 *     -Icore/message tests/fuzz/fuzz_verify.c core/message/sig_canon.c \
 *     core/message/signature.c core/runtime/buf.c core/runtime/error.c \
 *     core/runtime/log.c $(pkg-config --cflags --libs libcjson libcrypto)
 *   ./a.out tests/fuzz/corpus/verify
 *
 * Beyond "no crash, no leak", it checks:
 *  - the stream reader gives the same header section and body digest
 *    whatever the sizes of the pieces it is fed (split at a fuzzed point);
 *  - the header section is bounded and has no bare LF;
 *  - an unfolded value has no CR or LF and no blank at either end;
 *  - parsed tags hold no blank and no ';'; a refusal says why, printably;
 *  - a verdict always has a reason without control characters, and a
 *    message the fuzzer made is never valid under a key it cannot know
 *    (unless it is a copy of one signed here: none is). */
#include "signature.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "fuzz_verify: %s\n", what);
		abort();
	}
}

static void feed(struct sig_reader *r, const char *p, size_t n, size_t split)
{
	sig_reader_feed(r, p, split);
	sig_reader_feed(r, p + split, n - split);
}

static void printable(const char *s, const char *what)
{
	check(*s != '\0', what);
	for (; *s; s++)
		check((unsigned char)*s >= 0x20 && *s != 0x7f, what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t split = data[0] % (size);
	const char *msg = (const char *)data + 1;
	size_t n = size - 1;
	if (split > n)
		split = n;

	struct sig_reader a, b;
	check(!sig_reader_init(&a) && !sig_reader_init(&b), "init");
	sig_reader_feed(&a, msg, n);
	feed(&b, msg, n, split);
	check(a.in_body == b.in_body && a.too_big == b.too_big, "split changes the reading");
	check(a.head.len == b.head.len && (!a.head.len || !memcmp(a.head.p, b.head.p, a.head.len)),
	      "split changes the header section");
	check(a.head.len <= SIG_HEADERS_MAX, "header section over the bound");
	for (size_t i = 0; i < a.head.len; i++)
		check(a.head.p[i] != '\n' || (i && a.head.p[i - 1] == '\r'), "bare LF kept");

	if (a.head.len) {
		static const char *const names[] = {"from", "subject", SIG_HEADER, "x"};
		for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
			size_t count = 0, vlen = 0;
			char *v = sig_header_value(a.head.p, a.head.len, names[k], &count, &vlen);
			check((v != NULL) == (count > 0), "value iff counted");
			if (v) {
				check(!memchr(v, '\r', vlen) && !memchr(v, '\n', vlen),
				      "CR/LF in value");
				check(!vlen || (v[0] != ' ' && v[0] != '\t' && v[vlen - 1] != ' ' &&
				                v[vlen - 1] != '\t'),
				      "value not trimmed");
			}
			free(v);
		}
	}

	struct sig_tags t;
	char why[128] = "";
	if (!sig_tags_parse(msg, n, &t, why, sizeof why)) {
		const char *vals[] = {t.v, t.a, t.t, t.bh, t.h, t.hh, t.b};
		for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++)
			check(!vals[k] || !strpbrk(vals[k], " \t\r\n;"), "blank or ';' in a tag");
		sig_tags_free(&t);
	} else {
		printable(why, "tag refusal without a printable reason");
	}

	struct sig_verdict va, vb;
	sig_verify(&a, "fuzz key", &va);
	sig_verify(&b, "fuzz key", &vb);
	check(va.status == vb.status && !strcmp(va.reason, vb.reason), "split changes the verdict");
	check(va.status != SIG_VALID, "a fuzzed message verified");
	printable(va.reason, "verdict without a printable reason");
	sig_reader_free(&a);
	sig_reader_free(&b);
	return 0;
}
