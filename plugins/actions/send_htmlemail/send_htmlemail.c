/* send htmlemail: an HTML body with its plain-text alternative, inline
 * images and attachments. Everything a user can get wrong (addresses,
 * headers, the HTML's charset, every vault id and content id) is checked
 * before the session opens, so nothing is ever half-sent.
 *
 * MIME tree (clients such as Outlook and Gmail hide ordinary attachments
 * inside multipart/related, where the SOAR app put them):
 *   neither         alternative [text, html]
 *   inline only     related [alternative [text, html], inline...]
 *   attachments     mixed [alternative [text, html], attachment...]
 *   both            mixed [related [alternative [text, html], inline...],
 *                          attachment...]
 *
 * The HTML is sanitised (sc_html_sanitize) unless should_sanitize_template
 * is false, and is never un-escaped afterwards: the SOAR app's unescape
 * turned the escaped text of removed tags back into live markup. */
#include "attachments.h"
#include "compose.h"
#include "html.h"

#include <stdlib.h>
#include <string.h>

#include "params_schema.h"

/* multipart/related names its root's type (RFC 2387 §3.1). */
#define RELATED_TYPE "multipart/related; type=\"multipart/alternative\""

struct bodies {
	char *html; /* as sent: sanitised, or a copy of html_body */
	char *text; /* the text/plain alternative */
};

/* html_body (sanitised unless asked not to) and its text alternative:
 * text_body when given, else rendered from the HTML as sent. */
static int make_bodies(const cJSON *params, struct bodies *b, struct sc_error *err)
{
	const char *html = compose_param_string(params, "html_body");
	const char *text = compose_param_string(params, "text_body");
	const cJSON *san = cJSON_GetObjectItemCaseSensitive(params, "should_sanitize_template");
	if (!html || !*html)
		return sc_error_set(err, SC_EINPUT, "html_body: give the HTML message");
	b->html = cJSON_IsFalse(san) ? strdup(html) : html_sanitize(html, strlen(html), err);
	if (b->html)
		b->text =
		    text && *text ? strdup(text) : html_to_text(b->html, strlen(b->html), err);
	if (b->text)
		return SC_OK;
	if (!err->code)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	sc_error_prefix(err, "html_body"); /* both read the HTML */
	return err->code;
}

/* Inline parts the HTML never shows are sent anyway (the author may
 * know better, e.g. a signature block added later) but reported. One
 * parse of the HTML for all of them. Best effort: when the HTML support
 * cannot be loaded there is no warning (and nothing else fails). */
static int warn_unreferenced(const struct bodies *b, const struct html_files *fs,
                             struct sc_result *r, struct sc_error *err)
{
	if (!fs->ninline)
		return SC_OK;
	const char **cids = calloc(fs->n, sizeof *cids);
	int *found = calloc(fs->n, sizeof *found);
	int rc = cids && found ? SC_OK : sc_error_set(err, SC_ENOMEM, "out of memory");
	for (size_t i = 0; !rc && i < fs->n; i++)
		cids[i] = fs->v[i].cid ? fs->v[i].cid : "";
	if (!rc && html_find_cids(b->html, strlen(b->html), cids, fs->n, found, NULL) == 0)
		for (size_t i = 0; i < fs->n; i++)
			if (fs->v[i].cid && !found[i])
				sc_result_warn(
				    r,
				    "%s: the HTML never refers to content id \"%s\" "
				    "(as src=\"cid:%s\"); the part is sent but will not show",
				    fs->v[i].param, fs->v[i].cid, fs->v[i].cid);
	free(cids);
	free(found);
	return rc;
}

/* A new multipart of type `type` as the next part of `parent`; the
 * parent owns it from then on (freed with the parent). */
static curl_mime *nest(struct sc_ctx *ctx, curl_mime *parent, const char *type,
                       struct sc_error *err)
{
	(void)ctx;
	return sc_mime_add_multipart(parent, type, err);
}

