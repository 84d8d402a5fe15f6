// clang-format off
// fuzz-sources: core/serve/smtp_cmd.c core/runtime/utf8.c
// clang-format on
/* libFuzzer target for serve's command-line parser (core/serve/smtp_cmd.c).
 * Build, e.g.:
 *   clang -g -fsanitize=fuzzer,address,undefined -Icore/serve \
 *     tests/fuzz/fuzz_smtp_command.c core/serve/smtp_cmd.c
 *   ./a.out tests/fuzz/corpus/smtp_command
 *
 * Beyond "no crash, no leak", it checks what the session relies on:
 *  - a reply code is 5xx or 451 with an enhanced status text;
 *  - a parsed MAIL/RCPT path is at most 256 octets with <>, holds no
 *    control character, CR, LF or NUL (it goes into the Maildir's
 *    Return-Path and Delivered-To lines: no header injection), and no
 *    space outside a quoted local part;
 *  - the argument lies inside the line. */
#include "smtp_cmd.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "fuzz_smtp_command: %s\n", what);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size copy so ASan sees any read past the line */
	char *line = malloc(size ? size : 1);
	if (!line)
		return 0;
	memcpy(line, data, size);
	struct serve_cmd c;
	const char *why = NULL;
	int code = serve_cmd_parse(line, size, &c, &why);
	if (code) {
		check((code >= 500 && code < 600) || code == 451, "a 5xx (or 451) code");
		check(why && (why[0] == '5' || why[0] == '4') && why[1] == '.',
		      "enhanced status text");
		check(c.path == NULL, "no path on failure");
	} else {
		check(c.verb != SV_UNKNOWN, "a verb");
		check(c.arg_len == 0 || (c.arg >= line && c.arg + c.arg_len <= line + size),
		      "argument inside the line");
		if (c.verb == SV_MAIL || c.verb == SV_RCPT) {
			check(c.path != NULL, "a path");
			size_t n = strlen(c.path);
			check(n + 2 <= SERVE_PATH_MAX, "path length");
			int quoted = 0;
			for (size_t i = 0; i < n; i++) {
				unsigned char ch = (unsigned char)c.path[i];
				check(ch >= 0x20 && ch != 0x7f, "no control character in a path");
				if (quoted && ch == '\\' && i + 1 < n)
					i++; /* a quoted pair */
				else if (ch == '"')
					quoted = !quoted;
				else
					check(quoted || ch != ' ', "no space outside quotes");
			}
			check(c.verb == SV_MAIL || n > 0, "RCPT path not empty");
		}
	}
	serve_cmd_clear(&c);
	free(line);
	return 0;
}
