/* MIME parts on libcurl's curl_mime API: text parts pre-encoded by our
 * own encoders (so their size is known and libcurl can declare SIZE),
 * files streamed from disk through libcurl's base64 encoder so memory
 * does not grow with attachment size. */
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

curl_mime *sc_mime_new(struct sc_ctx *ctx)
{
	/* Not bound to an easy handle: the tree is built before the session
	 * exists and is attached to whichever handle sends it. */
	(void)ctx;
	return curl_mime_init(NULL);
}

/* Text in canonical form: every line break CRLF (RFC 2046 §4.1.1). */
static char *to_crlf(const char *s, size_t len, size_t *outlen)
{
	char *o = malloc(2 * len + 1);
	if (!o)
		return NULL;
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\r' || s[i] == '\n') {
			o[n++] = '\r';
			o[n++] = '\n';
			if (s[i] == '\r' && i + 1 < len && s[i + 1] == '\n')
				i++;
		} else {
			o[n++] = s[i];
		}
	}
	o[n] = '\0';
	*outlen = n;
	return o;
}

static curl_mimepart *add_headers(curl_mimepart *part, const char *cte, const char *extra,
				  struct sc_error *err)
{
	struct curl_slist *h = NULL, *t;
	char *line = core_asprintf("Content-Transfer-Encoding: %s", cte);
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
	size_t clen = 0;
	char *canon = to_crlf(text, len, &clen);
	if (!canon)
		return NULL;
	*cte = sc_body_encoding(canon, clen);
	if (!strcmp(*cte, "7bit")) {
		*outlen = clen;
		return canon;
	}
	char *enc = !strcmp(*cte, "base64")
		? sc_base64_lines((const unsigned char *)canon, clen, outlen)
		: sc_qp_encode(canon, clen, outlen);
	free(canon);
	return enc;
}

curl_mimepart *sc_mime_add_text(curl_mime *mime, const char *type, const char *text, size_t len,
				struct sc_error *err)
{
	const char *cte = NULL;
	size_t elen = 0;
	char *enc = sc_text_encode(text, len, &cte, &elen);
	char *ctype = core_asprintf("%s; charset=utf-8", type);
	curl_mimepart *part = enc && ctype ? curl_mime_addpart(mime) : NULL;
	if (!part || curl_mime_type(part, ctype) || curl_mime_data(part, enc, elen) ||
	    !add_headers(part, cte, NULL, err)) {
		if (!err || !err->code)
			sc_error_set(err, SC_ENOMEM, "cannot build the %s part", type);
		part = NULL;
	}
	free(ctype);
	free(enc);
	return part;
}

/* message/ parts must not be base64 (RFC 2046 §5.2.1): send them as
 * 7bit or 8bit when every line fits, else as a plain binary attachment. */
static const char *message_encoding(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	int c, eight = 0;
	long col = 0;
	const char *res = "7bit";
	while ((c = getc(f)) != EOF) {
		if (c == '\n') {
			col = 0;
			continue;
		}
		if (c == 0 || ++col > 998) {
			res = NULL;
			break;
		}
		if (c >= 0x80)
			eight = 1;
	}
	fclose(f);
	return res && eight ? "8bit" : res;
}

/* Content-Type's name=: RFC 2231 is the standard, but Outlook and some
 * webmails only read an RFC 2047 encoded word in quotes here, so that is
 * what a non-ASCII name gets; Content-Disposition carries the RFC 2231
 * filename* every client reads. */
static char *name_param_of(const char *name)
{
	int ascii = 1;
	for (const char *p = name; *p; p++)
		ascii &= (unsigned char)*p < 0x80;
	if (!ascii) {
		char *enc = sc_header_encode_phrase(name, 0);
		if (enc && !strpbrk(enc, "\r\n\"") && strncmp(enc, "=?", 2) == 0) {
			char *p = core_asprintf("name=\"%s\"", enc);
			free(enc);
			return p;
		}
		free(enc);
	}
	return sc_mime_param_encode("name", name);
}

curl_mimepart *sc_mime_add_file(curl_mime *mime, const struct sc_vault_file *f,
				const char *disposition, const char *cid, struct sc_error *err)
{
	const char *type = f->content_type;
	const char *cte = "base64";
	if (strncmp(type, "message/", 8) == 0) {
		cte = message_encoding(f->path);
		if (!cte) {
			type = "application/octet-stream";
			cte = "base64";
		}
	}
	char *name_param = name_param_of(f->name);
	char *file_param = sc_mime_param_encode("filename", f->name);
	char *ctype = name_param ? core_asprintf("%s; %s", type, name_param) : NULL;
	char *disp = file_param ? core_asprintf("Content-Disposition: %s; %s", disposition, file_param) : NULL;
	char *cidh = cid ? core_asprintf("Content-ID: <%s>", cid) : NULL;
	curl_mimepart *part = ctype && disp && (!cid || cidh) ? curl_mime_addpart(mime) : NULL;
	struct curl_slist *h = NULL;
	if (part) {
		h = curl_slist_append(NULL, disp);
		if (h && cidh)
			h = curl_slist_append(h, cidh);
	}
	if (!part || !h || curl_mime_filedata(part, f->path) || curl_mime_filename(part, NULL) ||
	    curl_mime_type(part, ctype) ||
	    curl_mime_encoder(part, strcmp(cte, "base64") ? NULL : "base64")) {
		curl_slist_free_all(h);
		sc_error_set(err, SC_EIO, "cannot attach vault id %s (%s)", f->id, f->path);
		part = NULL;
	} else {
		char *cteh = core_asprintf("Content-Transfer-Encoding: %s", cte);
		if (strcmp(cte, "base64") && cteh)
			h = curl_slist_append(h, cteh);
		free(cteh);
		curl_mime_headers(part, h, 1);
	}
	free(name_param);
	free(file_param);
	free(ctype);
	free(disp);
	free(cidh);
	return part;
}
