/* sc_inbound_summary(): a received message file -> the JSON summary
 * (contract in sink.h), in one streaming walk.
 *
 * The file is read in chunks and split into lines; a line longer than
 * the read buffer arrives in pieces (it cannot be a boundary). Each line
 * is first checked against the boundaries of the open multiparts
 * (innermost first; an outer one closes the inner ones, as RFC 2046
 * readers do with a missing close delimiter), then goes to the current
 * part: its header section, or its body. Bodies are never held, except
 * the one chosen as "body", up to max_body: attachments are decoded
 * only to be counted.
 *
 * Which part is the body is only known at the end when the first text
 * part is HTML (a text/plain one may follow). Rather than hold that HTML
 * too, the walk remembers which leaf it was and, when no text/plain
 * came, reads the file a second time to decode just that leaf: memory
 * stays max_body plus a header section, the price is a second read in
 * that uncommon case.
 *
 * Line ends are CRLF (as the listener stores messages) or a bare LF; a
 * bare CR is text, since the listener refuses it in DATA (the SMTP
 * smuggling defence) and so never stores one as a line end. */
#include "inbound.h"
#include "core.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define READ_CHUNK ((size_t)64 << 10)
#define DRAIN_AT ((size_t)4 << 10)

/* ---- lines ------------------------------------------------------------- */

struct reader {
	FILE *f; /* NULL: the whole message is in buf, the caller's */
	char *buf;
	size_t cap; /* READ_CHUNK; smaller in tests, to cut lines into pieces */
	size_t start, end;
	int eof, error, line_start;
};

struct piece {
	const char *p;
	size_t n;  /* bytes, without the line end */
	int first; /* starts a line */
	int whole; /* ... and the whole line is here (a boundary may be) */
	int eol;   /* a line end ("\n" or "\r\n") followed */
	int eol_len;
};

static int reader_next(struct reader *r, struct piece *pc)
{
	for (;;) {
		char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
		if (nl) {
			pc->p = r->buf + r->start;
			pc->n = (size_t)(nl - pc->p);
			pc->eol_len = 1;
			if (pc->n && pc->p[pc->n - 1] == '\r') {
				pc->n--;
				pc->eol_len = 2;
			}
			pc->first = r->line_start;
			pc->whole = pc->first;
			pc->eol = 1;
			r->line_start = 1;
			r->start = (size_t)(nl + 1 - r->buf);
			return 1;
		}
		if (r->eof || r->error) {
			if (r->start == r->end)
				return 0;
			*pc = (struct piece){r->buf + r->start,
			                     r->end - r->start,
			                     r->line_start,
			                     r->line_start,
			                     0,
			                     0};
			r->start = r->end;
			r->line_start = 0;
			return 1;
		}
		if (r->start) {
			memmove(r->buf, r->buf + r->start, r->end - r->start);
			r->end -= r->start;
			r->start = 0;
		}
		if (r->end == r->cap) {
			/* A line longer than the buffer: hand it on in pieces,
			 * keeping a final CR that may start the line end. */
			size_t n = r->buf[r->end - 1] == '\r' ? r->end - 1 : r->end;
			*pc = (struct piece){r->buf, n, r->line_start, 0, 0, 0};
			r->start = n;
			r->line_start = 0;
			return 1;
		}
		size_t got = fread(r->buf + r->end, 1, r->cap - r->end, r->f);
		r->end += got;
		if (got == 0) {
			if (ferror(r->f))
				r->error = errno ? errno : EIO;
			else
				r->eof = 1;
		}
	}
}

/* ---- the walk ------------------------------------------------------------ */

enum pstate { P_HEADERS, P_LEAF, P_SKIP };
enum role { R_NONE, R_BODY, R_COUNT };

struct frame {
	char *boundary;
	size_t blen;
	int digest; /* multipart/digest: parts default to message/rfc822 */
};

struct walk {
	long target; /* -1: first pass; else the leaf to decode as body */
	size_t max_body;
	struct reader rd;
	struct frame stack[INB_MAX_DEPTH];
	int depth;
	int done;

