/* A message to send: ordered top-level headers, each at most once, and a
 * body that is a curl_mime tree, one encoded part, or a complete raw
 * message. Single-part and raw messages are uploaded from memory with
 * every line ending normalised to CRLF (bare LF on the wire is refused by
 * modern servers and defeats dot-stuffing). */
#include "session.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/random.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum body_kind { BODY_NONE, BODY_MIME, BODY_SINGLE, BODY_RAW };

struct sc_message {
	char **names, **values;
	size_t n;
	enum body_kind kind;
	curl_mime *mime;
	char *body;        /* single: encoded body; raw: the whole message */
	size_t body_len;
	struct curl_slist *applied; /* headers handed to libcurl */
	char *wire;        /* single/raw: bytes being uploaded */
	size_t wire_len, wire_pos;
	char *message_id;
};

struct sc_message *sc_message_new(void)
{
	return calloc(1, sizeof(struct sc_message));
}

void sc_message_free(struct sc_message *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		free(m->names[i]);
		free(m->values[i]);
	}
	free(m->names);
	free(m->values);
	curl_mime_free(m->mime);
	free(m->body);
	curl_slist_free_all(m->applied);
	free(m->wire);
	free(m->message_id);
	free(m);
}

/* Folds (CRLF + space/tab) are the only line breaks a value may carry. */
static int value_ok(const char *v)
{
	for (const char *p = v; *p; p++) {
		if (*p == '\r') {
			if (p[1] != '\n' || (p[2] != ' ' && p[2] != '\t'))
				return 0;
			p++;
		} else if (*p == '\n' || *p == 0x7f ||
			   ((unsigned char)*p < 0x20 && *p != '\t')) {
			return 0;
		}
	}
	return 1;
}

static ssize_t find(const struct sc_message *m, const char *name)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcasecmp(m->names[i], name) == 0)
			return (ssize_t)i;
	return -1;
}