static int add_files(curl_mime *into, const struct html_files *fs, int inline_parts,
                     struct sc_error *err)
{
	for (size_t i = 0; i < fs->n; i++) {
		const struct html_file *h = &fs->v[i];
		if (!h->cid == !inline_parts &&
		    !sc_mime_add_file(into, &h->f, h->cid ? "inline" : "attachment", h->cid, err))
			return err->code ? err->code : SC_EIO;
	}
	return SC_OK;
}

/* Fill `root` (see the tree at the top) and return its type. */
static const char *fill_tree(struct sc_ctx *ctx, curl_mime *root, const struct bodies *b,
                             const struct html_files *fs, struct sc_error *err)
{
	size_t natt = fs->n - fs->ninline;
	const char *type = natt          ? "multipart/mixed"
	                   : fs->ninline ? RELATED_TYPE
	                                 : "multipart/alternative";
	curl_mime *rel = !fs->ninline ? NULL : natt ? nest(ctx, root, RELATED_TYPE, err) : root;
	curl_mime *alt = rel    ? nest(ctx, rel, "multipart/alternative", err)
	                 : natt ? nest(ctx, root, "multipart/alternative", err)
	                        : root;
	if (!alt || (fs->ninline && !rel))
		return NULL;
	/* borrowed: `b` is freed only after the message (html_run) */
	if (!sc_mime_add_text_ref(alt, "text/plain", b->text, strlen(b->text), err) ||
	    !sc_mime_add_text_ref(alt, "text/html", b->html, strlen(b->html), err))
		return NULL;
	if ((rel && add_files(rel, fs, 1, err)) || add_files(root, fs, 0, err))
		return NULL;
	return type;
}

static int build_body(struct sc_ctx *ctx, struct compose *c, const struct bodies *b,
                      const struct html_files *fs, struct sc_error *err)
{
	curl_mime *root = sc_mime_new(ctx);
	if (!root)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	const char *type = fill_tree(ctx, root, b, fs, err);
	if (!type) {
		curl_mime_free(root);
		return err->code ? (int)err->code : sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	return sc_message_body_mime(c->msg, root, type, err);
}

static int html_run(struct sc_ctx *ctx, const cJSON *params, struct sc_result *r,
                    struct sc_error *err)
{
	struct compose c;
	struct html_files fs = {NULL, 0, 0};
	struct bodies b = {NULL, NULL};
	int rc = compose_begin(ctx, params, NULL, r, &c, err);
	if (!rc)
		rc = compose_check_text(&c, "html_body", compose_param_string(params, "html_body"),
		                        err);
	if (!rc)
		rc = compose_check_text(&c, "text_body", compose_param_string(params, "text_body"),
		                        err);
	if (!rc)
		rc = html_files_get(ctx, params, &fs, err);
	if (!rc)
		rc = make_bodies(params, &b, err);
	if (!rc)
		rc = build_body(ctx, &c, &b, &fs, err);
	if (!rc)
		rc = warn_unreferenced(&b, &fs, r, err);
	if (!rc) {
		/* the MIME tree borrows them, and the message may outlive this
		 * run (sc_send_async): it owns them from here */
		rc = sc_message_keep(c.msg, b.html, err);
		b.html = NULL;
		if (!rc)
			rc = sc_message_keep(c.msg, b.text, err);
		b.text = NULL;
	}
	if (!rc)
		rc = compose_send(ctx, &c, r, err);
	compose_free(&c); /* first: its MIME tree borrows b.html and b.text */
	free(b.html);
	free(b.text);
	html_files_free(&fs);
	return rc;
}

static const struct sc_action_ops html_ops = {
    .run = html_run,
};

static const char *const outputs[] = {SC_SEND_OUTPUTS, NULL};

const struct sc_plugin sc_plugin = {
    .abi = SC_PLUGIN_ABI,
    .kind = SC_PLUGIN_ACTION,
    .name = "send htmlemail",
    .identifier = "send_htmlemail",
    .version = "1.0",
    .description = "Send an HTML e-mail with a text alternative, inline images and attachments",
    .schema = schema_params,
    .action = &html_ops,
    .outputs = outputs,
};