	/* the current part */
	enum pstate ps;
	int top; /* the message's own header section */
	struct sc_buf hdr;
	size_t hdr_max;
	int hdr_cut;
	int first_line; /* nothing read yet in this section */
	struct inb_mime mime;
	struct inb_tdec tdec;
	struct inb_conv conv;
	enum role role;
	size_t size; /* decoded bytes of a counted part */
	long nleaf;
	struct sc_buf scratch, utf;

	/* results */
	struct sc_buf top_hdr; /* the message's header section, kept */
	struct inb_field *fields;
	size_t nfields;
	int headers_cut;
	struct sc_buf body;
	int body_cut, have_body;
	const char *body_type;
	long html_leaf;
	cJSON *attachments;
	size_t natt;
	int att_cut;
};

static void part_reset(struct walk *w, int top)
{
	w->ps = P_HEADERS;
	w->top = top;
	w->hdr.len = 0;
	w->hdr_max = top ? INB_TOP_HEADER_MAX : INB_PART_HEADER_MAX;
	w->hdr_cut = 0;
	w->first_line = 1;
}

static int body_add(struct walk *w, const char *s, size_t n)
{
	if (w->body_cut)
		return SC_OK;
	size_t room = w->max_body - w->body.len;
	if (n > room) {
		/* Cut before the character that does not fit (s is UTF-8). */
		size_t k = room;
		while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
			k--;
		n = k;
		w->body_cut = 1;
	}
	return sc_buf_add(&w->body, s, n);
}

/* Move what the transfer decoder wrote on: counted or converted. */
static int drain(struct walk *w)
{
	int rc = SC_OK;
	if (w->role == R_COUNT) {
		w->size += w->scratch.len;
	} else if (w->role == R_BODY && !w->body_cut) {
		w->utf.len = 0;
		rc = inb_conv_feed(&w->conv, w->scratch.p, w->scratch.len, &w->utf);
		if (rc == SC_OK)
			rc = body_add(w, w->utf.p, w->utf.len);
	}
	w->scratch.len = 0;
	return rc;
}

static int is_text(const char *type, const char *sub)
{
	return !strncmp(type, "text/", 5) && !strcmp(type + 5, sub);
}

static enum role choose_role(struct walk *w, long leaf)
{
	const struct inb_mime *m = &w->mime;
	if (w->target >= 0)
		return leaf == w->target ? R_BODY : R_NONE;
	if (!m->attachment && !w->have_body && is_text(m->type, "plain")) {
		w->have_body = 1;
		w->body_type = "text/plain";
		return R_BODY;
	}
	if (!m->attachment && is_text(m->type, "html")) {
		if (w->html_leaf < 0 && !w->have_body)
			w->html_leaf = leaf;
		return R_NONE;
	}
	if (m->attachment || strncmp(m->type, "text/", 5))
		return R_COUNT;
	return R_NONE; /* another inline text part: neither body nor file */
}

static int leaf_start(struct walk *w)
{
	long leaf = w->nleaf++;
	w->role = choose_role(w, leaf);
	w->size = 0;
	w->ps = P_LEAF;
	if (w->role == R_BODY)
		inb_conv_open(&w->conv, w->mime.charset,
		              w->mime.charset ? strlen(w->mime.charset) : 0);
	return inb_tdec_init(&w->tdec, w->mime.cte);
}

/* Cut s to at most max bytes, before a whole UTF-8 character. */
static void utf8_cut(char *s, size_t max)
{
	size_t n = strlen(s);
	if (n <= max)
		return;
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	s[max] = '\0';
}

/* An entry of "attachments". Name and type are cut (1,000 entries of
 * 64 KiB names would be 64 MiB held for a listing). */
static int attachment_add(struct walk *w)
{
	if (w->natt == INB_MAX_ATTACHMENTS) {
		w->att_cut = 1;
		return SC_OK;
	}
	if (w->mime.name)
		utf8_cut(w->mime.name, INB_NAME_MAX);
	utf8_cut(w->mime.type, INB_NAME_MAX);
	cJSON *a = cJSON_CreateObject();
	if (!a || !cJSON_AddItemToArray(w->attachments, a) ||
	    !cJSON_AddStringToObject(a, "name", w->mime.name ? w->mime.name : "") ||
	    !cJSON_AddStringToObject(a, "content_type", w->mime.type) ||
	    !cJSON_AddNumberToObject(a, "size", (double)w->size))
		return SC_ENOMEM;
	w->natt++;
	return SC_OK;
}

