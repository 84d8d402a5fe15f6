/* HTML functions for action plugins, loaded on first use. libxml2 pulls
 * in ICU, libstdc++ and liblzma: about 2 ms of dynamic loading, more than
 * a third of a one-shot plain-text send. So the plugins do not link it;
 * the first HTML body loads the support module support_html through the
 * core's loader (sc_support_load: the plugin search path, the ABI check
 * and the loader's diagnostics). */
#include "html.h"

static const struct sc_html_support *support;

static int load(struct sc_error *err)
{
	if (support)
		return SC_OK;
	struct sc_error own = SC_ERROR_INIT;
	support = sc_support_load("html", err ? err : &own);
	sc_error_clear(&own);
	return support ? SC_OK : SC_EPLUGIN;
}

char *html_to_text(const char *html, size_t len, struct sc_error *err)
{
	return load(err) ? NULL : support->to_text(html, len, err);
}

char *html_sanitize(const char *html, size_t len, struct sc_error *err)
{
	return load(err) ? NULL : support->sanitize(html, len, err);
}

int html_find_cids(const char *html, size_t len, const char *const *cids, size_t n, int *found,
                   struct sc_error *err)
{
	if (load(err))
		return -1;
	support->find_cids(html, len, cids, n, found);
	return 0;
}
