/*
 * The files of send htmlemail: `attachment_json` (a JSON list of
 * {"vault_id", "content_id"}) first, then attachment1..5 with
 * content_id1..5, in that order (as the SOAR app).
 *
 * An item with a content id is an inline part (an image the HTML shows
 * as <img src="cid:...">); one without is an ordinary attachment.
 *
 * Unlike the SOAR app, which dropped list items without a vault_id
 * (failing only when none had one), every malformed item is an error, as
 * is a content_idN without its attachmentN, a content id used twice, or
 * one that cannot be a Content-ID (blanks, '<', '>', controls, non-ASCII
 * after removing surrounding blanks and <>): each would send an image
 * that does not show. Errors name the parameter ("attachment_json[2]",
 * "content_id3"). Every vault id is resolved (sc_vault_resolve) before
 * anything is sent.
 */
#ifndef SC_HTMLEMAIL_ATTACHMENTS_H
#define SC_HTMLEMAIL_ATTACHMENTS_H

#include <smtp-connector/message.h>

struct html_file {
	char *param; /* where it came from, for messages */
	char *cid;   /* content id without <>; NULL: an attachment */
	struct sc_vault_file f;
};

struct html_files {
	struct html_file *v;
	size_t n;
	size_t ninline; /* how many have a cid */
};

/* Collect and resolve every file of `params`. `files` is initialised
 * first; free it with html_files_free(), also after failure. */
int html_files_get(struct sc_ctx *ctx, const cJSON *params, struct html_files *files,
                   struct sc_error *err);
void html_files_free(struct html_files *files);

#endif