/* The part ends: at a boundary (final 0) or at the end of the file. */
static int leaf_finish(struct walk *w, int final)
{
	int rc = inb_tdec_finish(&w->tdec, final, &w->scratch);
	if (rc == SC_OK)
		rc = drain(w);
	if (rc == SC_OK && w->role == R_BODY && !w->body_cut) {
		w->utf.len = 0;
		rc = inb_conv_finish(&w->conv, &w->utf);
		if (rc == SC_OK)
			rc = body_add(w, w->utf.p, w->utf.len);
	}
	if (rc == SC_OK && w->role == R_COUNT)
		rc = attachment_add(w);
	if (w->role == R_BODY) {
		inb_conv_close(&w->conv);
		if (w->target >= 0)
			w->done = 1;
	}
	inb_tdec_free(&w->tdec);
	inb_mime_free(&w->mime);
	w->role = R_NONE;
	w->ps = P_SKIP;
	return rc;
}

/* The blank line after a header section (or whatever ended it). */
static int headers_end(struct walk *w)
{
	struct inb_field *f = NULL;
	size_t n = 0;
	int cut = 0, rc;
	const char *dflt =
	    w->depth && w->stack[w->depth - 1].digest ? "message/rfc822" : "text/plain";

	if (w->top && w->target < 0) {
		/* Kept for "headers": split in its own buffer. */
		sc_buf_free(&w->top_hdr);
		w->top_hdr = w->hdr;
		memset(&w->hdr, 0, sizeof w->hdr);
		rc = inb_fields_split(w->top_hdr.p, w->top_hdr.len, INB_MAX_FIELDS, &f, &n, &cut);
		w->headers_cut = cut || w->hdr_cut;
	} else {
		rc = inb_fields_split(w->hdr.p, w->hdr.len, INB_MAX_FIELDS, &f, &n, &cut);
	}
	if (rc == SC_OK)
		rc = inb_mime_from_fields(f, n, dflt, &w->mime);
	if (w->top && w->target < 0) {
		w->fields = f;
		w->nfields = n;
	} else {
		free(f);
	}
	if (rc)
		return rc;
	if (!strncmp(w->mime.type, "multipart/", 10)) {
		if (w->mime.boundary && w->depth < INB_MAX_DEPTH) {
			struct frame *fr = &w->stack[w->depth++];
			fr->boundary = w->mime.boundary;
			fr->blen = w->mime.blen;
			fr->digest = !strcmp(w->mime.type, "multipart/digest");
			w->mime.boundary = NULL;
			inb_mime_free(&w->mime);
			w->ps = P_SKIP; /* the preamble */
			return SC_OK;
		}
		if (!w->mime.boundary) {
			/* No boundary to split on: read it as the text it is. */
			free(w->mime.type);
			if (!(w->mime.type = strdup("text/plain")))
				return SC_ENOMEM;
		}
	}
	return leaf_start(w);
}

static int header_line(struct walk *w, const struct piece *pc)
{
	if (pc->first && pc->n == 0 && pc->eol)
		return headers_end(w);
	if (pc->first && !(pc->n && (pc->p[0] == ' ' || pc->p[0] == '\t')) &&
	    !inb_is_field_start(pc->p, pc->n)) {
		/* An mbox "From " line before the first field is skipped;
		 * any other non-field line ends the section and is body. */
		if (w->top && w->first_line && pc->n >= 5 && !memcmp(pc->p, "From ", 5))
			return SC_OK;
		int rc = headers_end(w);
		return rc ? rc : -1; /* -1: hand the line to the body */
	}
	w->first_line = 0;
	if (w->hdr_cut || w->hdr.len + pc->n + 1 > w->hdr_max) {
		w->hdr_cut = 1;
		return SC_OK;
	}
	if (sc_buf_add(&w->hdr, pc->p, pc->n) || (pc->eol && sc_buf_add(&w->hdr, "\n", 1)))
		return SC_ENOMEM;
	return SC_OK;
}

