/* Signing (v=2) and verifying (v=1 and v=2) X-SMTP-Connector-Signature.
 * What the HMAC covers is written down in doc/signatures.md; a change
 * here is a change of the format and doc/verify_signature.py must follow.
 *
 * v=2: HMAC-SHA256(key, L(h1) L(h2) ... L(hn) T) in lowercase hex, where
 * L(x) = "x:" + the value of header x unfolded and trimmed + CRLF, for
 * the names of h= in order, and T = "x-smtp-connector-signature:v=2;
 * a=hmac-sha256; t=<t>; bh=<bh>; h=<h>; hh=<hh>; b=" (the tags rebuilt
 * in this order, b= empty, no CRLF), as DKIM ends its input with its own
 * header. bh= is the body digest (sig_canon.c); hh= holds, per signed
 * header, the first 8 hex digits of SHA-256(L(x)): not a secret and not
 * trusted, only there so a failed check can name the header that changed.
 * v=1: base64 HMAC-SHA256(key, L(h1) ... L(hn)); no body, no time. */
#include "signature.h"
#include "private_file.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *const sig_names[6] = {"from", "to", "cc", "subject", "date", "message-id"};
#define NNAMES (sizeof sig_names / sizeof sig_names[0])

static void hex(const unsigned char *d, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[d[i] >> 4];
		out[2 * i + 1] = digits[d[i] & 15];
	}
	out[2 * n] = '\0';
}

/* The first 8 hex digits of SHA-256 of a header line. */
static void line_tag(const char *line, size_t len, char out[9])
{
	unsigned char md[32];
	unsigned int n = 0;
	EVP_Digest(line, len, md, &n, EVP_sha256(), NULL);
	hex(md, 4, out);
}

static int hmac(const char *key, const struct sc_buf *in, unsigned char mac[32])
{
	unsigned int n = 0;
	return HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)in->p, in->len, mac,
	            &n) &&
	               n == 32
	           ? 0
	           : -1;
}

/* T, the last line of the v=2 input. */
static int tags_line(struct sc_buf *b, const char *t, const char *bh, const char *h, const char *hh)
{
	return sc_buf_printf(b,
	                     "x-smtp-connector-signature:v=2; a=hmac-sha256; t=%s; bh=%s; "
	                     "h=%s; hh=%s; b=",
	                     t, bh, h, hh);
}

