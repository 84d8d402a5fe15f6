/*
 * What send email and send htmlemail share: sender and recipients, the
 * top-level headers, the custom headers JSON, and sending with a result.
 * Each action builds only its own body. Linked into those plugins as the
 * convenience library plugins/common/libsccompose.la.
 *
 * Order of work (nothing touches the network before compose_send):
 *   compose_begin()   parse and check from/to/cc/bcc/subject/headers
 *                     (or take the action's own subject),
 *                     set From, To, Cc, Subject, Date, Message-ID and the
 *                     custom headers on c->msg, write parameter.from back
 *   <action>          check its own inputs (body, attachments), then set
 *                     the body with sc_message_body_mime/_single
 *   compose_send()    open the session, send, report accepted/refused
 *   compose_free()
 */
#ifndef SC_COMPOSE_H
#define SC_COMPOSE_H

#include <smtp-connector/message.h>

struct compose {
	struct sc_address from; /* effective sender (addr = MAIL FROM) */
	struct sc_address_list to, cc, bcc;
	struct sc_address_list envelope; /* to + cc + bcc, de-duplicated */
	int smtputf8;                    /* an envelope address is not ASCII */
	int allow_8bit;                  /* asset "encoding" (default true) */
	int from_given;                  /* the "from" parameter was set */
	struct sc_address header_from;   /* From in the headers JSON, if any */
	struct sc_message *msg;          /* owned */
};

/* Everything from the parameters that is common to the actions. Errors
 * name the parameter ("to: ...", "headers: ..."). `subject`, when not
 * NULL, is the Subject instead of params' "subject" (send event's, which
 * renders it from a template). */
int compose_begin(struct sc_ctx *ctx, const cJSON *params, const char *subject, struct sc_result *r,
                  struct compose *c, struct sc_error *err);

/* The asset's "encoding": false forbids non-ASCII content. `what` names
 * the parameter in the error ("body", "html_body"). */
int compose_check_text(const struct compose *c, const char *what, const char *text,
                       struct sc_error *err);

/* A parameter that may be a JSON string or JSON text ("headers",
 * "attachment_json"): parsed value, or NULL + err naming `what`. */
cJSON *compose_json_param(const cJSON *params, const char *what, struct sc_error *err);

/* Open the session, send c->msg to c->envelope, and report message_id,
 * accepted, refused, smtp_reply and auth in the result. Message "Email
 * sent" (plus the refused recipients when some were refused). */
int compose_send(struct sc_ctx *ctx, struct compose *c, struct sc_result *r, struct sc_error *err);

void compose_free(struct compose *c);

/* params[key] when it is a string, else NULL (borrowed from params). */
const char *compose_param_string(const cJSON *params, const char *key);

#endif