int sc_message_header(struct sc_message *m, const char *name, const char *value,
		      struct sc_error *err)
{
	if (!sc_header_name_valid(name))
		return sc_error_set(err, SC_EINPUT, "header name \"%s\" is not valid: use printable "
				    "ASCII without spaces or ':'", name);
	if (!value_ok(value))
		return sc_error_set(err, SC_EINPUT, "header \"%s\": the value contains a line break or "
				    "control character; put it on one line", name);
	char *v = strdup(value);
	if (!v)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	ssize_t i = find(m, name);
	if (i >= 0) {
		free(m->values[i]);
		m->values[i] = v;
		return SC_OK;
	}
	char **nn = realloc(m->names, (m->n + 1) * sizeof *nn);
	if (nn)
		m->names = nn;
	char **nv = nn ? realloc(m->values, (m->n + 1) * sizeof *nv) : NULL;
	if (nv)
		m->values = nv;
	char *nm = nv ? strdup(name) : NULL;
	if (!nm) {
		free(v);
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	m->names[m->n] = nm;
	m->values[m->n] = v;
	m->n++;
	return SC_OK;
}

const char *sc_message_header_get(const struct sc_message *m, const char *name)
{
	ssize_t i = find(m, name);
	return i >= 0 ? m->values[i] : NULL;
}

void sc_message_header_remove(struct sc_message *m, const char *name)
{
	ssize_t i;
	while ((i = find(m, name)) >= 0) {
		free(m->names[i]);
		free(m->values[i]);
		memmove(m->names + i, m->names + i + 1, (m->n - (size_t)i - 1) * sizeof *m->names);
		memmove(m->values + i, m->values + i + 1, (m->n - (size_t)i - 1) * sizeof *m->values);
		m->n--;
	}
}

int sc_message_body_mime(struct sc_message *m, curl_mime *mime, const char *root_type,
			 struct sc_error *err)
{
	curl_mime_free(m->mime);
	m->mime = mime;
	m->kind = BODY_MIME;
	return sc_message_header(m, "Content-Type", root_type, err);
}

static int set_body(struct sc_message *m, enum body_kind kind, const char *data, size_t len,
		    struct sc_error *err)
{
	char *copy = malloc(len + 1);
	if (!copy)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	memcpy(copy, data, len);
	copy[len] = '\0';
	free(m->body);
	m->body = copy;
	m->body_len = len;
	m->kind = kind;
	free(m->wire); /* built again from the new body */
	m->wire = NULL;
	return SC_OK;
}

int sc_message_body_single(struct sc_message *m, const char *type, const char *cte,
			   const char *body, size_t len, struct sc_error *err)
{
	int rc = sc_message_header(m, "Content-Type", type, err);
	if (!rc)
		rc = sc_message_header(m, "Content-Transfer-Encoding", cte, err);
	if (rc)
		return rc;
	return set_body(m, BODY_SINGLE, body, len, err);
}

int sc_message_raw(struct sc_message *m, const char *raw, size_t len, struct sc_error *err)
{
	return set_body(m, BODY_RAW, raw, len, err);
}

/* In a raw message: the first `name` field (RFC 5322 §4.5.3 allows blanks
 * before the ':'), as the start of its value and the end of its last
 * continuation line; 0 when the header block has none. */
static int raw_field(const struct sc_message *m, const char *name, const char **v,
		     const char **vend)
{
	size_t n = strlen(name);
	const char *p = m->body, *end = m->body + m->body_len;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t len = eol ? (size_t)(eol - p) : (size_t)(end - p);
		if (len == 0 || (len == 1 && *p == '\r'))
			return 0; /* end of headers */
		size_t k = n;
		while (k < len && (p[k] == ' ' || p[k] == '\t'))
			k++;
		if (k < len && p[k] == ':' && strncasecmp(p, name, n) == 0) {
			const char *e = eol ? eol : end;
			/* continuation lines start with space or tab */
			while (e + 1 < end && (e[1] == ' ' || e[1] == '\t')) {
				const char *nx = memchr(e + 1, '\n', (size_t)(end - e - 1));
				e = nx ? nx : end;
			}
			*v = p + k + 1;
			*vend = e;
			return 1;
		}
		p += len + 1;
	}
	return 0;
}

static int raw_has(const struct sc_message *m, const char *name)
{
	const char *v, *e;
	return raw_field(m, name, &v, &e);
}

static char *prepend_raw(struct sc_message *m, const char *field)
{
	char *n = sc_asprintf("%s\r\n%s", field, m->body);
	if (n) {
		m->body_len += strlen(field) + 2;
		free(m->body);
		m->body = n;
	}
	return n;
}

const char *sc_message_ensure_ids(struct sc_message *m, const char *domain)
{
	int raw = m->kind == BODY_RAW;
	int has_date = raw ? raw_has(m, "Date") : sc_message_header_get(m, "Date") != NULL;
	int has_id = raw ? raw_has(m, "Message-ID") : sc_message_header_get(m, "Message-ID") != NULL;
	if (!has_date) {
		char date[64];
		time_t now = time(NULL);
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
		if (raw) {
			char *f = sc_asprintf("Date: %s", date);
			if (f)
				prepend_raw(m, f);
			free(f);
		} else {
			sc_message_header(m, "Date", date, NULL);
		}
	}
	if (has_id)
		return raw ? NULL : sc_message_header_get(m, "Message-ID");
	unsigned char rnd[16];
	char hex[33];
	/* getrandom(): the first RAND_bytes() of a process seeds OpenSSL's
	 * DRBG, about a millisecond, which is most of a one-shot run's
	 * budget beyond what libcurl needs. */
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd && RAND_bytes(rnd, sizeof rnd) != 1)
		return NULL;
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	free(m->message_id);
	m->message_id = sc_asprintf("<%s@%s>", hex, domain && *domain ? domain : "smtp-connector.invalid");
	if (!m->message_id)
		return NULL;
	if (raw) {
		char *f = sc_asprintf("Message-ID: %s", m->message_id);
		if (f)
			prepend_raw(m, f);
		free(f);
	} else {
		sc_message_header(m, "Message-ID", m->message_id, NULL);
	}
	return m->message_id;
}

