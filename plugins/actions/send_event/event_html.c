/* The readable form of an event: an HTML page that Outlook, Gmail and
 * Thunderbird show alike. Mail clients drop <style> blocks and scripts
 * and block remote content, so everything is inline CSS on tables (the
 * one layout every client renders), with no image, link or script.
 * Every key and value goes through esc(): event data is untrusted. */
#include "event.h"

#include <stdlib.h>
#include <string.h>

#define CELL "padding:4px 8px;border:1px solid #d0d7de;vertical-align:top;"
#define KEY_STYLE CELL "text-align:left;background:#f6f8fa;font-weight:600;white-space:nowrap"
#define VAL_STYLE CELL "word-break:break-word;overflow-wrap:anywhere"
#define MONO_STYLE "font-family:Consolas,Menlo,'Courier New',monospace;font-size:13px"
#define NOTE_STYLE "color:#57606a"

/* HTML-escape s; line breaks become <br> so multi-line values keep
 * their shape. */
static int esc(struct sc_buf *b, const char *s)
{
	int rc = SC_OK;
	for (const char *p = s; *p && !rc; p++) {
		switch (*p) {
		case '&':
			rc = sc_buf_str(b, "&amp;");
			break;
		case '<':
			rc = sc_buf_str(b, "&lt;");
			break;
		case '>':
			rc = sc_buf_str(b, "&gt;");
			break;
		case '"':
			rc = sc_buf_str(b, "&quot;");
			break;
		case '\'':
			rc = sc_buf_str(b, "&#39;");
			break;
		case '\r':
			break;
		case '\n':
			rc = sc_buf_str(b, "<br>\r\n");
			break;
		default:
			rc = sc_buf_add(b, p, 1);
		}
	}
	return rc;
}

static int scalar(struct sc_buf *b, const cJSON *v)
{
	char date[40];
	if (cJSON_IsNull(v))
		return sc_buf_str(b, "<span style=\"" NOTE_STYLE "\">null</span>");
	char *t = event_scalar_text(v);
	if (!t)
		return SC_ENOMEM;
	int mono = cJSON_IsString(v) && event_monospace(t);
	int rc = mono ? sc_buf_str(b, "<code style=\"" MONO_STYLE "\">") : SC_OK;
	if (!rc)
		rc = esc(b, t);
	if (!rc && mono)
		rc = sc_buf_str(b, "</code>");
	if (!rc && event_epoch_ms(v, date))
		rc = sc_buf_printf(b, " <span style=\"" NOTE_STYLE "\">(%s)</span>", date);
	free(t);
	return rc;
}

static int value(struct sc_buf *b, const cJSON *v, int depth);

static int object(struct sc_buf *b, const cJSON *v, int depth)
{
	int rc = sc_buf_str(b, "<table role=\"presentation\" style=\"border-collapse:collapse;"
	                       "width:100%\">\r\n");
	const cJSON *e;
	cJSON_ArrayForEach(e, v)
	{
		if (rc)
			break;
		rc = sc_buf_str(b, "<tr><th style=\"" KEY_STYLE "\">");
		if (!rc)
			rc = esc(b, e->string ? e->string : "");
		if (!rc)
			rc = sc_buf_str(b, "</th><td style=\"" VAL_STYLE "\">");
		if (!rc)
			rc = value(b, e, depth + 1);
		if (!rc)
			rc = sc_buf_str(b, "</td></tr>\r\n");
	}
	return rc ? rc : sc_buf_str(b, "</table>\r\n");
}

static int array(struct sc_buf *b, const cJSON *v, int depth)
{
	int rc = sc_buf_str(b, "<ol style=\"margin:0;padding-left:22px\">\r\n");
	const cJSON *e;
	cJSON_ArrayForEach(e, v)
	{
		if (rc)
			break;
		rc = sc_buf_str(b, "<li style=\"margin:2px 0\">");
		if (!rc)
			rc = value(b, e, depth + 1);
		if (!rc)
			rc = sc_buf_str(b, "</li>\r\n");
	}
	return rc ? rc : sc_buf_str(b, "</ol>\r\n");
}

static int value(struct sc_buf *b, const cJSON *v, int depth)
{
	int container = cJSON_IsObject(v) || cJSON_IsArray(v);
	if (container && !v->child)
		return sc_buf_str(b, cJSON_IsObject(v) ? "<span style=\"" NOTE_STYLE "\">{}</span>"
		                                       : "<span style=\"" NOTE_STYLE
		                                         "\">[]</span>");
	if (container && depth >= EVENT_MAX_DEPTH) {
		/* Too deep to lay out: the subtree as compact JSON text. */
		char *t = cJSON_PrintUnformatted(v);
		int rc = t ? sc_buf_str(b, "<code style=\"" MONO_STYLE "\">") : SC_ENOMEM;
		if (!rc)
			rc = esc(b, t);
		free(t);
		return rc ? rc : sc_buf_str(b, "</code>");
	}
	if (cJSON_IsObject(v))
		return object(b, v, depth);
	if (cJSON_IsArray(v))
		return array(b, v, depth);
	return scalar(b, v);
}

char *event_render_html(const cJSON *ev, const char *title, struct sc_error *err)
{
	struct sc_buf b = {0};
	int rc = sc_buf_str(&b, "<!DOCTYPE html>\r\n<html><head><meta charset=\"utf-8\">"
	                        "<meta name=\"viewport\" content=\"width=device-width\"><title>");
	if (!rc)
		rc = esc(&b, title);
	if (!rc)
		rc = sc_buf_str(
		    &b, "</title></head>\r\n<body style=\"margin:0;padding:16px;"
		        "background:#f4f5f7;font-family:'Segoe UI',Helvetica,Arial,"
		        "sans-serif;font-size:14px;color:#1f2328\">\r\n"
		        "<table role=\"presentation\" style=\"max-width:960px;width:100%;"
		        "border-collapse:collapse;background:#ffffff;border:1px solid "
		        "#d0d7de\">\r\n<tr><td style=\"padding:12px 16px;background:#24292f;"
		        "color:#ffffff;font-size:16px;font-weight:bold\">");
	if (!rc)
		rc = esc(&b, title);
	if (!rc)
		rc = sc_buf_str(&b, "</td></tr>\r\n<tr><td style=\"padding:12px 16px\">\r\n");
	if (!rc)
		rc = value(&b, ev, 0);
	if (!rc)
		rc = sc_buf_str(&b, "</td></tr>\r\n</table>\r\n</body></html>\r\n");
	if (rc) {
		sc_buf_free(&b);
		sc_error_set(err, SC_ENOMEM, "out of memory rendering the event as HTML");
		return NULL;
	}
	return sc_buf_take(&b);
}
