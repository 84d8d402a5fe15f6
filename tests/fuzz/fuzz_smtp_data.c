// clang-format off
// fuzz-sources: core/serve/data_reader.c core/runtime/buf.c core/runtime/error.c core/runtime/log.c
// clang-format on
/* libFuzzer target for serve's DATA reader (core/serve/data_reader.c).
 * Build, e.g.:
 *   clang -g -fsanitize=fuzzer,address,undefined -Iinclude -Icore/runtime \
 *     -Icore/serve -Ibuild $(pkg-config --cflags libcjson) tests/fuzz/fuzz_smtp_data.c \
 *     core/serve/data_reader.c core/runtime/buf.c core/runtime/error.c \
 *     core/runtime/log.c -lcrypto
 *   ./a.out tests/fuzz/corpus/smtp_data
 *
 * The first input byte picks a chunk size; the rest is the byte stream
 * after "354". Checked against a whole-buffer oracle written the plain
 * way (line by line):
 *  - the same verdict (more / end / fatal), the same bytes taken and the
 *    same message bytes (a line's text is passed on before its end),
 *    whatever the chunking (the end marker and a CR
 *    may straddle reads);
 *  - the end is only ever <CRLF>.<CRLF>; a bare LF, a bare CR or a NUL
 *    is fatal, at the offending byte;
 *  - with limits, the size counted is the same and nothing is kept once
 *    a limit is passed. */
#include "data_reader.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "fuzz_smtp_data: %s\n", what);
		abort();
	}
}

struct verdict {
	enum serve_data_status st;
	size_t used;
	enum serve_data_error err;
};

/* The oracle: lines ending in CRLF; "." alone ends; a leading dot is dropped. */
static struct verdict oracle(const char *in, size_t n, struct sc_buf *out)
{
	struct verdict v = {SD_MORE, n, SD_OK};
	size_t i = 0;
	while (i < n) {
		size_t j = i;
		while (j < n && in[j] != '\r' && in[j] != '\n' && in[j] != '\0')
			j++;
		/* the reader passes on a line's text as it comes, before its end */
		size_t skip = in[i] == '.' ? 1 : 0;
		if (j > i + skip)
			sc_buf_add(out, in + i + skip, j - i - skip);
		if (j == n)
			break; /* an unfinished line: more to come */
		if (in[j] == '\n' || in[j] == '\0') {
			v.st = SD_FATAL;
			v.used = j;
			v.err = in[j] == '\n' ? SD_BARE_LF : SD_NUL;
			return v;
		}
		if (j + 1 == n)
			break; /* CR last: its LF may come */
		if (in[j + 1] != '\n') {
			v.st = SD_FATAL;
			v.used = j + 1;
			v.err = SD_BARE_CR;
			return v;
		}
		if (j - i == 1 && in[i] == '.') {
			v.st = SD_END;
			v.used = j + 2;
			return v;
		}
		sc_buf_add(out, "\r\n", 2);
		i = j + 2;
	}
	return v;
}

static struct verdict feed(const char *in, size_t n, size_t chunk, unsigned long long max_size,
                           size_t max_line, struct sc_buf *out, unsigned long long *counted,
                           enum serve_data_error *soft)
{
	struct serve_data_reader r;
	serve_data_init(&r, max_size, max_line);
	struct verdict v = {SD_MORE, 0, SD_OK};
	size_t off = 0;
	while (off < n) {
		size_t len = n - off < chunk ? n - off : chunk, used = 0;
		enum serve_data_status st = serve_data_feed(&r, in + off, len, &used, out);
		check(st != SD_NOMEM, "no allocation failure expected");
		check(used <= len, "used within the chunk");
		off += used;
		if (st != SD_MORE) {
			check(st == SD_END || r.error >= SD_BARE_LF, "fatal means a fatal error");
			v.st = st;
			break;
		}
		check(used == len, "SD_MORE takes everything");
	}
	v.used = off;
	v.err = r.error;
	*counted = r.size;
	*soft = r.error;
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t chunk = (size_t)(data[0] % 17) + 1;
	const char *in = (const char *)data + 1;
	size_t n = size - 1;
	struct sc_buf want = {0}, got = {0}, whole = {0}, limited = {0};
	struct verdict o = oracle(in, n, &want);
	unsigned long long counted = 0, counted2 = 0;
	enum serve_data_error soft = SD_OK, soft2 = SD_OK;
	struct verdict c = feed(in, n, chunk, 0, 0, &got, &counted, &soft);
	struct verdict w = feed(in, n, n ? n : 1, 0, 0, &whole, &counted, &soft);
	check(c.st == o.st && w.st == o.st, "verdict as the oracle's");
	if (o.st != SD_MORE)
		check(c.used == o.used && w.used == o.used, "bytes taken as the oracle's");
	if (o.st == SD_FATAL)
		check(c.err == o.err, "the same fatal error");
	check(got.len == want.len && (!want.len || memcmp(got.p, want.p, want.len) == 0),
	      "message bytes as the oracle's (chunked)");
	check(whole.len == want.len && (!want.len || memcmp(whole.p, want.p, want.len) == 0),
	      "message bytes as the oracle's (one read)");
	/* limits: same size counted; bytes kept only while within them */
	unsigned long long max = n / 3 + 1;
	struct verdict l = feed(in, n, chunk, max, 80, &limited, &counted2, &soft2);
	check(l.st == o.st, "limits do not change where the message ends");
	check(counted2 == counted, "size counted regardless of limits");
	check(limited.len <= max && limited.len <= got.len, "nothing kept past the size limit");
	if (soft2 == SD_OK)
		check(limited.len == got.len, "within limits everything is kept");
	sc_buf_free(&want);
	sc_buf_free(&got);
	sc_buf_free(&whole);
	sc_buf_free(&limited);
	return 0;
}