/* In a raw message: the first `name` field's value (folds kept). */
static char *raw_value(const struct sc_message *m, const char *name)
{
	const char *v, *e;
	return raw_field(m, name, &v, &e) ? strndup(v, (size_t)(e - v)) : NULL;
}

/* Unfold (drop CR/LF), collapse nothing else, trim both ends. */
static void canon_value(char *v)
{
	size_t w = 0;
	for (size_t r = 0; v[r]; r++)
		if (v[r] != '\r' && v[r] != '\n')
			v[w++] = v[r];
	v[w] = '\0';
	while (w && (v[w - 1] == ' ' || v[w - 1] == '\t'))
		v[--w] = '\0';
	size_t lead = strspn(v, " \t");
	memmove(v, v + lead, w - lead + 1);
}

/* secret_key: an HMAC-SHA256 over the identity headers (From, To, Cc,
 * Subject, Date, Message-ID) as they go on the wire, unfolded. A
 * receiver holding the key can tell an alert really came from this
 * connector; Date and Message-ID make every signature unique. The body is
 * not covered (it is streamed and MIME-encoded by libcurl); see
 * doc/security.md for verifying it. */
int core_message_sign(struct sc_message *m, const char *key, struct sc_error *err)
{
	static const char *const names[] = { "From", "To", "Cc", "Subject", "Date", "Message-ID" };
	char *canon = strdup(""), *list = strdup("");
	for (size_t i = 0; canon && list && i < sizeof names / sizeof names[0]; i++) {
		char *v = m->kind == BODY_RAW ? raw_value(m, names[i])
					      : (sc_message_header_get(m, names[i])
							 ? strdup(sc_message_header_get(m, names[i])) : NULL);
		if (!v)
			continue;
		canon_value(v);
		char lower[16];
		size_t k;
		for (k = 0; names[i][k]; k++)
			lower[k] = (char)tolower((unsigned char)names[i][k]);
		lower[k] = '\0';
		char *nc = sc_asprintf("%s%s:%s\r\n", canon, lower, v);
		char *nl = sc_asprintf("%s%s%s", list, *list ? ":" : "", lower);
		free(v);
		free(canon);
		free(list);
		canon = nc;
		list = nl;
	}
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
	int rc = SC_OK;
	if (!canon || !list ||
	    !HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)canon, strlen(canon), mac, &maclen)) {
		rc = sc_error_set(err, SC_EINTERNAL, "cannot compute the message signature");
	} else {
		EVP_EncodeBlock(b64, mac, (int)maclen);
		char *val = sc_asprintf("v=1; a=hmac-sha256; h=%s; b=%s", list, b64);
		if (!val) {
			rc = sc_error_set(err, SC_ENOMEM, "out of memory");
		} else if (m->kind == BODY_RAW) {
			char *f = sc_asprintf("X-SMTP-Connector-Signature: %s", val);
			if (!f || !prepend_raw(m, f))
				rc = sc_error_set(err, SC_ENOMEM, "out of memory");
			free(f);
			free(m->wire); /* rebuilt with the new header */
			m->wire = NULL;
		} else {
			rc = sc_message_header(m, "X-SMTP-Connector-Signature", val, err);
			free(m->wire);
			m->wire = NULL;
		}
		free(val);
	}
	sc_secret_wipe(mac, sizeof mac);
	free(canon);
	free(list);
	return rc;
}

const char *core_message_id(struct sc_message *m)
{
	if (m->kind != BODY_RAW)
		return sc_message_header_get(m, "Message-ID");
	if (!m->message_id) {
		char *v = raw_value(m, "Message-ID");
		if (v) {
			canon_value(v);
			m->message_id = v;
		}
	}
	return m->message_id;
}

int core_message_is_8bit(const struct sc_message *m)
{
	if (m->kind == BODY_MIME)
		return 0;
	for (size_t i = 0; i < m->body_len; i++)
		if ((unsigned char)m->body[i] >= 0x80)
			return 1;
	return 0;
}

