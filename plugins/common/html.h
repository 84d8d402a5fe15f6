/*
 * HTML for the plugins that build mail (send email, send htmlemail):
 * detection, a plain-text rendering for multipart/alternative, a real
 * sanitiser, and a content-id reference check.
 *
 * This lives with the plugins, not in the core, because it pulls in
 * libxml2 (and through it ICU): only the modules that need it link it, so
 * other actions start without it.
 *
 * Strings in and out are UTF-8. Input bytes that are not valid UTF-8 (and
 * NUL bytes) are read as U+FFFD, so every returned string is valid UTF-8.
 * Returned strings are the caller's, to free(). Errors follow the
 * contract in <smtp-connector/plugin.h>: NULL return with `err` set
 * (SC_EINPUT for an input over 2 GiB or one libxml2 cannot read at all,
 * SC_ENOMEM); `err` is untouched on success.
 */
#ifndef SC_PLUGINS_COMMON_HTML_H
#define SC_PLUGINS_COMMON_HTML_H

#include <stddef.h>

#include <smtp-connector/plugin.h>

/*
 * True when `body` is to be sent as HTML: after an optional UTF-8 BOM and
 * whitespace, it starts (ASCII case-insensitively) with "<!doctype",
 * whitespace, "html" and then whitespace or '>', or with "<html" and then
 * whitespace, '>' or '/'.
 *
 * Deliberate differences from SOAR (which lower-cases the body and needs
 * the tag's '>' on the first line): leading whitespace and a BOM are
 * tolerated, a tag spread over several lines counts, and "<htmlfoo>" does
 * NOT count (SOAR sends it as HTML): it is not an html element, and a
 * plain-text body starting with it is likelier than an HTML one.
 */
int sc_html_detect(const char *body, size_t len);

/*
 * Readable plain text of an HTML document, for the text/plain
 * alternative. Block elements end lines (p, h1-h6, pre, blockquote,
 * table, lists and hr leave a blank line; div, li, tr, section... one
 * line break); li starts with "- " (indented two spaces per nesting
 * level); table cells with content are joined by " | "; a link becomes
 * "text <url>", only "url" when the text is the URL (or the address of a
 * mailto: URL), and only its text when the URL is a fragment (#top) or
 * of a scheme the sanitiser would drop (javascript:...); an image becomes
 * its alt text; pre keeps its white space; other white space (and
 * U+00A0) collapses to one space; script, style, head, title, template,
 * noscript, svg, math, select, iframe and object contents are dropped;
 * character references are decoded. Lines have no trailing blanks, there
 * is never more than one blank line in a row, no blank line at either
 * end, no final newline, and LF only (the MIME layer makes CRLF).
 */
char *sc_html_to_text(const char *html, size_t len, struct sc_error *err);

/*
 * The HTML re-serialised from libxml2's tree with everything that can run
 * code, load content from a non-allowed scheme, or navigate away removed.
 * The output stays escaped: text never turns into markup, and it is
 * never un-escaped afterwards. The exact rules are in html.c ("The
 * sanitiser's rules"). The result is a whole document (libxml2 adds
 * html/body around a fragment); the document's own doctype is kept,
 * normalised; without one none is added.
 */
char *sc_html_sanitize(const char *html, size_t len, struct sc_error *err);

/*
 * For each of the `n` content ids, found[i] = whether some attribute
 * value of the document (or a style sheet in a style element or
 * attribute, as url(cid:...)) refers to "cid:<cid>": scheme
 * case-insensitive, the id compared exactly after %-decoding (RFC 2392).
 * Each cid may be given with its <> and surrounding blanks; an empty one
 * is never found. The HTML is parsed once for all of them (the walk stops
 * when every id is found). All false when the HTML cannot be parsed or
 * memory runs out. Used to warn about inline attachments the HTML never
 * shows.
 */
void sc_html_find_cids(const char *html, size_t len, const char *const *cids, size_t n, int *found);
/* sc_html_find_cids() for one id. */
int sc_html_references_cid(const char *html, size_t len, const char *cid);

/* Helpers shared by html_detect.c and html.c. */
int sc_html_is_space(unsigned char c);
int sc_html_starts_ci(const char *p, const char *end, const char *lit);

/* The support module's table (html_module.c): the `support` of its
 * descriptor, checked by the loader like any plugin's (plugin ABI). Its
 * layout is shared by this tree's plugins only, built together. */
struct sc_html_support {
	char *(*to_text)(const char *html, size_t len, struct sc_error *err);
	char *(*sanitize)(const char *html, size_t len, struct sc_error *err);
	void (*find_cids)(const char *html, size_t len, const char *const *cids, size_t n,
	                  int *found);
};

/* What action plugins call (html_lazy.c): the same functions, loaded from
 * the support module support_html on first use (sc_support_load). html_find_cids returns -1 (err
 * set) when the module cannot be loaded, else 0. */
char *html_to_text(const char *html, size_t len, struct sc_error *err);
char *html_sanitize(const char *html, size_t len, struct sc_error *err);
int html_find_cids(const char *html, size_t len, const char *const *cids, size_t n, int *found,
                   struct sc_error *err);

#endif
