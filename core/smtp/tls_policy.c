/* TLS verification as the asset says, for the SMTP session and for the
 * HTTP requests plugins make (OAuth token endpoints) alike, and as a
 * sink's settings say for the requests it makes (no asset there). */
#include "core.h"

#include <curl/curl.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef CA_DIR
#define CA_DIR "/etc/ssl/certs"
#endif

/* The rules shared by assets and sinks: TLS 1.2 at least, verification
 * on unless turned off, the system CA directory, and an optional CA file
 * whose setting is named `field` in the error. */
static int tls_rules(CURL *c, const char *ca, int verify, const char *field,
		     struct sc_error *err)
{
	curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (!verify) {
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
	if (ca) {
		if (access(ca, R_OK))
			return sc_error_set(err, SC_EINPUT, "%s: cannot read %s: %s; give a readable PEM file",
					    field, ca, strerror(errno));
		curl_easy_setopt(c, CURLOPT_CAINFO, ca);
	}
	return SC_OK;
}

int core_tls_policy(const struct sc_ctx *ctx, void *curl, struct sc_error *err)
{
	return tls_rules(curl, sc_asset_string(ctx, "ca_file"),
			 sc_asset_bool(ctx, "verify_server_cert", 1), "asset.ca_file", err);
}

/* HTTP requests also get the timeout, no redirects (a bearer or secret
 * must not follow one) and no .netrc. */
static void http_rules(CURL *c, double timeout)
{
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NETRC, (long)CURL_NETRC_IGNORED);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout * 1000));
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
}

int sc_http_apply_policy(const struct sc_ctx *ctx, void *curl_easy, struct sc_error *err)
{
	http_rules(curl_easy, sc_asset_double(ctx, "timeout", 30));
	return core_tls_policy(ctx, curl_easy, err);
}

int sc_http_tls_policy(void *curl_easy, const char *ca_file, int verify, double timeout,
		       struct sc_error *err)
{
	http_rules(curl_easy, timeout > 0 ? timeout : 30);
	return tls_rules(curl_easy, ca_file && *ca_file ? ca_file : NULL, verify, "ca_file", err);
}