/* ------------------------------------------------------------------ */

/* Append `len` bytes of `s` to the wire, turning bare LF and bare CR
 * into CRLF. */
static void put_crlf(char *dst, size_t *pos, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\r') {
			dst[(*pos)++] = '\r';
			dst[(*pos)++] = '\n';
			if (i + 1 < len && s[i + 1] == '\n')
				i++;
		} else if (s[i] == '\n') {
			dst[(*pos)++] = '\r';
			dst[(*pos)++] = '\n';
		} else {
			dst[(*pos)++] = s[i];
		}
	}
}

static int build_wire(struct sc_message *m)
{
	size_t need = 2 * m->body_len + 64;
	for (size_t i = 0; i < m->n; i++)
		need += 2 * (strlen(m->names[i]) + strlen(m->values[i])) + 8;
	free(m->wire);
	m->wire = malloc(need);
	if (!m->wire)
		return SC_ENOMEM;
	size_t pos = 0;
	if (m->kind == BODY_SINGLE) {
		int mv = find(m, "MIME-Version") >= 0;
		for (size_t i = 0; i < m->n; i++) {
			put_crlf(m->wire, &pos, m->names[i], strlen(m->names[i]));
			memcpy(m->wire + pos, ": ", 2);
			pos += 2;
			put_crlf(m->wire, &pos, m->values[i], strlen(m->values[i]));
			memcpy(m->wire + pos, "\r\n", 2);
			pos += 2;
		}
		if (!mv) {
			memcpy(m->wire + pos, "MIME-Version: 1.0\r\n", 19);
			pos += 19;
		}
		memcpy(m->wire + pos, "\r\n", 2);
		pos += 2;
	}
	put_crlf(m->wire, &pos, m->body, m->body_len);
	m->wire_len = pos;
	m->wire_pos = 0;
	return SC_OK;
}

static size_t read_wire(char *buf, size_t size, size_t nitems, void *arg)
{
	struct sc_message *m = arg;
	size_t left = m->wire_len - m->wire_pos;
	size_t n = size * nitems < left ? size * nitems : left;
	memcpy(buf, m->wire + m->wire_pos, n);
	m->wire_pos += n;
	return n;
}

int core_message_apply(struct sc_message *m, CURL *curl, struct sc_error *err)
{
	curl_slist_free_all(m->applied);
	m->applied = NULL;
	if (m->kind == BODY_MIME) {
		if (find(m, "MIME-Version") < 0 && sc_message_header(m, "MIME-Version", "1.0", err))
			return err->code;
		for (size_t i = 0; i < m->n; i++) {
			char *h = sc_asprintf("%s: %s", m->names[i], m->values[i]);
			struct curl_slist *l = h ? curl_slist_append(m->applied, h) : NULL;
			free(h);
			if (!l)
				return sc_error_set(err, SC_ENOMEM, "out of memory");
			m->applied = l;
		}
		curl_easy_setopt(curl, CURLOPT_UPLOAD, 0L);
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, m->applied);
		curl_easy_setopt(curl, CURLOPT_MIMEPOST, m->mime);
		return SC_OK;
	}
	if (m->kind == BODY_NONE)
		return sc_error_set(err, SC_EINTERNAL, "message has no body");
	if (!m->wire && build_wire(m))
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	m->wire_pos = 0;
	curl_easy_setopt(curl, CURLOPT_MIMEPOST, NULL);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_wire);
	curl_easy_setopt(curl, CURLOPT_READDATA, m);
	curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)m->wire_len);
	return SC_OK;
}

void core_message_detach(struct sc_message *m, CURL *curl)
{
	curl_easy_setopt(curl, CURLOPT_MIMEPOST, NULL);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(curl, CURLOPT_UPLOAD, 0L);
	curl_easy_setopt(curl, CURLOPT_READDATA, NULL);
	curl_slist_free_all(m->applied);
	m->applied = NULL;
}
