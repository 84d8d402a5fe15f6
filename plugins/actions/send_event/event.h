/* send event, in parts: how values are recognised (event_values.c), the
 * default subject (event_subject.c), the readable HTML (event_html.c)
 * and its plain-text twin (event_text.c). Each returns allocated text
 * the caller frees, or NULL with err set. */
#ifndef SC_EVENT_H
#define SC_EVENT_H

#include <smtp-connector/plugin.h>

/* Nesting deeper than this is shown as compact JSON: events are
 * untrusted and the renderers recurse. */
#define EVENT_MAX_DEPTH 32

/* A number that reads as epoch milliseconds (LimaCharlie's routing.event_time
 * and friends: 2001..2286) formatted as "YYYY-MM-DD HH:MM:SS.mmm UTC" in
 * out; 0 when it is not one. */
int event_epoch_ms(const cJSON *v, char out[40]);
/* A string best shown in monospace: a hex digest (MD5, SHA-1, SHA-256,
 * SHA-512) or a file path (POSIX or Windows). */
int event_monospace(const char *s);
/* A scalar's text: strings as they are, numbers as JSON writes them,
 * true/false/null. Allocated. */
char *event_scalar_text(const cJSON *v);

/* A short subject line: "<category>: <name> (<hostname>)" from the
 * fields present, else "Event". Allocated, one line, at most 200 bytes. */
char *event_default_subject(const cJSON *ev);

/* The event as an HTML page: objects as two-column tables, arrays as
 * lists, inline CSS, every value escaped, nothing remote. */
char *event_render_html(const cJSON *ev, const char *title, struct sc_error *err);
/* The same content as indented "key: value" lines. */
char *event_render_text(const cJSON *ev, struct sc_error *err);

#endif
