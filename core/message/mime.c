/* MIME parts on libcurl's curl_mime API: text parts pre-encoded by our
 * own encoders (so their size is known and libcurl can declare SIZE),
 * files streamed from disk and base64-encoded by us on the fly (see
 * b64_read) so memory does not grow with attachment size. */
#include "session.h"
#include "body_stream.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

curl_mime *sc_mime_new(struct sc_ctx *ctx)
{
	/* Not bound to an easy handle: the tree is built before the session
	 * exists and is attached to whichever handle sends it. */
	(void)ctx;
	return curl_mime_init(NULL);
}

static curl_mimepart *add_headers(curl_mimepart *part, const char *cte, const char *extra,
                                  struct sc_error *err)
{
	struct curl_slist *h = NULL, *t;
	char *line = sc_asprintf("Content-Transfer-Encoding: %s", cte);
	t = line ? curl_slist_append(h, line) : NULL;
	free(line);
	if (t && extra)
		t = curl_slist_append(t, extra);
	if (!t) {
		curl_slist_free_all(h);
		sc_error_set(err, SC_ENOMEM, "out of memory");
		return NULL;
	}
	curl_mime_headers(part, t, 1);
	return part;
}

char *sc_text_encode(const char *text, size_t len, const char **cte, size_t *outlen)
{
	/* the canonical form of text: every line break CRLF (RFC 2046 §4.1.1) */
	struct sc_buf canon = {0};
	if (sc_buf_add_crlf(&canon, text, len)) {
		sc_buf_free(&canon);
		return NULL;
	}
	*cte = sc_body_encoding(canon.p, canon.len);
	if (!strcmp(*cte, "7bit")) {
		*outlen = canon.len;
		return sc_buf_take(&canon);
	}
	char *enc = !strcmp(*cte, "base64")
	                ? sc_base64_lines((const unsigned char *)canon.p, canon.len, outlen)
	                : sc_qp_encode(canon.p, canon.len, outlen);
	sc_buf_free(&canon);
	return enc;
}

/* A text part whose encoding is made as libcurl reads it (body_stream.c):
 * the text is held once, by the caller (copy == 0) or by the part. */
static curl_mimepart *add_text(curl_mime *mime, const char *type, const char *text, size_t len,
                               int copy, struct sc_error *err)
{
	const char *cte = NULL;
	struct body_stream *bs = body_stream_new(text, len, copy, &cte);
	char *ctype = sc_asprintf("%s; charset=utf-8", type);
	curl_mimepart *part = bs && ctype ? curl_mime_addpart(mime) : NULL;
	if (part && curl_mime_data_cb(part, (curl_off_t)body_stream_size(bs), body_stream_curl_read,
	                              body_stream_curl_seek, body_stream_curl_free, bs) == CURLE_OK)
		bs = NULL; /* the part's now */
	else
		part = NULL;
	if (!part || curl_mime_type(part, ctype) || !add_headers(part, cte, NULL, err)) {
		if (!err || !err->code)
			sc_error_set(err, SC_ENOMEM, "cannot build the %s part", type);
		part = NULL;
	}
	body_stream_free(bs);
	free(ctype);
	return part;
}

curl_mimepart *sc_mime_add_text(curl_mime *mime, const char *type, const char *text, size_t len,
                                struct sc_error *err)
{
	return add_text(mime, type, text, len, 1, err);
}

curl_mimepart *sc_mime_add_text_ref(curl_mime *mime, const char *type, const char *text, size_t len,
                                    struct sc_error *err)
{
	return add_text(mime, type, text, len, 0, err);
}

curl_mime *sc_mime_add_multipart(curl_mime *parent, const char *type, struct sc_error *err)
{
	curl_mime *sub = curl_mime_init(NULL);
	curl_mimepart *part = sub ? curl_mime_addpart(parent) : NULL;
	if (!part || curl_mime_subparts(part, sub) != CURLE_OK) {
		curl_mime_free(sub);
		sc_error_set(err, SC_ENOMEM, "cannot nest a %s part", type);
		return NULL;
	}
	/* libcurl 7.88 writes "Content-Type: <type>; boundary=<40 octets>"
	 * (lib/mime.c, add_content_type), 80 to 112 octets for our types,
	 * and offers no way to fold it. A type ending in CRLF SP moves the
	 * boundary parameter to a continuation line (" ; boundary=...", 53
	 * octets): whitespace before ';' is allowed in a structured field. */
	char *folded = sc_asprintf("%s\r\n ", type);
	if (!folded || curl_mime_type(part, folded) != CURLE_OK) {
		free(folded);
		sc_error_set(err, SC_ENOMEM, "out of memory");
		return NULL; /* `sub` is the parent's now */
	}
	free(folded);
	return sub;
}

