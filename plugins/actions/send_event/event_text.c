/* The text alternative of a readable event: the HTML's content as
 * indented "key: value" lines, arrays as "- item", so a text-only client
 * (or a grep over a mailbox) sees every value. */
#include "event.h"

#include <stdlib.h>
#include <string.h>

static int indent(struct sc_buf *b, int depth)
{
	int rc = SC_OK;
	for (int i = 0; i < depth && !rc; i++)
		rc = sc_buf_str(b, "  ");
	return rc;
}

/* A scalar on the current line; continuation lines of a multi-line
 * string are indented under it. */
static int scalar(struct sc_buf *b, const cJSON *v, int depth)
{
	char date[40];
	char *t = event_scalar_text(v);
	if (!t)
		return SC_ENOMEM;
	int rc = SC_OK;
	for (const char *p = t; *p && !rc; p++) {
		if (*p == '\r')
			continue;
		rc = sc_buf_add(b, p, 1);
		if (!rc && *p == '\n')
			rc = indent(b, depth + 1);
	}
	if (!rc && event_epoch_ms(v, date))
		rc = sc_buf_printf(b, " (%s)", date);
	free(t);
	return rc ? rc : sc_buf_str(b, "\n");
}

static int value(struct sc_buf *b, const cJSON *v, int depth);

static int member(struct sc_buf *b, const cJSON *e, int depth, const char *label)
{
	int rc = indent(b, depth);
	if (!rc)
		rc = sc_buf_str(b, label);
	int nested =
	    (cJSON_IsObject(e) || cJSON_IsArray(e)) && e->child && depth + 1 < EVENT_MAX_DEPTH;
	if (!rc)
		rc = sc_buf_str(b, nested ? "\n" : " ");
	if (!rc)
		rc = nested ? value(b, e, depth + 1) : scalar(b, e, depth);
	return rc;
}

static int value(struct sc_buf *b, const cJSON *v, int depth)
{
	int rc = SC_OK;
	const cJSON *e;
	if (cJSON_IsObject(v) && v->child) {
		cJSON_ArrayForEach(e, v)
		{
			char *label = sc_asprintf("%s:", e->string ? e->string : "");
			rc = label ? member(b, e, depth, label) : SC_ENOMEM;
			free(label);
			if (rc)
				break;
		}
		return rc;
	}
	if (cJSON_IsArray(v) && v->child) {
		cJSON_ArrayForEach(e, v)
		{
			if ((rc = member(b, e, depth, "-")))
				break;
		}
		return rc;
	}
	rc = indent(b, depth);
	return rc ? rc : scalar(b, v, depth);
}

char *event_render_text(const cJSON *ev, struct sc_error *err)
{
	struct sc_buf b = {0};
	if (value(&b, ev, 0)) {
		sc_buf_free(&b);
		sc_error_set(err, SC_ENOMEM, "out of memory rendering the event as text");
		return NULL;
	}
	return sc_buf_take(&b);
}