char *sig_sign_v2(const char *key, char *(*value_of)(void *arg, const char *name), void *arg,
                  const unsigned char bh[32], long long t, struct sc_error *err)
{
	struct sc_buf in = {0}, h = {0}, hh = {0}, line = {0};
	char bh64[45], ts[24], tag[9], machex[65];
	unsigned char mac[32];
	char *out = NULL;
	int rc = 0;
	EVP_EncodeBlock((unsigned char *)bh64, bh, 32);
	snprintf(ts, sizeof ts, "%lld", t);
	sc_buf_add(&h, "", 0);
	sc_buf_add(&hh, "", 0);
	for (size_t i = 0; !rc && i < NNAMES; i++) {
		char *v = value_of(arg, sig_names[i]);
		if (!v)
			continue;
		size_t vlen = sig_unfold_trim(v, strlen(v));
		line.len = 0;
		rc = sig_header_line(&line, sig_names[i], v, vlen);
		free(v);
		if (rc)
			break;
		line_tag(line.p, line.len, tag);
		rc = sc_buf_add(&in, line.p, line.len) ||
		     sc_buf_printf(&h, "%s%s", h.len ? ":" : "", sig_names[i]) ||
		     sc_buf_printf(&hh, "%s%s", hh.len ? ":" : "", tag);
	}
	if (!rc)
		rc = !h.p || !hh.p || tags_line(&in, ts, bh64, h.p, hh.p);
	if (rc) {
		sc_error_set(err, SC_ENOMEM, "out of memory");
	} else if (hmac(key, &in, mac)) {
		sc_error_set(err, SC_EINTERNAL, "cannot compute the message signature");
	} else {
		hex(mac, 32, machex);
		/* folded at its "; " so no line passes 78 octets */
		out = sc_asprintf(
		    "v=2; a=hmac-sha256; t=%s;\r\n bh=%s;\r\n h=%s;\r\n hh=%s;\r\n b=%s", ts, bh64,
		    h.p, hh.p, machex);
		if (!out)
			sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	sc_secret_wipe(mac, sizeof mac);
	sc_secret_wipe(machex, sizeof machex);
	sc_buf_free(&in);
	sc_buf_free(&h);
	sc_buf_free(&hh);
	sc_buf_free(&line);
	return out;
}

/* ---- verifying ------------------------------------------------------- */

static void verdict(struct sig_verdict *o, enum sig_status st, const char *fmt, ...)
    SC_PRINTF(3, 4);
static void verdict(struct sig_verdict *o, enum sig_status st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	o->status = st;
	vsnprintf(o->reason, sizeof o->reason, fmt, ap);
	va_end(ap);
	/* printable ASCII: a reason may quote bytes of the message, and it
	 * goes to a terminal, a log and an SMTP reply */
	for (char *p = o->reason; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
}

static int all_of(const char *s, const char *set, size_t min, size_t max)
{
	size_t n = strlen(s);
	return n >= min && n <= max && strspn(s, set) == n;
}

static int unhex(const char *s, unsigned char *out, size_t n)
{
	if (strlen(s) != 2 * n || !all_of(s, "0123456789abcdefABCDEF", 2 * n, 2 * n))
		return -1;
	for (size_t i = 0; i < n; i++) {
		char b[3] = {s[2 * i], s[2 * i + 1], 0};
		out[i] = (unsigned char)strtoul(b, NULL, 16);
	}
	return 0;
}

/* Base64 of exactly 32 octets: 44 characters ending in one '='. */
static int unb64_32(const char *s, unsigned char out[32])
{
	static const char set[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char tmp[36];
	if (strlen(s) != 44 || strspn(s, set) != 43 || s[43] != '=')
		return -1;
	if (EVP_DecodeBlock(tmp, (const unsigned char *)s, 44) != 33)
		return -1;
	memcpy(out, tmp, 32);
	return 0;
}

/* h=: names of the signed set, each once. Fills idx[] (into sig_names). */
static int parse_h(const char *h, size_t *idx, size_t *n, struct sig_verdict *o)
{
	*n = 0;
	const char *p = h;
	while (*p) {
		const char *e = strchr(p, ':');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		size_t k = 0;
		while (k < NNAMES &&
		       (strlen(sig_names[k]) != len || strncasecmp(p, sig_names[k], len)))
			k++;
		if (k == NNAMES) {
			verdict(
			    o, SIG_MALFORMED,
			    "malformed tag \"h\": \"%.*s\" is not a header this signature covers "
			    "(from, to, cc, subject, date, message-id)",
			    (int)(len < 40 ? len : 40), p);
			return -1;
		}
		for (size_t j = 0; j < *n; j++)
			if (idx[j] == k) {
				verdict(o, SIG_MALFORMED,
				        "malformed tag \"h\": \"%s\" is listed twice",
				        sig_names[k]);
				return -1;
			}
		idx[(*n)++] = k;
		if (!e)
			break;
		p = e + 1;
		if (!*p) {
			verdict(o, SIG_MALFORMED, "malformed tag \"h\": it ends with ':'");
			return -1;
		}
	}
	if (!*n) {
		verdict(o, SIG_MALFORMED, "malformed tag \"h\": it is empty");
		return -1;
	}
	return 0;
}

/* The tags a version must have (and may have). */
static int check_tags(const struct sig_tags *t, int version, struct sig_verdict *o)
{
	if (!t->a || strcasecmp(t->a, "hmac-sha256")) {
		verdict(o, SIG_MALFORMED, "malformed tag \"a\": %s",
		        t->a ? "only hmac-sha256 is known" : "it is missing");
		return -1;
	}
	const char *missing = !t->h ? "h" : !t->b ? "b" : NULL;
	if (version == 2 && !missing)
		missing = !t->t ? "t" : !t->bh ? "bh" : !t->hh ? "hh" : NULL;
	if (missing) {
		verdict(o, SIG_MALFORMED, "malformed tag \"%s\": it is missing", missing);
		return -1;
	}
	const char *extra = version == 1 ? (t->t ? "t" : t->bh ? "bh" : t->hh ? "hh" : NULL) : NULL;
	if (extra) {
		verdict(o, SIG_MALFORMED, "malformed tag \"%s\": v=1 has no such tag", extra);
		return -1;
	}
	if (version == 2 && !all_of(t->t, "0123456789", 1, 18)) {
		verdict(o, SIG_MALFORMED, "malformed tag \"t\": not a Unix time in seconds");
		return -1;
	}
	return 0;
}

/* Append "name" to a ", "-separated list. */
static void list_add(char *list, size_t cap, const char *name)
{
	size_t n = strlen(list);
	snprintf(list + n, cap - n, "%s%s", n ? ", " : "", name);
}

struct checked {
	struct sc_buf in;  /* the HMAC input */
	char changed[128]; /* names whose hh= differs */
};

/* The lines of the signed headers, and the set's own rules: each signed
 * header once, no header of the set added unsigned (v=2). */
static int signed_lines(const struct sc_buf *head, int version, const size_t *idx, size_t n,
                        const char *hh, struct checked *c, struct sig_verdict *o)
{
	for (size_t k = 0; version == 2 && k < NNAMES; k++) {
		size_t j = 0, count = 0, vlen = 0;
		while (j < n && idx[j] != k)
			j++;
		char *v = j == n ? sig_header_value(head->p, head->len, sig_names[k], &count, &vlen)
		                 : NULL;
		free(v);
		if (count) {
			verdict(o, SIG_CHANGED,
			        "header changed: \"%s\" was added after signing (it is not in h=)",
			        sig_names[k]);
			return -1;
		}
	}
	const char *hp = hh;
	for (size_t j = 0; j < n; j++) {
		const char *name = sig_names[idx[j]];
		size_t count = 0, vlen = 0;
		char *v = sig_header_value(head->p, head->len, name, &count, &vlen);
		if (count != 1) {
			free(v);
			if (count)
				verdict(o, SIG_CHANGED, "header changed: \"%s\" appears %zu times",
				        name, count);
			else
				verdict(o, SIG_CHANGED,
				        "header changed: \"%s\" is signed but missing", name);
			return -1;
		}
		size_t at = c->in.len;
		int bad = !v || sig_header_line(&c->in, name, v, vlen);
		free(v);
		if (bad) {
			verdict(o, SIG_UNREADABLE, "out of memory");
			return -1;
		}
		if (version == 2) {
			char tag[9];
			line_tag(c->in.p + at, c->in.len - at, tag);
			if (!hp || strncmp(hp, tag, 8) || (hp[8] && hp[8] != ':'))
				list_add(c->changed, sizeof c->changed, name);
			hp = hp && strlen(hp) > 8 ? hp + 9 : NULL;
		}
	}
	return 0;
}

static void when(long long t, char *out, size_t cap)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm) || !strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, cap, "t=%lld", t);
}

