/* The HTML support module (support_html.so, beside the plugins): the
 * libxml2 code behind one versioned descriptor, loaded by html_lazy.c
 * only when a message has an HTML body. */
#include "html.h"

const struct sc_html_support sc_html_support = {
	.version = SC_HTML_SUPPORT_VERSION,
	.to_text = sc_html_to_text,
	.sanitize = sc_html_sanitize,
	.find_cids = sc_html_find_cids,
};
