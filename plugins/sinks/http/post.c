/* One POST and what it means for the message: only 2xx is delivered;
 * 5xx, 408, 429 and transport trouble are worth retrying; any other
 * answer is a refusal that retrying will not change. */
#include "http_sink.h"

#include <curl/curl.h>
#include <smtp-connector/message.h>
#include <stdlib.h>
#include <string.h>

/* What the reason file quotes of a refusal's body: enough to see the
 * endpoint's complaint, bounded because the endpoint is untrusted. */
#define BODY_EXCERPT 300

_Static_assert(HS_ERRBUF >= CURL_ERROR_SIZE, "hs_transfer.errbuf is libcurl's error buffer");

static size_t keep_excerpt(char *data, size_t size, size_t n, void *arg)
{
	struct sc_buf *b = arg;
	size_t len = size * n;
	if (b->len < BODY_EXCERPT) {
		size_t take = BODY_EXCERPT - b->len < len ? BODY_EXCERPT - b->len : len;
		if (sc_buf_add(b, data, take))
			return 0;
	}
	return len;
}

static int stop_check(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	(void)dt, (void)dn, (void)ut, (void)un;
	const _Atomic long long *stop_at = arg;
	long long at = atomic_load(stop_at);
	return at && hs_now_ms() >= at;
}

void *hs_curl_new(const struct hs_config *cfg, const _Atomic long long *stop_at,
                  struct sc_error *err)
{
	CURL *c = curl_easy_init();
	if (!c) {
		sc_error_set(err, SC_ENOMEM, "cannot create a libcurl handle");
		return NULL;
	}
	if (sc_http_tls_policy(c, cfg->ca_file, cfg->verify, cfg->timeout, err)) {
		curl_easy_cleanup(c);
		return NULL;
	}
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_excerpt);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, stop_check);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)stop_at);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	return c;
}

void hs_curl_free(void *curl)
{
	if (curl)
		curl_easy_cleanup(curl);
}

static int retryable_status(long s)
{
	return s >= 500 || s == 408 || s == 429;
}

/* A request that cannot be made as configured will not work later. */
static int permanent_curl_error(CURLcode rc)
{
	return rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL ||
	       rc == CURLE_NOT_BUILT_IN;
}

static void judge_status(CURL *c, long status, struct sc_buf *excerpt, struct hs_outcome *out)
{
	out->status = status;
	if (status >= 200 && status <= 299) {
		out->result = HS_DELIVERED;
		out->reason = sc_asprintf("HTTP %ld", status);
		return;
	}
	if (retryable_status(status)) {
		curl_off_t ra = -1;
		if (curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
			out->retry_after = (long)ra;
		out->result = HS_RETRY;
		out->reason = sc_asprintf("HTTP %ld", status);
		return;
	}
	/* the refusal's body as one printable line */
	char *body = sc_str_one_line(sc_buf_take(excerpt));
	out->result = HS_REFUSED;
	out->reason = sc_asprintf("HTTP %ld%s%s%s", status,
	                          status >= 300 && status < 400 ? " (redirects are not followed: "
	                                                          "set url to the final address)"
	                                                        : "",
	                          body && *body ? ": " : "", body ? body : "");
	free(body);
}

void hs_post_setup(void *curl, const struct hs_request *req, struct hs_transfer *t)
{
	CURL *c = curl;
	t->excerpt = (struct sc_buf){0};
	t->errbuf[0] = '\0';
	curl_easy_setopt(c, CURLOPT_URL, req->url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, req->headers);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &t->excerpt);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, t->errbuf);
}

void hs_post_judge(void *curl, int result, struct hs_transfer *t, struct hs_outcome *out)
{
	CURL *c = curl;
	CURLcode rc = (CURLcode)result;
	memset(out, 0, sizeof *out);
	out->retry_after = -1;
	/* nothing of the request or of t stays referenced by the handle */
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, NULL);
	if (rc == CURLE_OK) {
		long status = 0;
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		judge_status(c, status, &t->excerpt, out);
	} else {
		out->result = rc == CURLE_ABORTED_BY_CALLBACK ? HS_ABORTED
		              : permanent_curl_error(rc)      ? HS_REFUSED
		                                              : HS_RETRY;
		out->reason = sc_asprintf("%s", *t->errbuf ? t->errbuf : curl_easy_strerror(rc));
	}
	sc_buf_free(&t->excerpt);
}

void hs_post(void *curl, const struct hs_request *req, struct hs_outcome *out)
{
	struct hs_transfer t;
	hs_post_setup(curl, req, &t);
	hs_post_judge(curl, curl_easy_perform(curl), &t, out);
}
