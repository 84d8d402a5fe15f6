/* Small helpers the OAuth files share: form and query encoding (into the
 * host API's struct sc_buf), base64url, and wiping secrets held in cJSON trees. */
#include "oauth.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <smtp-connector/message.h>
#include <stdlib.h>
#include <string.h>

static int add_encoded(struct sc_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char enc[3];
		int rc;
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			rc = sc_buf_add(b, p, 1);
		} else {
			enc[0] = '%';
			enc[1] = hex[*p >> 4];
			enc[2] = hex[*p & 15];
			rc = sc_buf_add(b, enc, 3);
		}
		if (rc)
			return rc;
	}
	return SC_OK;
}

int oauth_buf_param(struct sc_buf *b, const char *key, const char *value)
{
	int rc = SC_OK;
	if (b->len && b->p[b->len - 1] != '?' && b->p[b->len - 1] != '&')
		rc = sc_buf_add(b, "&", 1);
	if (!rc)
		rc = add_encoded(b, key);
	if (!rc)
		rc = sc_buf_add(b, "=", 1);
	if (!rc)
		rc = add_encoded(b, value);
	return rc;
}

char *oauth_b64url(const unsigned char *data, size_t n)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *out = malloc((n + 2) / 3 * 4 + 1);
	if (!out)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)data[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)data[i + 1] << 8;
		if (i + 2 < n)
			v |= data[i + 2];
		out[o++] = a[(v >> 18) & 63];
		out[o++] = a[(v >> 12) & 63];
		if (i + 1 < n)
			out[o++] = a[(v >> 6) & 63];
		if (i + 2 < n)
			out[o++] = a[v & 63];
	}
	out[o] = '\0';
	return out;
}

char *oauth_random_b64url(size_t n)
{
	unsigned char *raw = malloc(n);
	char *out = NULL;
	if (raw && RAND_bytes(raw, (int)n) == 1)
		out = oauth_b64url(raw, n);
	if (raw) {
		sc_secret_wipe(raw, n);
		free(raw);
	}
	return out;
}

char *oauth_sha256_b64url(const char *s)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (!EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL))
		return NULL;
	return oauth_b64url(md, n);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static char *decode(const char *s, size_t n)
{
	char *out = malloc(n + 1);
	size_t o = 0;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+') {
			out[o++] = ' ';
		} else if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
		           hexval(s[i + 2]) >= 0) {
			out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
}

char *oauth_query_get(const char *query, const char *key)
{
	size_t klen = strlen(key);
	const char *p = query;
	while (p && *p) {
		size_t n = strcspn(p, "&#");
		if (n > klen && strncmp(p, key, klen) == 0 && p[klen] == '=')
			return decode(p + klen + 1, n - klen - 1);
		if (n == klen && strncmp(p, key, klen) == 0)
			return strdup("");
		if (p[n] != '&')
			break;
		p += n + 1;
	}
	return NULL;
}

const char *oauth_json_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

/* `j` and its siblings (a root has none), depth first. */
static void wipe_tree(cJSON *j)
{
	for (; j; j = j->next) {
		if (j->valuestring)
			sc_secret_wipe(j->valuestring, strlen(j->valuestring));
		wipe_tree(j->child);
	}
}

void oauth_json_wipe_delete(cJSON *j)
{
	wipe_tree(j);
	cJSON_Delete(j);
}

char *oauth_printable(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n > max)
		n = max;
	char *out = malloc(n + 4);
	if (!out)
		return NULL;
	memcpy(out, s, n);
	out[n] = '\0';
	sc_str_one_line(out);
	if (strlen(s) > max)
		memcpy(out + n, "...", 4);
	return out;
}
