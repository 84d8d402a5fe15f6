/* HTML functions for action plugins, loaded on first use. libxml2 pulls
 * in ICU, libstdc++ and liblzma: about 2 ms of dynamic loading, more than
 * a third of a one-shot plain-text send. So the plugins do not link it;
 * the first HTML body loads support_html.so from the plugin's own
 * directory (found with dladdr, so the build tree and an installation
 * both work). */
#define _GNU_SOURCE
#include "html.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

static const struct sc_html_support *support;

static int load(struct sc_error *err)
{
	if (support)
		return SC_OK;
	Dl_info info;
	if (!dladdr((void *)&load, &info) || !info.dli_fname)
		return sc_error_set(err, SC_EPLUGIN, "cannot locate this plugin's directory to load HTML support");
	const char *slash = strrchr(info.dli_fname, '/');
	size_t dlen = slash ? (size_t)(slash - info.dli_fname) : 1;
	char *path = malloc(dlen + sizeof "/support_html.so");
	if (!path)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	memcpy(path, slash ? info.dli_fname : ".", dlen);
	memcpy(path + dlen, "/support_html.so", sizeof "/support_html.so");
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	const struct sc_html_support *s = h ? dlsym(h, "sc_html_support") : NULL;
	int rc = SC_OK;
	if (!h)
		rc = sc_error_set(err, SC_EPLUGIN, "HTML support %s failed to load: %s; reinstall "
				  "smtp-connector (ldd shows missing libraries)", path, dlerror());
	else if (!s || s->version != SC_HTML_SUPPORT_VERSION)
		rc = sc_error_set(err, SC_EPLUGIN, "HTML support %s is from another version of "
				  "smtp-connector; reinstall it", path);
	if (rc && h)
		dlclose(h);
	if (!rc)
		support = s; /* stays loaded until the process exits */
	free(path);
	return rc;
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
