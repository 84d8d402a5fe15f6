/* The libcurl floor for bench/run.sh (b): N copies of one message over one
 * SMTP connection with one reused easy handle, as the connector's session
 * does, and nothing else (no JSON, no message building, no result).
 *
 *   curl_batch HOST PORT N MESSAGE_FILE [debugcb]
 *
 * "debugcb" also sets CURLOPT_VERBOSE with a no-op CURLOPT_DEBUGFUNCTION,
 * as the connector always does (it reads every reply for its transcript),
 * which makes libcurl format its informational messages.
 * Built by bench/bench.py with: cc -O2 curl_batch.c -lcurl */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct src {
	const char *data;
	size_t len, pos;
};

static size_t rd(char *buf, size_t size, size_t n, void *arg)
{
	struct src *s = arg;
	size_t k = size * n < s->len - s->pos ? size * n : s->len - s->pos;
	memcpy(buf, s->data + s->pos, k);
	s->pos += k;
	return k;
}

static int dbg(CURL *c, curl_infotype t, char *d, size_t n, void *u)
{
	(void)c, (void)t, (void)d, (void)n, (void)u;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: %s HOST PORT N MESSAGE_FILE [debugcb]\n", argv[0]);
		return 2;
	}
	FILE *f = fopen(argv[4], "rb");
	if (!f) {
		perror(argv[4]);
		return 2;
	}
	static char msg[1 << 20];
	size_t len = fread(msg, 1, sizeof msg, f);
	fclose(f);
	long n = atol(argv[3]);
	char url[256];
	snprintf(url, sizeof url, "smtp://%s:%s/localhost", argv[1], argv[2]);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	CURL *c = curl_easy_init();
	struct curl_slist *rcpt = curl_slist_append(NULL, "<rcpt@example.com>");
	struct src s = {msg, len, 0};
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, "<bench@example.com>");
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, rd);
	curl_easy_setopt(c, CURLOPT_READDATA, &s);
	curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
	if (argc > 5 && !strcmp(argv[5], "debugcb")) {
		curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
		curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, dbg);
	}
	for (long i = 0; i < n; i++) {
		s.pos = 0;
		CURLcode rc = curl_easy_perform(c);
		if (rc != CURLE_OK) {
			fprintf(stderr, "message %ld: %s\n", i, curl_easy_strerror(rc));
			return 1;
		}
	}
	curl_slist_free_all(rcpt);
	curl_easy_cleanup(c);
	curl_global_cleanup();
	return 0;
}