/* message/ parts must not be base64 (RFC 2046 §5.2.1): send them as
 * 7bit when they may go on the wire byte for byte (ASCII, no NUL, every
 * line ended by CRLF and at most 998 octets), else as a plain binary
 * attachment (application/octet-stream, base64). A file with LF line
 * ends sent as 7bit carried bare LFs past dot-stuffing ("\n.\n" is the
 * SMTP smuggling shape); an 8-bit one would need BODY=8BITMIME, which the
 * envelope of a MIME tree does not ask for. Read through the vault
 * file's descriptor. NULL: not sendable as is. */
static const char *message_encoding(int fd, off_t size)
{
	unsigned char buf[65536];
	off_t at = 0;
	long col = 0;
	int prev = '\n';
	while (at < size) {
		ssize_t n = pread(fd, buf, sizeof buf, at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return NULL;
		for (ssize_t i = 0; i < n; i++) {
			int c = buf[i];
			if (c == 0 || c >= 0x80 || (prev == '\r' && c != '\n') ||
			    (c == '\n' && prev != '\r'))
				return NULL;
			if (c == '\n')
				col = 0;
			else if (c != '\r' && ++col > 998)
				return NULL;
			prev = c;
		}
		at += n;
	}
	return prev == '\r' ? NULL : "7bit";
}

/* Content-Type's name=: RFC 2231 is the standard, but Outlook and some
 * webmails only read an RFC 2047 encoded word in quotes here, so that is
 * what a non-ASCII name gets; Content-Disposition carries the RFC 2231
 * filename* every client reads. */
#define NAME_EW_MAX (76 - 8) /* " name=\"" + words + "\"" on a line of its own */

static char *name_param_of(const char *name)
{
	if (sc_str_8bit(name)) {
		char *enc = sc_header_encode_phrase(name, 0);
		/* only when it fits one line: a folded quoted string is read
		 * differently by different clients; RFC 2231 then */
		if (enc && !strpbrk(enc, "\r\n\"") && strncmp(enc, "=?", 2) == 0 &&
		    strlen(enc) <= NAME_EW_MAX) {
			char *p = sc_asprintf("name=\"%s\"", enc);
			free(enc);
			return p;
		}
		free(enc);
	}
	return sc_mime_param_encode("name", name);
}

/* ---- file parts ---------------------------------------------------- *
 *
 * A file attachment is a curl_mime_data_cb part whose callback reads the
 * vault file through the descriptor sc_vault_resolve() checked (pread, so
 * the file is never opened by path again: what was checked is what is
 * sent) and, for base64, encodes it itself. Not curl_mime_filedata plus
 * curl_mime_encoder(part, "base64"): that was 4 times slower than
 * uploading the same message pre-encoded: in libcurl 7.88 (lib/mime.c) a
 * file or callback part gets one read of its source per libcurl read
 * call (it is not MIME_FAST_READ), and libcurl's base64 encoder pulls its
 * input through a 256-byte buffer, so every libcurl read returned about
 * 340 encoded bytes and SMTP sent each with its own send() (82,249 sends
 * for 20 MiB). Our callback fills the whole buffer libcurl offers (its
 * 64 KiB upload buffer) in that one read: 445 sends for 20 MiB, and
 * bench/ (c), 200 MiB: 6.5 s -> 1.6 s (pre-encoded upload 1.4 s). Memory
 * stays flat: one 48 KiB input chunk while the part is being read, plus
 * one encoded line carried between calls.
 *
 * The base64 output is exactly sc_base64_lines() (transfer_encoding.c):
 * 76-column lines of EVP_EncodeBlock per 57 input bytes, each ended by
 * CRLF, the last (shorter) line too; nothing for an empty file. Its
 * length is known from the file size (b64_size), so libcurl still
 * declares SIZE=. A 7bit message/ part is the file's bytes as they are
 * (message_encoding() checked them). */

#define B64_IN 57                     /* octets per line */
#define B64_LINE (4 * B64_IN / 3 + 2) /* 76 characters + CRLF */
#define B64_CHUNK (862 * B64_IN)      /* 49,134 octets (48 KiB) per read */

struct file_part {
	int fd;            /* dup of the vault file's descriptor; owned */
	int base64;        /* 0: the bytes as they are */
	curl_off_t size;   /* file size, from fstat at resolve time */
	curl_off_t done;   /* octets of the file read so far */
	unsigned char *in; /* B64_CHUNK octets read, not yet all sent */
	size_t ipos, ilen;
	char line[B64_LINE + 1]; /* an encoded line that did not fit */
	size_t lpos, llen;
	int failed;
};

/* Exact encoded length: every full group of 57 octets is 78 bytes, a
 * final partial group of r octets is 4*ceil(r/3) characters + CRLF. */
static curl_off_t b64_size(curl_off_t n)
{
	curl_off_t r = n % B64_IN;
	return n / B64_IN * B64_LINE + (r ? (r + 2) / 3 * 4 + 2 : 0);
}

static void fp_release(struct file_part *s)
{
	free(s->in);
	s->in = NULL;
	s->ipos = s->ilen = 0;
}

/* Read the next chunk; the file must hold exactly s->size octets (that
 * size was declared to the server). */
static int fp_fill(struct file_part *s)
{
	if (!s->in && !(s->in = malloc(B64_CHUNK)))
		return -1;
	curl_off_t left = s->size - s->done;
	size_t want = left < B64_CHUNK ? (size_t)left : B64_CHUNK;
	size_t got = 0;
	while (got < want) {
		ssize_t r =
		    pread(s->fd, s->in + got, want - got, (off_t)(s->done + (curl_off_t)got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1; /* read error, or the file shrank */
		got += (size_t)r;
	}
	s->ipos = 0;
	s->ilen = got;
	s->done += (curl_off_t)got;
	if (s->done == s->size) {
		unsigned char extra;
		ssize_t r;
		while ((r = pread(s->fd, &extra, 1, (off_t)s->done)) < 0 && errno == EINTR)
			;
		if (r != 0)
			return -1; /* read error, or the file grew */
	}
	return 0;
}

/* One base64 line into buf (when it fits) or into s->line. */
static size_t fp_line(struct file_part *s, char *buf, size_t room)
{
	size_t g = s->ilen - s->ipos < B64_IN ? s->ilen - s->ipos : B64_IN;
	size_t len = (g + 2) / 3 * 4 + 2;
	/* EVP_EncodeBlock writes len - 2 characters and a NUL, which the CR
	 * overwrites: a line goes straight into libcurl's buffer when it
	 * fits, else into s->line to be handed out by the next calls. */
	char *dst = room >= len ? buf : s->line;
	int e = EVP_EncodeBlock((unsigned char *)dst, s->in + s->ipos, (int)g);
	dst[e] = '\r';
	dst[e + 1] = '\n';
	s->ipos += g;
	if (dst == buf)
		return len;
	s->lpos = 0;
	s->llen = len;
	return 0;
}

static size_t fp_read(char *buf, size_t size, size_t nitems, void *arg)
{
	struct file_part *s = arg;
	size_t cap = size * nitems, n = 0;
	if (s->failed)
		return CURL_READFUNC_ABORT;
	while (n < cap) {
		if (s->lpos < s->llen) {
			size_t k = s->llen - s->lpos < cap - n ? s->llen - s->lpos : cap - n;
			memcpy(buf + n, s->line + s->lpos, k);
			s->lpos += k;
			n += k;
			continue;
		}
		if (s->ipos == s->ilen) {
			if (s->done == s->size) {
				fp_release(s);
				break;
			}
			if (fp_fill(s)) {
				fp_release(s);
				s->failed = 1;
				return CURL_READFUNC_ABORT;
			}
		}
		if (!s->base64) {
			size_t k = s->ilen - s->ipos < cap - n ? s->ilen - s->ipos : cap - n;
			memcpy(buf + n, s->in + s->ipos, k);
			s->ipos += k;
			n += k;
		} else {
			n += fp_line(s, buf + n, cap - n);
		}
	}
	return n;
}

/* libcurl rewinds mime data before each transfer it (re)sends: start over
 * from the first octet. */
static int fp_seek(void *arg, curl_off_t offset, int origin)
{
	struct file_part *s = arg;
	if (offset != 0 || origin != SEEK_SET)
		return CURL_SEEKFUNC_CANTSEEK;
	fp_release(s);
	s->done = 0;
	s->lpos = s->llen = 0;
	s->failed = 0;
	return CURL_SEEKFUNC_OK;
}

static void fp_free(void *arg)
{
	struct file_part *s = arg;
	if (!s)
		return;
	fp_release(s);
	if (s->fd >= 0)
		close(s->fd);
	free(s);
}

/* Make `part` the file `f` (base64, or as is), read through its own
 * duplicate of f's descriptor (the part may outlive `f`). */
static int file_part(curl_mimepart *part, const struct sc_vault_file *f, int base64)
{
	struct file_part *s = calloc(1, sizeof *s);
	if (!s)
		return -1;
	s->fd = fcntl(f->fd, F_DUPFD_CLOEXEC, 3);
	s->base64 = base64;
	s->size = (curl_off_t)f->size;
	if (s->fd < 0 || curl_mime_data_cb(part, base64 ? b64_size(s->size) : s->size, fp_read,
	                                   fp_seek, fp_free, s)) {
		fp_free(s); /* not registered: libcurl fails only before taking it */
		return -1;
	}
	return 0;
}

/* curl_slist_append, freeing the list when it fails. */
static struct curl_slist *slist_add(struct curl_slist *h, const char *s)
{
	struct curl_slist *t = curl_slist_append(h, s);
	if (!t)
		curl_slist_free_all(h);
	return t;
}

/* Octets up to the first CRLF of s (all of it without one). */
static size_t first_line(const char *s)
{
	const char *e = strstr(s, "\r\n");
	return e ? (size_t)(e - s) : strlen(s);
}

/* `value` + "; " + `param`, or with a fold (";" CRLF SP) before the
 * parameter when its first line would pass 78 octets (76 with an
 * encoded word) after the `prefix` octets of "Name: " and the value:
 * sc_mime_param_encode sizes its continuations for a line of their own. */
static char *join_param(size_t prefix, const char *value, const char *param)
{
	size_t max = strstr(param, "=?") ? 76 : 78;
	int fold = prefix + strlen(value) + 2 + first_line(param) > max;
	return sc_asprintf("%s;%s%s", value, fold ? "\r\n " : " ", param);
}

curl_mimepart *sc_mime_add_file(curl_mime *mime, const struct sc_vault_file *f,
                                const char *disposition, const char *cid, struct sc_error *err)
{
	const char *type = f->content_type;
	const char *cte = "base64";
	if (strncmp(type, "message/", 8) == 0) {
		cte = message_encoding(f->fd, f->size);
		if (!cte) {
			type = "application/octet-stream";
			cte = "base64";
		}
	}
	int base64 = !strcmp(cte, "base64");
	char *name_param = name_param_of(f->name);
	char *file_param = sc_mime_param_encode("filename", f->name);
	char *ctype = name_param ? join_param(strlen("Content-Type: "), type, name_param) : NULL;
	char *dispv = file_param
	                  ? join_param(strlen("Content-Disposition: "), disposition, file_param)
	                  : NULL;
	char *disp = dispv ? sc_asprintf("Content-Disposition: %s", dispv) : NULL;
	free(dispv);
	char *cidh = cid ? sc_asprintf("Content-ID: <%s>", cid) : NULL;
	char *cteh = sc_asprintf("Content-Transfer-Encoding: %s", cte);
	curl_mimepart *part =
	    ctype && disp && cteh && (!cid || cidh) ? curl_mime_addpart(mime) : NULL;
	struct curl_slist *h = NULL;
	if (part) {
		/* Our own Content-Transfer-Encoding in every case (libcurl adds
		 * one only to a part with no such header: the encoder's name, or
		 * 8bit without an encoder). For base64 it comes first, right
		 * after libcurl's Content-Type, where libcurl's encoder put it. */
		h = slist_add(NULL, base64 ? cteh : disp);
		if (h && base64)
			h = slist_add(h, disp);
		if (h && cidh)
			h = slist_add(h, cidh);
		if (h && !base64)
			h = slist_add(h, cteh);
	}
	if (!part || !h || file_part(part, f, base64) || curl_mime_type(part, ctype)) {
		curl_slist_free_all(h);
		sc_error_set(err, SC_EIO, "cannot attach vault id %s (%s)", f->id, f->path);
		part = NULL;
	} else {
		curl_mime_headers(part, h, 1);
	}
	free(name_param);
	free(file_param);
	free(ctype);
	free(disp);
	free(cidh);
	free(cteh);
	return part;
}
