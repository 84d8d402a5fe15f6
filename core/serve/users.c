/* The users file of `serve` AUTH: salted PBKDF2-HMAC-SHA256 hashes, one
 * user a line (format in serve.h and doc/serve.md). OpenSSL does the
 * hashing, the base64 and the constant-time compare. */
#include "serve.h"

#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

unsigned char *serve_b64_decode(const char *in, size_t n, size_t *outlen)
{
	if (n % 4 || n > INT_MAX / 2)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		         (c >= '0' && c <= '9') || c == '+' || c == '/' || (c == '=' && i >= n - 2);
		if (!ok || (i == n - 2 && c == '=' && in[n - 1] != '='))
			return NULL;
	}
	unsigned char *out = malloc(n / 4 * 3 + 1);
	if (!out)
		return NULL;
	int len = n ? EVP_DecodeBlock(out, (const unsigned char *)in, (int)n) : 0;
	if (len < 0) {
		free(out);
		return NULL;
	}
	/* EVP_DecodeBlock counts the padding as zero bytes */
	if (n && in[n - 1] == '=')
		len--;
	if (n > 1 && in[n - 2] == '=')
		len--;
	out[len] = '\0';
	*outlen = (size_t)len;
	return out;
}

char *serve_b64_encode(const unsigned char *in, size_t n)
{
	char *out = malloc((n + 2) / 3 * 4 + 1);
	if (out)
		EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	return out;
}

void serve_users_free(struct serve_user *u, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(u[i].name);
		free(u[i].salt);
		OPENSSL_cleanse(u[i].hash, sizeof u[i].hash);
	}
	free(u);
}

/* name:pbkdf2-sha256:iterations:salt:hash */
static int parse_line(char *line, struct serve_user *u)
{
	char *f[5], *p = line;
	for (int i = 0; i < 5; i++) {
		f[i] = p;
		if (i == 4)
			break;
		char *c = strchr(p, ':');
		if (!c)
			return -1;
		*c = '\0';
		p = c + 1;
	}
	if (strchr(f[4], ':') || !*f[0] || strcmp(f[1], "pbkdf2-sha256") != 0)
		return -1;
	char *end;
	errno = 0;
	unsigned long it = strtoul(f[2], &end, 10);
	if (errno || *end || it < 1000 || it > 100000000UL)
		return -1;
	size_t hl = 0;
	unsigned char *h = serve_b64_decode(f[4], strlen(f[4]), &hl);
	u->salt = serve_b64_decode(f[3], strlen(f[3]), &u->salt_len);
	u->name = strdup(f[0]);
	int ok = h && hl == sizeof u->hash && u->salt && u->salt_len >= 8 && u->name;
	if (ok)
		memcpy(u->hash, h, sizeof u->hash);
	free(h);
	u->iterations = it;
	return ok ? 0 : -1;
}

int serve_users_load(const char *path, struct serve_user **out, size_t *n, struct sc_error *err)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return sc_error_set(err, SC_EIO, "auth.users_file: cannot open %s: %s", path,
		                    strerror(errno));
	struct serve_user *u = NULL;
	size_t cnt = 0, lineno = 0;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int rc = SC_OK;
	while ((len = getline(&line, &cap, f)) >= 0) {
		lineno++;
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0 || line[0] == '#')
			continue;
		struct serve_user *nu = realloc(u, (cnt + 1) * sizeof *u);
		if (!nu) {
			rc = sc_error_set(err, SC_ENOMEM, "out of memory");
			break;
		}
		u = nu;
		memset(&u[cnt], 0, sizeof u[cnt]);
		if (parse_line(line, &u[cnt])) {
			cnt++;
			rc = sc_error_set(
			    err, SC_EINPUT,
			    "auth.users_file: %s line %zu is not "
			    "name:pbkdf2-sha256:<iterations>:<salt base64>:<hash base64>; make "
			    "lines with smtp-connector serve --hash-password NAME",
			    path, lineno);
			break;
		}
		cnt++;
	}
	if (line)
		OPENSSL_cleanse(line, cap);
	free(line);
	fclose(f);
	if (!rc && cnt == 0)
		rc = sc_error_set(err, SC_EINPUT, "auth.users_file: %s holds no user", path);
	if (rc) {
		serve_users_free(u, cnt);
		return rc;
	}
	*out = u;
	*n = cnt;
	return SC_OK;
}

int serve_users_verify(const struct serve_user *u, size_t n, const char *name, const char *password,
                       size_t plen)
{
	const struct serve_user *hit = NULL;
	for (size_t i = 0; i < n && !hit; i++)
		if (strcmp(u[i].name, name) == 0)
			hit = &u[i];
	/* an unknown name costs the same hash, so timing does not tell
	 * which names exist */
	static const unsigned char dummy_salt[16] = {0};
	unsigned char h[32];
	int ok = PKCS5_PBKDF2_HMAC(password, (int)plen, hit ? hit->salt : dummy_salt,
	                           hit ? (int)hit->salt_len : (int)sizeof dummy_salt,
	                           hit ? (int)hit->iterations : (int)SERVE_PBKDF2_ITERATIONS,
	                           EVP_sha256(), sizeof h, h) == 1 &&
	         hit && CRYPTO_memcmp(h, hit->hash, sizeof h) == 0;
	OPENSSL_cleanse(h, sizeof h);
	return ok;
}

char *serve_users_hash_line(const char *name, const char *password, size_t len,
                            unsigned long iterations)
{
	unsigned char salt[16], h[32];
	if (RAND_bytes(salt, sizeof salt) != 1 ||
	    PKCS5_PBKDF2_HMAC(password, (int)len, salt, sizeof salt, (int)iterations, EVP_sha256(),
	                      sizeof h, h) != 1)
		return NULL;
	char *s64 = serve_b64_encode(salt, sizeof salt), *h64 = serve_b64_encode(h, sizeof h);
	char *line = s64 && h64
	                 ? sc_asprintf("%s:pbkdf2-sha256:%lu:%s:%s", name, iterations, s64, h64)
	                 : NULL;
	free(s64);
	free(h64);
	OPENSSL_cleanse(h, sizeof h);
	return line;
}
