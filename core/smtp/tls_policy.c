/* TLS verification as the asset says, for the SMTP session and for the
 * HTTP requests plugins make (OAuth token endpoints) alike. */
#include "ctx.h"

#include <curl/curl.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef CA_DIR
#define CA_DIR "/etc/ssl/certs"
#endif

int core_tls_policy(const struct sc_ctx *ctx, void *curl, struct sc_error *err)
{
	CURL *c = curl;
	curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (!ctx->cfg.verify_server_cert) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
		return SC_OK;
	}
	/* A hashed CA directory is searched lazily; loading the whole bundle
	 * file costs tens of milliseconds per process. */
	struct stat st;
	if (stat(CA_DIR, &st) == 0 && S_ISDIR(st.st_mode)) {
		curl_easy_setopt(c, CURLOPT_CAPATH, CA_DIR);
		curl_easy_setopt(c, CURLOPT_CAINFO, NULL);
	}
	const char *ca = ctx->cfg.ca_file;
	if (ca) {
		if (access(ca, R_OK))
			return sc_error_set(err, SC_EINPUT, "asset.ca_file: cannot read %s: %s; give a readable PEM file",
					    ca, strerror(errno));
		curl_easy_setopt(c, CURLOPT_CAINFO, ca);
	}
	return SC_OK;
}

/* HTTP requests from plugins also get the timeout, no redirects (a bearer
 * or secret must not follow one) and no .netrc. */
int sc_http_apply_policy(const struct sc_ctx *ctx, void *curl_easy, struct sc_error *err)
{
	CURL *c = curl_easy;
	double t = ctx->cfg.timeout;
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NETRC, (long)CURL_NETRC_IGNORED);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(t * 1000));
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(t * 1000));
	return core_tls_policy(ctx, c, err);
}
