/* send email: a plain or HTML body with vault attachments. Everything a
 * user can get wrong (addresses, headers, the body's charset, every
 * attachment) is checked before the session opens.
 *
 * Shapes:  text                      -> text/plain (single part)
 *          html                      -> multipart/alternative [text, html]
 *          text + attachments        -> multipart/mixed [text, files...]
 *          html + attachments        -> multipart/mixed [alternative, files...]
 * (the SOAR app put attachments inside the alternative; clients then
 * hide one or the other). */
#include "compose.h"
#include "html.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "params_schema.h"

struct files {
	struct sc_vault_file *v;
	size_t n;
};

static void files_free(struct files *f)
{
	for (size_t i = 0; i < f->n; i++)
		sc_vault_file_free(&f->v[i]);
	free(f->v);
}

/* "id1, id2" -> resolved vault files (all of them, or an error). */
static int resolve_attachments(struct sc_ctx *ctx, const char *list, struct files *f,
                               struct sc_error *err)
{
	if (!list)
		return SC_OK;
	char *copy = strdup(list), *save = NULL;
	if (!copy)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	int rc = SC_OK;
	for (char *t = strtok_r(copy, ",", &save); t && !rc; t = strtok_r(NULL, ",", &save)) {
		while (*t == ' ' || *t == '\t')
			t++;
		size_t n = strlen(t);
		while (n && (t[n - 1] == ' ' || t[n - 1] == '\t'))
			t[--n] = '\0';
		if (!n)
			continue;
		struct sc_vault_file *nv = realloc(f->v, (f->n + 1) * sizeof *nv);
		if (!nv) {
			rc = sc_error_set(err, SC_ENOMEM, "out of memory");
			break;
		}
		f->v = nv;
		rc = sc_vault_resolve(ctx, "attachments", t, &f->v[f->n], err);
		if (!rc)
			f->n++;
	}
	free(copy);
	return rc;
}

/* "files": [{"path", "filename"}] -> resolved files appended to f. */
static int resolve_files(struct sc_ctx *ctx, const cJSON *files, struct files *f,
                         struct sc_error *err)
{
	int i = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, files)
	{
		const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "path");
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(e, "filename");
		char what[32];
		snprintf(what, sizeof what, "files[%d].path", i++);
		struct sc_vault_file *nv = realloc(f->v, (f->n + 1) * sizeof *nv);
		if (!nv)
			return sc_error_set(err, SC_ENOMEM, "out of memory");
		f->v = nv;
		int rc =
		    sc_file_resolve(ctx, what, p->valuestring,
		                    cJSON_IsString(n) ? n->valuestring : NULL, &f->v[f->n], err);
		if (rc)
			return rc;
		f->n++;
	}
	return SC_OK;
}

static int add_alternative(curl_mime *mime, const char *html, struct sc_error *err)
{
	char *text = html_to_text(html, strlen(html), err);
	if (!text)
		return err->code ? err->code : SC_ENOMEM;
	/* the derived text is copied (freed below); the html is the request's */
	int ok = sc_mime_add_text(mime, "text/plain", text, strlen(text), err) &&
	         sc_mime_add_text_ref(mime, "text/html", html, strlen(html), err);
	free(text);
	return ok ? SC_OK : err->code;
}

static int build_body(struct sc_ctx *ctx, struct compose *c, const char *body,
                      const struct files *f, struct sc_error *err)
{
	int html = sc_html_detect(body, strlen(body));
	/* `body` is the request's and outlives c->msg (compose_free comes
	 * before run() returns): it is borrowed, so a 50 MB body is held once
	 * and encoded as it is sent (bench/body_rss.sh). */
	if (!html && f->n == 0)
		return sc_message_body_text(c->msg, "text/plain; charset=utf-8", body, strlen(body),
		                            err);
	curl_mime *root = sc_mime_new(ctx);
	if (!root)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	int rc = SC_OK;
	if (html && f->n == 0) {
		rc = add_alternative(root, body, err);
		if (!rc)
			return sc_message_body_mime(c->msg, root, "multipart/alternative", err);
		curl_mime_free(root);
		return rc;
	}
	if (html) {
		curl_mime *alt = sc_mime_add_multipart(root, "multipart/alternative", err);
		rc = alt ? add_alternative(alt, body, err) : (int)err->code;
	} else if (!sc_mime_add_text_ref(root, "text/plain", body, strlen(body), err)) {
		rc = err->code ? err->code : SC_ENOMEM;
	}
	for (size_t i = 0; !rc && i < f->n; i++)
		if (!sc_mime_add_file(root, &f->v[i], "attachment", NULL, err))
			rc = err->code ? err->code : SC_EIO;
	if (rc) {
		curl_mime_free(root);
		return rc;
	}
	return sc_message_body_mime(c->msg, root, "multipart/mixed", err);
}

static int send_email_run(struct sc_ctx *ctx, const cJSON *params, struct sc_result *r,
                          struct sc_error *err)
{
	const cJSON *b = cJSON_GetObjectItemCaseSensitive(params, "body");
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(params, "attachments");
	const char *body = cJSON_IsString(b) ? b->valuestring : "";
	struct compose c;
	struct files f = {NULL, 0};
	int rc = compose_begin(ctx, params, NULL, r, &c, err);
	if (!rc)
		rc = compose_check_text(&c, "body", body, err);
	if (!rc)
		rc = resolve_attachments(ctx, cJSON_IsString(a) ? a->valuestring : NULL, &f, err);
	if (!rc)
		rc = resolve_files(ctx, cJSON_GetObjectItemCaseSensitive(params, "files"), &f, err);
	if (!rc)
		rc = build_body(ctx, &c, body, &f, err);
	if (!rc)
		rc = compose_send(ctx, &c, r, err);
	files_free(&f);
	compose_free(&c);
	return rc;
}

static const struct sc_action_ops send_email_ops = {
    .run = send_email_run,
};

static const char *const outputs[] = {SC_SEND_OUTPUTS, NULL};

const struct sc_plugin sc_plugin = {
    .abi = SC_PLUGIN_ABI,
    .kind = SC_PLUGIN_ACTION,
    .name = "send email",
    .identifier = "send_email",
    .version = "1.0",
    .description = "Send an e-mail (plain or HTML body, vault attachments)",
    .schema = schema_params,
    .action = &send_email_ops,
    .outputs = outputs,
};