static int body_piece(struct walk *w, const struct piece *pc)
{
	if (w->ps != P_LEAF || w->role == R_NONE)
		return SC_OK;
	int rc = inb_tdec_feed(&w->tdec, pc->p, pc->n, &w->scratch);
	if (rc == SC_OK && pc->eol)
		rc = inb_tdec_eol(&w->tdec, &w->scratch);
	/* drained in chunks, not per line: a drain is a conversion call and
	 * two copies, and leaf_finish() drains what is left. Small chunks:
	 * sixteen deliveries at once each holding 64 KiB of scratch raised
	 * serve's RSS by 3-4 MiB */
	if (rc == SC_OK && w->scratch.len >= DRAIN_AT)
		rc = drain(w);
	return rc;
}

static int part_end(struct walk *w, int final)
{
	int rc = SC_OK;
	if (w->ps == P_HEADERS)
		rc = headers_end(w);
	if (rc == SC_OK && w->ps == P_LEAF)
		rc = leaf_finish(w, final);
	return rc;
}

/* 1 when the line was a boundary of an open multipart (and handled). */
static int boundary_line(struct walk *w, const struct piece *pc, int *rc)
{
	for (int i = w->depth - 1; i >= 0; i--) {
		int m = inb_boundary_match(pc->p, pc->n, w->stack[i].boundary, w->stack[i].blen);
		if (!m)
			continue;
		*rc = part_end(w, 0);
		/* part_end may have opened a multipart (a part with headers
		 * and no body): it closes here too. */
		while (w->depth > i + 1)
			free(w->stack[--w->depth].boundary);
		if (m == 2)
			w->ps = P_SKIP; /* the epilogue */
		else
			part_reset(w, 0);
		return 1;
	}
	return 0;
}

static int walk_run(struct walk *w)
{
	struct piece pc;
	int rc = SC_OK;

	part_reset(w, 1);
	while (rc == SC_OK && !w->done && reader_next(&w->rd, &pc)) {
		if (pc.whole && w->depth && boundary_line(w, &pc, &rc))
			continue;
		if (w->ps == P_HEADERS) {
			rc = header_line(w, &pc);
			if (rc != -1)
				continue;
			rc = SC_OK;
		}
		rc = body_piece(w, &pc);
	}
	if (rc == SC_OK && !w->done)
		rc = part_end(w, 1);
	if (rc == SC_OK && w->rd.error)
		rc = SC_EIO;
	return rc;
}

static void walk_clear_pass(struct walk *w)
{
	while (w->depth)
		free(w->stack[--w->depth].boundary);
	if (w->ps == P_LEAF) {
		inb_tdec_free(&w->tdec);
		if (w->role == R_BODY)
			inb_conv_close(&w->conv);
	}
	inb_mime_free(&w->mime);
	w->ps = P_SKIP;
	w->role = R_NONE;
}

/* ---- the object ---------------------------------------------------------- */

static cJSON *text_item(const char *s, size_t n, int rfc2047)
{
	struct sc_buf b = {0};
	int rc = rfc2047 ? inb_rfc2047_decode(s, n, &b) : inb_utf8_append(&b, s, n);
	if (rc == SC_OK)
		rc = sc_buf_add(&b, "", 0);
	cJSON *it = rc == SC_OK ? cJSON_CreateString(b.p) : NULL;
	sc_buf_free(&b);
	return it;
}

struct slot {
	const char *name;
	size_t nlen;
	cJSON *item; /* the string, or the array once the name repeats */
};

static size_t name_hash(const char *s, size_t n)
{
	size_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)(s[i] | 0x20)) * 16777619u;
	return h;
}

/* Add value v to the array or string in slot s (making it an array). */
static int slot_add(cJSON *obj, struct slot *s, cJSON *v)
{
	if (cJSON_IsArray(s->item))
		return cJSON_AddItemToArray(s->item, v) ? SC_OK : SC_ENOMEM;
	cJSON *arr = cJSON_CreateArray(), *first = cJSON_CreateString(s->item->valuestring);
	if (!arr || !first || !cJSON_AddItemToArray(arr, first) || !cJSON_AddItemToArray(arr, v)) {
		cJSON_Delete(arr);
		cJSON_Delete(first);
		cJSON_Delete(v);
		return SC_ENOMEM;
	}
	/* The array takes over the key, then replaces the string. */
	arr->string = s->item->string;
	s->item->string = NULL;
	cJSON_ReplaceItemViaPointer(obj, s->item, arr);
	s->item = arr;
	return SC_OK;
}

