/* The HTML support module (support_html, beside the plugins): the
 * libxml2 code behind a support descriptor, loaded through the core's
 * loader (sc_support_load, html_lazy.c) only when a message has an HTML
 * body. */
#include "html.h"

static const struct sc_html_support html = {
    .to_text = sc_html_to_text,
    .sanitize = sc_html_sanitize,
    .find_cids = sc_html_find_cids,
};

const struct sc_plugin sc_plugin = {
    .abi = SC_PLUGIN_ABI,
    .kind = SC_PLUGIN_SUPPORT,
    .name = "HTML",
    .identifier = "html",
    .version = "1",
    .description = "HTML to plain text, the HTML sanitiser and content-id references (libxml2)",
    .support = &html,
};