static void verify_parsed(struct sig_reader *r, const struct sig_tags *t, const char *key,
                          struct sig_verdict *o)
{
	size_t idx[NNAMES], n = 0;
	int version = o->version;
	unsigned char want[32], bh_want[32], bh_got[32], mac[32];
	if (check_tags(t, version, o) || parse_h(t->h, idx, &n, o))
		return;
	if (version == 2 ? unhex(t->b, want, 32) : unb64_32(t->b, want)) {
		verdict(o, SIG_MALFORMED, "malformed tag \"b\": not %s",
		        version == 2 ? "64 hex digits" : "base64 of 32 octets");
		return;
	}
	if (version == 2 && unb64_32(t->bh, bh_want)) {
		verdict(o, SIG_MALFORMED, "malformed tag \"bh\": not base64 of 32 octets");
		return;
	}
	if (version == 2 && !all_of(t->hh, "0123456789abcdef:", 9 * n - 1, 9 * n - 1)) {
		verdict(o, SIG_MALFORMED, "malformed tag \"hh\": not %zu groups of 8 hex digits",
		        n);
		return;
	}
	struct checked c = {{0}, ""};
	if (signed_lines(&r->head, version, idx, n, t->hh, &c, o)) {
		sc_buf_free(&c.in);
		return;
	}
	int body_ok = 1;
	if (sig_body_final(&r->body, bh_got)) {
		verdict(o, SIG_UNREADABLE, "cannot hash the body");
		sc_buf_free(&c.in);
		return;
	}
	if (version == 2) {
		body_ok = CRYPTO_memcmp(bh_got, bh_want, 32) == 0;
		char h[64];
		size_t w = 0;
		for (size_t j = 0; j < n; j++)
			w += (size_t)snprintf(h + w, sizeof h - w, "%s%s", j ? ":" : "",
			                      sig_names[idx[j]]);
		if (tags_line(&c.in, t->t, t->bh, h, t->hh)) {
			verdict(o, SIG_UNREADABLE, "out of memory");
			sc_buf_free(&c.in);
			return;
		}
	}
	int mac_ok = hmac(key, &c.in, mac) == 0 && CRYPTO_memcmp(mac, want, 32) == 0;
	sc_secret_wipe(mac, sizeof mac);
	sc_buf_free(&c.in);
	if (mac_ok && body_ok) {
		char at[40];
		if (version == 2) {
			o->t = strtoll(t->t, NULL, 10);
			when(o->t, at, sizeof at);
			verdict(o, SIG_VALID, "valid: v=2, signed %s (t=%s)", at, t->t);
		} else {
			verdict(o, SIG_VALID,
			        "valid: v=1 (headers only: v=1 covers neither the body "
			        "nor a signing time)");
		}
		return;
	}
	if (*c.changed && !body_ok)
		verdict(o, SIG_CHANGED, "header changed: %s; body changed (bh mismatch)",
		        c.changed);
	else if (*c.changed)
		verdict(o, SIG_CHANGED, "header changed: %s", c.changed);
	else if (!body_ok)
		verdict(o, SIG_CHANGED, "body changed (bh mismatch)");
	else if (version == 1)
		verdict(o, SIG_CHANGED,
		        "HMAC mismatch: a signed header changed (v=1 cannot say "
		        "which) or the key differs");
	else
		verdict(o, SIG_CHANGED,
		        "HMAC mismatch: the key differs, or the signature's tags "
		        "were changed");
}