/* "headers": names grouped case-insensitively under their first
 * spelling, in a hash table so that a section of 10,000 fields stays
 * linear. */
static cJSON *headers_json(const struct inb_field *f, size_t n)
{
	size_t cap = 16;
	while (cap < 2 * n)
		cap *= 2;
	struct slot *t = calloc(cap, sizeof *t);
	cJSON *obj = cJSON_CreateObject();
	if (!t || !obj)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		size_t h = name_hash(f[i].name, f[i].nlen) & (cap - 1);
		while (t[h].name &&
		       !(t[h].nlen == f[i].nlen && !strncasecmp(t[h].name, f[i].name, f[i].nlen)))
			h = (h + 1) & (cap - 1);
		cJSON *v = text_item(f[i].value, f[i].vlen, 1);
		if (!v)
			goto nomem;
		if (t[h].name) {
			if (slot_add(obj, &t[h], v))
				goto nomem;
			continue;
		}
		cJSON *key = text_item(f[i].name, f[i].nlen, 0);
		if (!key || !cJSON_AddItemToObject(obj, key->valuestring, v)) {
			cJSON_Delete(key);
			cJSON_Delete(v);
			goto nomem;
		}
		cJSON_Delete(key);
		t[h] = (struct slot){f[i].name, f[i].nlen, v};
	}
	free(t);
	return obj;
nomem:
	free(t);
	cJSON_Delete(obj);
	return NULL;
}

static const struct inb_field *field_find(const struct walk *w, const char *name)
{
	size_t l = strlen(name);
	for (size_t i = 0; i < w->nfields; i++)
		if (w->fields[i].nlen == l && !strncasecmp(w->fields[i].name, name, l))
			return &w->fields[i];
	return NULL;
}

static cJSON *message_id(const struct walk *w)
{
	const struct inb_field *f = field_find(w, "Message-ID");
	if (!f)
		return cJSON_CreateNull();
	const char *s = f->value, *lt = memchr(s, '<', f->vlen);
	size_t n = f->vlen;
	if (lt) {
		const char *gt = memchr(lt, '>', n - (size_t)(lt - s));
		if (gt) {
			s = lt + 1;
			n = (size_t)(gt - s);
		}
	}
	return n ? text_item(s, n, 0) : cJSON_CreateNull();
}

/* Line ends of the body as "\n": transport CRLFs are already gone, this
 * catches those a base64 or quoted-printable body carried. */
static void crlf_to_lf(struct sc_buf *b)
{
	size_t w = 0;
	for (size_t r = 0; r < b->len; r++)
		if (!(b->p[r] == '\r' && r + 1 < b->len && b->p[r + 1] == '\n'))
			b->p[w++] = b->p[r];
	b->len = w;
	if (b->p)
		b->p[w] = '\0';
}

