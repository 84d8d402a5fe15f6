/* TLS verification as the asset says, for the SMTP session and for the
 * HTTP requests plugins make (OAuth token endpoints) alike, and as a
 * sink's settings say for the requests it makes (no asset there). */
#include "ctx.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef CA_DIR
#define CA_DIR "/etc/ssl/certs"
#endif

/* ca_pem must hold at least one certificate and nothing else that looks
 * like PEM but is not: a pasted key or a truncated block is a mistake to
 * report, not to ignore. The text itself is never quoted. */
static int check_pem(const char *pem, struct sc_error *err)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	if (!bio)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	int n = 0;
	X509 *x;
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
		X509_free(x);
		n++;
	}
	unsigned long e = ERR_peek_last_error();
	int at_end = ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
	ERR_clear_error();
	BIO_free(bio);
	if (n == 0 || !at_end)
		return sc_error_set(err, SC_EINPUT,
		                    "asset.ca_pem: %s; give one or more PEM certificates "
		                    "(-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)",
		                    n == 0 ? "holds no PEM certificate"
		                           : "a certificate block is damaged");
	return SC_OK;
}

/* libcurl's CAINFO_BLOB replaces CAINFO, so ca_file and ca_pem together go
 * in as one blob; the system store (CAPATH) is kept either way. */
static int set_ca_blob(CURL *c, const char *file, const char *pem, struct sc_error *err)
{
	struct sc_buf b = {0};
	int rc = SC_OK;
	if (file) {
		int fd = open(file, O_RDONLY | O_CLOEXEC);
		/* a CA bundle is a few hundred KB; more is not one */
		int r = fd < 0 ? SC_EIO : sc_buf_read_fd(&b, fd, 16u << 20);
		int e = errno;
		if (fd >= 0)
			close(fd);
		if (r == SC_EIO || r == SC_EINPUT) {
			sc_buf_free(&b);
			return sc_error_set(err, SC_EINPUT,
			                    "asset.ca_file: cannot read %s: %s; give a "
			                    "readable PEM file",
			                    file,
			                    r == SC_EINPUT ? "larger than 16 MiB" : strerror(e));
		}
		rc = r;
		if (!rc)
			rc = sc_buf_str(&b, "\n");
	}
	if (!rc)
		rc = sc_buf_str(&b, pem);
	if (rc) {
		sc_buf_free(&b);
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	struct curl_blob blob = {b.p, b.len, CURL_BLOB_COPY};
	CURLcode cc = curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
	sc_buf_free(&b);
	return cc == CURLE_OK ? SC_OK
	                      : sc_error_set(err, SC_ETLS,
	                                     "asset.ca_pem: this libcurl cannot take CA "
	                                     "certificates from memory (%s); use ca_file",
	                                     curl_easy_strerror(cc));
}

/* The rules shared by assets and sinks: TLS 1.2 at least, verification
 * on unless turned off, the system CA directory, and an optional CA file
 * whose setting is named `field` in the error. */
static int tls_rules(CURL *c, const char *ca, int verify, const char *field, struct sc_error *err)
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
			return sc_error_set(err, SC_EINPUT,
			                    "%s: cannot read %s: %s; give a readable PEM file",
			                    field, ca, strerror(errno));
		/* a directory passes access(): libcurl then fails at the
		 * handshake, which read as an untrusted server certificate */
		if (stat(ca, &st) || !S_ISREG(st.st_mode))
			return sc_error_set(err, SC_EINPUT,
			                    "%s: %s is not a file; give a readable PEM file", field,
			                    ca);
		curl_easy_setopt(c, CURLOPT_CAINFO, ca);
	}
	return SC_OK;
}

int core_tls_policy(const struct sc_ctx *ctx, void *curl, struct sc_error *err)
{
	int rc =
	    tls_rules(curl, ctx->cfg.ca_file, ctx->cfg.verify_server_cert, "asset.ca_file", err);
	const char *pem = ctx->cfg.ca_pem;
	if (rc || !pem || !ctx->cfg.verify_server_cert)
		return rc;
	rc = check_pem(pem, err);
	return rc ? rc : set_ca_blob(curl, ctx->cfg.ca_file, pem, err);
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
	http_rules(curl_easy, ctx->cfg.timeout);
	return core_tls_policy(ctx, curl_easy, err);
}

int sc_http_tls_policy(void *curl_easy, const char *ca_file, int verify, double timeout,
                       struct sc_error *err)
{
	http_rules(curl_easy, timeout > 0 ? timeout : 30);
	return tls_rules(curl_easy, ca_file && *ca_file ? ca_file : NULL, verify, "ca_file", err);
}