void sig_verify(struct sig_reader *r, const char *key, struct sig_verdict *o)
{
	memset(o, 0, sizeof *o);
	if (r->too_big) {
		verdict(o, SIG_UNREADABLE, "the header section is over %d octets", SIG_HEADERS_MAX);
		return;
	}
	size_t count = 0, vlen = 0;
	char *v =
	    r->head.p ? sig_header_value(r->head.p, r->head.len, SIG_HEADER, &count, &vlen) : NULL;
	if (count != 1) {
		free(v);
		if (count)
			verdict(o, SIG_MALFORMED,
			        "the message has %zu %s headers; a signed message has one", count,
			        SIG_HEADER);
		else
			verdict(o, SIG_NONE, "no %s header: the message is not signed", SIG_HEADER);
		return;
	}
	struct sig_tags t;
	char why[128];
	if (!v || sig_tags_parse(v, vlen, &t, why, sizeof why)) {
		free(v);
		verdict(o, SIG_MALFORMED, "%s", v ? why : "out of memory");
		return;
	}
	free(v);
	if (!t.v)
		verdict(o, SIG_MALFORMED, "malformed tag \"v\": it is missing");
	else if (strcmp(t.v, "1") && strcmp(t.v, "2"))
		verdict(o, SIG_VERSION,
		        "unknown signature version v=%.16s (this verifier knows 1 and 2)", t.v);
	else {
		o->version = t.v[0] - '0';
		verify_parsed(r, &t, key, o);
	}
	sig_tags_free(&t);
}

void sig_verify_fd(int fd, const char *key, struct sig_verdict *out)
{
	struct sig_reader r;
	char *buf = malloc(65536);
	if (!buf || sig_reader_init(&r)) {
		free(buf);
		memset(out, 0, sizeof *out);
		verdict(out, SIG_UNREADABLE, "out of memory");
		return;
	}
	for (;;) {
		ssize_t n = read(fd, buf, 65536);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			memset(out, 0, sizeof *out);
			verdict(out, SIG_UNREADABLE, "cannot read the message: %s",
			        strerror(errno));
			free(buf);
			sig_reader_free(&r);
			return;
		}
		if (n == 0)
			break;
		sig_reader_feed(&r, buf, (size_t)n);
	}
	free(buf);
	sig_verify(&r, key, out);
	sig_reader_free(&r);
}

/* ---- the key --------------------------------------------------------- */

static int read_key_file(const char *file, char **key, struct sc_error *err)
{
	char *p = NULL;
	size_t n = 0;
	int rc = core_private_file_read(file, "--secret-key-file", NULL, &p, &n, err);
	if (rc)
		return rc;
	/* one final line end: the file was written by echo or an editor */
	if (n && p[n - 1] == '\n')
		p[--n] = '\0';
	if (n && p[n - 1] == '\r')
		p[--n] = '\0';
	if (!n || memchr(p, '\0', n)) {
		sc_secret_wipe(p, n);
		free(p);
		return sc_error_set(err, SC_EINPUT, "--secret-key-file %s: %s", file,
		                    !n ? "it is empty" : "it holds a NUL byte");
	}
	*key = p; /* freed with sc_secret_free */
	return SC_OK;
}

int sig_key_load(const char *file, char **key, struct sc_error *err)
{
	*key = NULL;
	if (file)
		return read_key_file(file, key, err);
	const char *env = getenv(SIG_KEY_ENV);
	if (!env || !*env)
		return sc_error_set(err, SC_EINPUT,
		                    "no key: give --secret-key-file FILE (mode 0600) or set "
		                    "%s; the key is never taken on the command line",
		                    SIG_KEY_ENV);
	*key = strdup(env);
	return *key ? SC_OK : sc_error_set(err, SC_ENOMEM, "out of memory");
}