static cJSON *build(struct walk *w)
{
	cJSON *o = cJSON_CreateObject();
	const struct inb_field *subj = field_find(w, "Subject");
	cJSON *s = subj ? text_item(subj->value, subj->vlen, 1) : cJSON_CreateString("");
	cJSON *mid = message_id(w), *h = headers_json(w->fields, w->nfields);
	crlf_to_lf(&w->body);
	cJSON *body = cJSON_CreateString(w->body.p ? w->body.p : "");
	if (!o || !s || !mid || !h || !body) {
		cJSON_Delete(s);
		cJSON_Delete(mid);
		cJSON_Delete(h);
		cJSON_Delete(body);
		cJSON_Delete(o);
		return NULL;
	}
	cJSON_AddItemToObject(o, "subject", s);
	cJSON_AddItemToObject(o, "message_id", mid);
	cJSON_AddItemToObject(o, "headers", h);
	cJSON_AddItemToObject(o, "body", body);
	cJSON_AddItemToObject(o, "attachments", w->attachments);
	w->attachments = NULL;
	int ok = 1;
	if (w->body_type)
		ok = cJSON_AddStringToObject(o, "body_type", w->body_type) != NULL;
	else
		ok = cJSON_AddNullToObject(o, "body_type") != NULL;
	if (w->body_cut)
		ok = ok && cJSON_AddTrueToObject(o, "body_truncated");
	if (w->headers_cut)
		ok = ok && cJSON_AddTrueToObject(o, "headers_truncated");
	if (w->att_cut)
		ok = ok && cJSON_AddTrueToObject(o, "attachments_truncated");
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static void walk_free(struct walk *w)
{
	walk_clear_pass(w);
	if (w->rd.f)
		free(w->rd.buf);
	sc_buf_free(&w->hdr);
	sc_buf_free(&w->scratch);
	sc_buf_free(&w->utf);
	sc_buf_free(&w->top_hdr);
	sc_buf_free(&w->body);
	free(w->fields);
	cJSON_Delete(w->attachments);
}

/* Second pass: decode the HTML leaf the first pass remembered. */
static int html_pass(struct walk *w, FILE *f)
{
	if (f && fseek(f, 0, SEEK_SET) != 0)
		return SC_EIO;
	if (f)
		clearerr(f);
	walk_clear_pass(w);
	/* from memory: all of it is there again, and at its end */
	w->rd = f ? (struct reader){f, w->rd.buf, w->rd.cap, 0, 0, 0, 0, 1}
	          : (struct reader){NULL, w->rd.buf, w->rd.cap, 0, w->rd.cap, 1, 0, 1};
	w->target = w->html_leaf;
	w->nleaf = 0;
	w->done = 0;
	w->body_type = "text/html";
	return walk_run(w);
}

/* The walk over a stream f read in chunks, or (f NULL) over len bytes
 * at mem that the reader hands out in place: it never writes into its
 * buffer once it holds the whole input (eof set), so mem is only read. */
static int summary_of(FILE *f, const char *mem, size_t len, size_t max_body, size_t chunk,
                      cJSON **out, struct sc_error *err)
{
	struct walk w;
	memset(&w, 0, sizeof w);
	w.target = -1;
	w.html_leaf = -1;
	w.max_body = max_body;
	w.rd.f = f;
	w.rd.line_start = 1;
	if (f) {
		w.rd.cap = chunk < 2 ? 2 : chunk; /* a held CR leaves a byte to hand on */
		w.rd.buf = malloc(w.rd.cap);
	} else {
		w.rd.buf = (char *)(len ? mem : "");
		w.rd.cap = w.rd.end = len;
		w.rd.eof = 1;
	}
	w.attachments = cJSON_CreateArray();
	int rc = w.rd.buf && w.attachments ? walk_run(&w) : SC_ENOMEM;
	if (rc == SC_OK && !w.have_body && w.html_leaf >= 0)
		rc = html_pass(&w, f);
	if (rc == SC_OK && !(*out = build(&w)))
		rc = SC_ENOMEM;
	walk_free(&w);
	if (rc == SC_EIO)
		return sc_error_set(err, SC_EIO, "reading the received message: %s",
		                    strerror(w.rd.error ? w.rd.error : EIO));
	if (rc)
		return sc_error_set(err, SC_ENOMEM, "out of memory reading the received message");
	return SC_OK;
}

int inb_summary_chunked(FILE *f, size_t max_body, size_t chunk, cJSON **out, struct sc_error *err)
{
	return summary_of(f, NULL, 0, max_body, chunk, out, err);
}

int inb_summary_stream(FILE *f, size_t max_body, cJSON **out, struct sc_error *err)
{
	return inb_summary_chunked(f, max_body, READ_CHUNK, out, err);
}

int sc_inbound_summary(const char *path, size_t max_body, cJSON **out, struct sc_error *err)
{
	*out = NULL;
	FILE *f = fopen(path, "rb");
	if (!f)
		return sc_error_set(err, SC_EIO, "cannot open the received message %s: %s", path,
		                    strerror(errno));
	int rc = inb_summary_stream(f, max_body, out, err);
	fclose(f);
	return rc;
}

int sc_inbound_summary_mem(const void *p, size_t len, size_t max_body, cJSON **out,
                           struct sc_error *err)
{
	*out = NULL;
	/* walked in place: no stream, no 64 KiB buffer, no copy */
	return summary_of(NULL, p, len, max_body, 0, out, err);
}
