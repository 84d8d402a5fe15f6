/* A message to send: ordered top-level headers, each at most once, and a
 * body that is a curl_mime tree, one text part encoded as it is read,
 * one encoded part, or a complete raw message. Every line ending on the
 * wire is CRLF (bare LF is refused by modern servers and defeats
 * dot-stuffing): bodies are normalised once, when they are set. */
#include "session.h"
#include "body_stream.h"
#include "signature.h"

#include <openssl/rand.h>
#include <sys/random.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum body_kind { BODY_NONE, BODY_MIME, BODY_SINGLE, BODY_TEXT, BODY_RAW };

struct sc_message {
	char **names, **values;
	size_t n;
	enum body_kind kind;
	curl_mime *mime;
	char *body; /* single: encoded body; raw: the whole message;
	               both in CRLF form */
	size_t body_len;
	struct body_stream *text;   /* BODY_TEXT: the caller's text, streamed */
	struct curl_slist *applied; /* headers handed to libcurl */
	struct sc_buf head;         /* single/text: the header block being uploaded */
	size_t pos;                 /* octets of head + body uploaded so far */
	char *message_id;
	/* A signed MIME body: the octets the send must upload (the hash pass's
	 * count plus the signature header); 0: nothing to check. */
	curl_off_t signed_size;
	/* A message handed to a parallel session (sc_send_async) outlives the
	 * plugin's sc_message_free: each core reference is one more free. */
	int extra_refs;
	void **kept; /* buffers the message borrows and now owns (sc_message_keep) */
	size_t nkept;
};

struct sc_message *sc_message_new(void)
{
	return calloc(1, sizeof(struct sc_message));
}

void sc_message_free(struct sc_message *m)
{
	if (!m)
		return;
	if (m->extra_refs > 0) {
		m->extra_refs--;
		return;
	}
	for (size_t i = 0; i < m->nkept; i++)
		free(m->kept[i]);
	free(m->kept);
	for (size_t i = 0; i < m->n; i++) {
		free(m->names[i]);
		free(m->values[i]);
	}
	free(m->names);
	free(m->values);
	curl_mime_free(m->mime);
	free(m->body);
	body_stream_free(m->text);
	curl_slist_free_all(m->applied);
	sc_buf_free(&m->head);
	free(m->message_id);
	free(m);
}

struct sc_message *core_message_ref(struct sc_message *m)
{
	m->extra_refs++;
	return m;
}

