/* HTML detection, kept apart from the libxml2 code: send email decides
 * with it whether a body is HTML without loading libxml2 (and ICU) at all. */
#include "html.h"

int sc_html_is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

static int lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

int sc_html_starts_ci(const char *p, const char *end, const char *lit)
{
	for (; *lit; p++, lit++)
		if (p >= end || lower((unsigned char)*p) != (unsigned char)*lit)
			return 0;
	return 1;
}

int sc_html_detect(const char *body, size_t len)
{
	if (!body)
		return 0;
	const char *p = body, *end = body + len;
	if (sc_html_starts_ci(p, end, "\xEF\xBB\xBF"))
		p += 3;
	while (p < end && sc_html_is_space((unsigned char)*p))
		p++;
	if (sc_html_starts_ci(p, end, "<html"))
		return p + 5 < end &&
		       (sc_html_is_space((unsigned char)p[5]) || p[5] == '>' || p[5] == '/');
	if (!sc_html_starts_ci(p, end, "<!doctype"))
		return 0;
	p += 9;
	if (p >= end || !sc_html_is_space((unsigned char)*p))
		return 0;
	while (p < end && sc_html_is_space((unsigned char)*p))
		p++;
	if (!sc_html_starts_ci(p, end, "html"))
		return 0;
	p += 4;
	return p < end && (sc_html_is_space((unsigned char)*p) || *p == '>');
}