int sc_message_keep(struct sc_message *m, void *p, struct sc_error *err)
{
	if (!p)
		return SC_OK;
	void **k = realloc(m->kept, (m->nkept + 1) * sizeof *k);
	if (!k) {
		free(p);
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	m->kept = k;
	k[m->nkept++] = p;
	return SC_OK;
}

/* Folds (CRLF + space/tab) are the only line breaks a value may carry. */
static int value_ok(const char *v)
{
	for (const char *p = v; *p; p++) {
		if (*p == '\r') {
			if (p[1] != '\n' || (p[2] != ' ' && p[2] != '\t'))
				return 0;
			p++;
		} else if (*p == '\n' || *p == 0x7f || ((unsigned char)*p < 0x20 && *p != '\t')) {
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
		return sc_error_set(err, SC_EINPUT,
		                    "header name \"%s\" is not valid: use printable "
		                    "ASCII without spaces or ':'",
		                    name);
	if (!value_ok(value))
		return sc_error_set(err, SC_EINPUT,
		                    "header \"%s\": the value contains a line break or "
		                    "control character; put it on one line",
		                    name);
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
		memmove(m->values + i, m->values + i + 1,
		        (m->n - (size_t)i - 1) * sizeof *m->values);
		m->n--;
	}
}

static void drop_body(struct sc_message *m)
{
	curl_mime_free(m->mime);
	m->mime = NULL;
	free(m->body);
	m->body = NULL;
	m->body_len = 0;
	body_stream_free(m->text);
	m->text = NULL;
	m->kind = BODY_NONE;
}

int sc_message_body_mime(struct sc_message *m, curl_mime *mime, const char *root_type,
                         struct sc_error *err)
{
	drop_body(m);
	m->mime = mime;
	m->kind = BODY_MIME;
	/* libcurl writes "Content-Type: <this>; boundary=<40 octets>": the
	 * fold puts the boundary on a line of its own (see mime.c). */
	char *folded = sc_asprintf("%s\r\n ", root_type);
	int rc = folded ? sc_message_header(m, "Content-Type", folded, err)
	                : sc_error_set(err, SC_ENOMEM, "out of memory");
	free(folded);
	return rc;
}

static int set_body(struct sc_message *m, enum body_kind kind, const char *data, size_t len,
                    struct sc_error *err)
{
	struct sc_buf b = {0};
	if (sc_buf_add_crlf(&b, data, len)) {
		sc_buf_free(&b);
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	drop_body(m);
	m->body_len = b.len;
	m->body = sc_buf_take(&b);
	m->kind = kind;
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

int sc_message_body_text(struct sc_message *m, const char *type, const char *text, size_t len,
                         struct sc_error *err)
{
	const char *cte = NULL;
	struct body_stream *bs = body_stream_new(text, len, 0, &cte);
	if (!bs)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	int rc = sc_message_header(m, "Content-Type", type, err);
	if (!rc)
		rc = sc_message_header(m, "Content-Transfer-Encoding", cte, err);
	if (rc) {
		body_stream_free(bs);
		return rc;
	}
	drop_body(m);
	m->text = bs;
	m->kind = BODY_TEXT;
	return SC_OK;
}

int sc_message_raw(struct sc_message *m, const char *raw, size_t len, struct sc_error *err)
{
	int rc = set_body(m, BODY_RAW, raw, len, err);
	if (rc)
		return rc;
	/* Only a message the one parser reads goes out: the look-ups below
	 * (Date, Message-ID) then always see the fields the server sees. */
	struct sc_rawmsg r;
	rc = sc_rawmsg_parse(m->body, m->body_len, &r, err);
	sc_rawmsg_free(&r);
	if (rc)
		drop_body(m);
	return rc;
}

/* In a raw message: the first `name` field's value (folds kept), with
 * the one raw-header parser (rawmsg.c) that send rawemail reads too. */
static char *raw_value(const struct sc_message *m, const char *name)
{
	struct sc_rawmsg r;
	char *v = NULL;
	if (!sc_rawmsg_parse(m->body, m->body_len, &r, NULL)) {
		size_t i = sc_rawmsg_find(&r, name, 0);
		if (i < r.n)
			v = strndup(m->body + r.f[i].value, r.f[i].end - r.f[i].value);
	}
	sc_rawmsg_free(&r);
	return v;
}

static int raw_has(const struct sc_message *m, const char *name)
{
	char *v = raw_value(m, name);
	free(v);
	return v != NULL;
}

static char *prepend_raw(struct sc_message *m, const char *field)
{
	struct sc_buf b = {0};
	if (sc_buf_str(&b, field) || sc_buf_add(&b, "\r\n", 2) ||
	    sc_buf_add(&b, m->body, m->body_len)) {
		sc_buf_free(&b);
		return NULL;
	}
	free(m->body);
	m->body_len = b.len;
	m->body = sc_buf_take(&b);
	return m->body;
}

const char *sc_message_ensure_ids(struct sc_message *m, const char *domain)
{
	int raw = m->kind == BODY_RAW;
	int has_date = raw ? raw_has(m, "Date") : sc_message_header_get(m, "Date") != NULL;
	int has_id =
	    raw ? raw_has(m, "Message-ID") : sc_message_header_get(m, "Message-ID") != NULL;
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
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd &&
	    RAND_bytes(rnd, sizeof rnd) != 1)
		return NULL;
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	free(m->message_id);
	m->message_id =
	    sc_asprintf("<%s@%s>", hex, domain && *domain ? domain : "smtp-connector.invalid");
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

/* The headers libcurl writes for a MIME body (CURLOPT_HTTPHEADER). */
static int build_applied(struct sc_message *m, struct sc_error *err)
{
	curl_slist_free_all(m->applied);
	m->applied = NULL;
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
	return SC_OK;
}

/* bh=: the digest of the body exactly as it goes on the wire. A raw,
 * single or text body is ours (the same bytes read_wire() uploads); a
 * MIME body is serialised by libcurl, so libcurl makes it for the hash
 * too (mime_hash.c). */
static int body_digest(struct sc_message *m, unsigned char bh[32], struct sc_error *err)
{
	m->signed_size = 0;
	if (m->kind == BODY_MIME) {
		if (build_applied(m, err))
			return err->code;
		return core_mime_body_hash(m->mime, m->applied, bh, &m->signed_size, err);
	}
	struct sig_body b;
	if (sig_body_init(&b))
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	if (m->kind == BODY_RAW) {
		struct sc_rawmsg r;
		if (sc_rawmsg_parse(m->body, m->body_len, &r, err)) {
			sc_rawmsg_free(&r);
			sig_body_free(&b);
			return err->code;
		}
		sig_body_update(&b, m->body + r.body, m->body_len - r.body);
		sc_rawmsg_free(&r);
	} else if (m->kind == BODY_TEXT) {
		char buf[16384];
		size_t n;
		body_stream_rewind(m->text);
		while ((n = body_stream_read(m->text, buf, sizeof buf)) != 0 && n != (size_t)-1)
			sig_body_update(&b, buf, n);
		body_stream_rewind(m->text);
		if (n == (size_t)-1) {
			sig_body_free(&b);
			return sc_error_set(err, SC_ENOMEM, "out of memory");
		}
	} else {
		sig_body_update(&b, m->body, m->body_len);
	}
	return sig_body_final(&b, bh) ? sc_error_set(err, SC_EINTERNAL, "cannot hash the body")
	                              : SC_OK;
}

static int is_signature(const struct sc_rawmsg *r, size_t i, void *arg)
{
	(void)arg;
	return sc_rawmsg_is(r, i, SIG_HEADER);
}

/* A raw message: no signature of its own left in it (it would make two),
 * and each signed header at most once (a verifier refuses a second From:
 * it is how a header is slipped past a signature). */
static int raw_prepare(struct sc_message *m, struct sc_error *err)
{
	struct sc_rawmsg r;
	int rc = sc_rawmsg_parse(m->body, m->body_len, &r, err);
	for (size_t k = 0; !rc && k < sizeof sig_names / sizeof sig_names[0]; k++) {
		size_t i = sc_rawmsg_find(&r, sig_names[k], 0);
		if (i < r.n && sc_rawmsg_find(&r, sig_names[k], i + 1) < r.n)
			rc =
			    sc_error_set(err, SC_EINPUT,
			                 "raw message: the header \"%s\" appears more than once; a "
			                 "signed message (secret_key) has each of From, To, Cc, "
			                 "Subject, Date and Message-ID at most once",
			                 sig_names[k]);
	}
	if (!rc && sc_rawmsg_find(&r, SIG_HEADER, 0) < r.n) {
		size_t len = 0;
		char *t = sc_rawmsg_without(&r, is_signature, NULL, &len);
		if (!t) {
			rc = sc_error_set(err, SC_ENOMEM, "out of memory");
		} else {
			free(m->body);
			m->body = t;
			m->body_len = len;
		}
	}
	sc_rawmsg_free(&r);
	return rc;
}

static char *header_of(void *arg, const char *name)
{
	struct sc_message *m = arg;
	if (m->kind == BODY_RAW)
		return raw_value(m, name);
	const char *v = sc_message_header_get(m, name);
	return v ? strdup(v) : NULL;
}

/* secret_key: an X-SMTP-Connector-Signature v=2 (doc/signatures.md): an
 * HMAC-SHA256 over the identity headers as they go on the wire
 * (unfolded), the signing time and the SHA-256 of the body as sent. A
 * receiver holding the key can tell an alert really came from this
 * connector, unchanged; `smtp-connector verify` and serve's
 * require_signature check it. */
int core_message_sign(struct sc_message *m, const char *key, struct sc_error *err)
{
	unsigned char bh[32];
	int rc = m->kind == BODY_RAW ? raw_prepare(m, err) : SC_OK;
	if (!rc)
		rc = body_digest(m, bh, err);
	if (rc)
		return rc;
	char *val = sig_sign_v2(key, header_of, m, bh, (long long)time(NULL), err);
	if (!val)
		return err->code;
	if (m->kind == BODY_RAW) {
		char *f = sc_asprintf("%s: %s", SIG_HEADER, val);
		if (!f || !prepend_raw(m, f))
			rc = sc_error_set(err, SC_ENOMEM, "out of memory");
		free(f);
	} else {
		rc = sc_message_header(m, SIG_HEADER, val, err);
	}
	if (m->signed_size) /* the same message plus "Name: value" CRLF */
		m->signed_size += (curl_off_t)(strlen(SIG_HEADER) + 2 + strlen(val) + 2);
	free(val);
	return rc;
}

int core_message_check_sent(const struct sc_message *m, CURL *curl, struct sc_error *err)
{
	curl_off_t sent = 0;
	if (!m->signed_size || curl_easy_getinfo(curl, CURLINFO_SIZE_UPLOAD_T, &sent) != CURLE_OK)
		return SC_OK;
	sc_log(SC_LOG_DEBUG, "signed message: %lld octets hashed, %lld sent",
	       (long long)m->signed_size, (long long)sent);
	if (sent == m->signed_size)
		return SC_OK;
	/* libcurl did not send the tree the hash pass read (mime_hash.c
	 * depends on how libcurl rewinds a MIME body): say so loudly, the
	 * message as received is not the one signed. */
	return sc_error_set(
	    err, SC_EINTERNAL,
	    "the server accepted the message, but libcurl %s sent %lld octets where "
	    "%lld were signed: its signature will not verify and its body may be "
	    "incomplete; please report this",
	    curl_version_info(CURLVERSION_NOW)->version, (long long)sent,
	    (long long)m->signed_size);
}

const char *core_message_id(struct sc_message *m)
{
	if (m->kind != BODY_RAW)
		return sc_message_header_get(m, "Message-ID");
	if (!m->message_id) {
		char *v = raw_value(m, "Message-ID");
		if (v) {
			sig_unfold_trim(v, strlen(v));
			m->message_id = v;
		}
	}
	return m->message_id;
}

int core_message_is_8bit(const struct sc_message *m)
{
	if (m->kind == BODY_MIME || m->kind == BODY_TEXT)
		return 0; /* 7bit, quoted-printable or base64 by construction */
	return sc_has_8bit(m->body, m->body_len);
}

/* ------------------------------------------------------------------ */

/* The header block of a single or text body: the headers (values are
 * wire-ready; sc_message_header refused any other line break) and
 * MIME-Version, then the empty line. */
static int build_head(struct sc_message *m)
{
	sc_buf_free(&m->head);
	int rc = SC_OK;
	for (size_t i = 0; !rc && i < m->n; i++)
		rc = sc_buf_printf(&m->head, "%s: %s\r\n", m->names[i], m->values[i]);
	if (!rc && find(m, "MIME-Version") < 0)
		rc = sc_buf_str(&m->head, "MIME-Version: 1.0\r\n");
	if (!rc)
		rc = sc_buf_str(&m->head, "\r\n");
	return rc;
}

static size_t body_size(const struct sc_message *m)
{
	return m->kind == BODY_TEXT ? body_stream_size(m->text) : m->body_len;
}

static size_t read_wire(char *buf, size_t size, size_t nitems, void *arg)
{
	struct sc_message *m = arg;
	size_t cap = size * nitems, n = 0;
	if (m->pos < m->head.len) {
		n = m->head.len - m->pos < cap ? m->head.len - m->pos : cap;
		memcpy(buf, m->head.p + m->pos, n);
		m->pos += n;
	}
	if (n == cap)
		return n;
	if (m->kind == BODY_TEXT) {
		size_t k = body_stream_read(m->text, buf + n, cap - n);
		if (k == (size_t)-1)
			return CURL_READFUNC_ABORT;
		m->pos += k;
		return n + k;
	}
	size_t off = m->pos - m->head.len, left = m->body_len - off;
	size_t k = left < cap - n ? left : cap - n;
	memcpy(buf + n, m->body + off, k);
	m->pos += k;
	return n + k;
}

int core_message_apply(struct sc_message *m, CURL *curl, struct sc_error *err)
{
	curl_slist_free_all(m->applied);
	m->applied = NULL;
	if (m->kind == BODY_MIME) {
		if (build_applied(m, err))
			return err->code;
		curl_easy_setopt(curl, CURLOPT_UPLOAD, 0L);
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, m->applied);
		curl_easy_setopt(curl, CURLOPT_MIMEPOST, m->mime);
		return SC_OK;
	}
	if (m->kind == BODY_NONE)
		return sc_error_set(err, SC_EINTERNAL, "message has no body");
	sc_buf_free(&m->head);
	if (m->kind != BODY_RAW && build_head(m))
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	if (m->text)
		body_stream_rewind(m->text);
	m->pos = 0;
	curl_easy_setopt(curl, CURLOPT_MIMEPOST, NULL);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_wire);
	curl_easy_setopt(curl, CURLOPT_READDATA, m);
	curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)(m->head.len + body_size(m)));
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
