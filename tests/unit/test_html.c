/* Unit tests for plugins/common/html.c: detection, HTML-to-text and the
 * sanitiser (with the attacks it exists for), and cid references. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "html.h"

/* ---- helpers ---- */

static int detect(const char *s)
{
	return sc_html_detect(s, strlen(s));
}

/* Runs `fn`, asserts success and no error; the result goes on a list
 * freed by the group teardown, so failing asserts leak nothing. */
static char *results[256];
static size_t nresults;

static const char *keep(char *s)
{
	assert_non_null(s);
	assert_true(nresults < sizeof(results) / sizeof(*results));
	results[nresults++] = s;
	return s;
}

static int free_results(void **state)
{
	(void)state;
	while (nresults)
		free(results[--nresults]);
	return 0;
}

static const char *text(const char *html)
{
	struct sc_error err = SC_ERROR_INIT;
	char *s = sc_html_to_text(html, strlen(html), &err);
	assert_int_equal(err.code, SC_OK);
	assert_null(err.message);
	return keep(s);
}

static const char *san(const char *html)
{
	struct sc_error err = SC_ERROR_INIT;
	char *s = sc_html_sanitize(html, strlen(html), &err);
	assert_int_equal(err.code, SC_OK);
	assert_null(err.message);
	return keep(s);
}

static int contains_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (; *hay; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return 1;
	return 0;
}

#define assert_has(hay, needle) assert_non_null(strstr((hay), (needle)))
#define assert_lacks(hay, needle) assert_false(contains_ci((hay), (needle)))

/* ---- detection ---- */

static void test_detect_doctype_and_html(void **state)
{
	(void)state;
	assert_true(detect("<!DOCTYPE html><p>x"));
	assert_true(detect("<!doctype html>"));
	assert_true(detect("<!DocType   HTML PUBLIC \"-//W3C//DTD\">"));
	assert_true(detect("<!doctype\nhtml\n>"));
	assert_true(detect("<html>"));
	assert_true(detect("<HTML lang=\"en\">"));
	assert_true(detect("<html\nlang=en>"));
	assert_true(detect("<html/>"));
}

static void test_detect_leading_space_and_bom(void **state)
{
	(void)state;
	assert_true(detect("   \r\n\t<html>"));
	assert_true(detect("\xEF\xBB\xBF<!DOCTYPE html>"));
	assert_true(detect("\xEF\xBB\xBF \n <html>"));
	/* a BOM after white space is not a BOM */
	assert_false(detect(" \xEF\xBB\xBF<html>"));
}

static void test_detect_negatives(void **state)
{
	(void)state;
	assert_false(detect("<p>hello</p>"));
	assert_false(detect("hello <html>"));
	assert_false(detect(""));
	assert_false(detect("<html"));     /* nothing after the name */
	assert_false(detect("<htmlfoo>")); /* deliberate: not an html element */
	assert_false(detect("<!doctypehtml>"));
	assert_false(detect("<!doctype htmlx>"));
	assert_false(detect("<!doctype xml>"));
	assert_false(sc_html_detect(NULL, 0));
	/* the length is honoured, not the NUL */
	assert_false(sc_html_detect("<html>", 5));
	assert_true(sc_html_detect("<html>", 6));
}

/* ---- HTML to text ---- */

static void test_text_paragraphs_and_br(void **state)
{
	(void)state;
	assert_string_equal(text("<p>One</p><p>Two</p>"), "One\n\nTwo");
	assert_string_equal(text("<p>a<br>b<br/>c</p>"), "a\nb\nc");
	assert_string_equal(text("<div>a</div><div>b</div>"), "a\nb");
	assert_string_equal(text("<h1>Title</h1>text"), "Title\n\ntext");
	assert_string_equal(text("<p>a</p><br><br><br><p>b</p>"), "a\n\nb");
	assert_string_equal(text("a<hr>b"), "a\n\nb");
	assert_string_equal(text(""), "");
	assert_string_equal(text("<p></p><div> </div>"), "");
}

static void test_text_whitespace(void **state)
{
	(void)state;
	assert_string_equal(text("<p>  lots   of\n\t space  </p>"), "lots of space");
	assert_string_equal(text("<p>a&nbsp;&nbsp;b</p>"), "a b");
	assert_string_equal(text("<p>x </p>\n\n<p> y</p>"), "x\n\ny");
	/* CR never reaches the output: white space outside pre, LF inside */
	assert_string_equal(text("<p>a\r\nb</p><pre>c\r\nd\re</pre>"), "a b\n\nc\nd\ne");
}

static void test_text_lists(void **state)
{
	(void)state;
	assert_string_equal(text("<p>Intro</p><ul><li>one</li><li>two</li></ul>"),
	                    "Intro\n\n- one\n- two");
	assert_string_equal(text("<ol><li>a<ul><li>b</li></ul></li><li>c</li></ol>"),
	                    "- a\n  - b\n- c");
	assert_string_equal(text("<ul><li><p>para</p></li><li></li><li>x</li></ul>"),
	                    "- para\n- x");
}

static void test_text_tables(void **state)
{
	(void)state;
	assert_string_equal(text("<table><tr><th>Name</th><th>Qty</th></tr>"
	                         "<tr><td>Apple</td><td>3</td></tr></table>after"),
	                    "Name | Qty\nApple | 3\n\nafter");
	/* empty spacer cells leave no separators */
	assert_string_equal(text("<table><tr><td>&nbsp;</td><td>a</td><td></td>"
	                         "<td>b</td></tr></table>"),
	                    "a | b");
}

static void test_text_links(void **state)
{
	(void)state;
	assert_string_equal(text("<a href=\"https://x.example/p?a=1&amp;b=2\">Shop</a>"),
	                    "Shop <https://x.example/p?a=1&b=2>");
	assert_string_equal(text("<a href=\"https://x.example/\">https://x.example/</a>"),
	                    "https://x.example/");
	assert_string_equal(text("<a href=\"mailto:a@b.example\">a@b.example</a>"), "a@b.example");
	assert_string_equal(text("<a href=\"https://x.example/\"></a>"), "<https://x.example/>");
	assert_string_equal(text("<a href=\"javascript:alert(1)\">click</a>"), "click");
	assert_string_equal(text("<a href=\"#top\">top</a>"), "top");
	assert_string_equal(text("<a href=\" https://x/ \">https://x/</a>"), "https://x/");
	assert_string_equal(text("<a href=\"https://x/\"><img src=a.png alt=\"Logo\"></a>"),
	                    "Logo <https://x/>");
}

static void test_text_inline_entities_images(void **state)
{
	(void)state;
	assert_string_equal(text("<p>a <b>bold <i>and</i></b> <span>more</span>.</p>"),
	                    "a bold and more.");
	assert_string_equal(text("<p>&lt;tag&gt; &amp; &eacute;&#8364;&#x263A;</p>"),
	                    "<tag> & \xC3\xA9\xE2\x82\xAC\xE2\x98\xBA");
	assert_string_equal(text("<p>x<img src=a.png alt=\"[pic]\">y<img src=t.gif></p>"),
	                    "x[pic]y");
}

static void test_text_pre(void **state)
{
	(void)state;
	assert_string_equal(text("<p>before</p><pre>\n  a  b\n    c</pre><p>after</p>"),
	                    "before\n\n  a  b\n    c\n\nafter");
}

static void test_text_dropped_content(void **state)
{
	(void)state;
	assert_string_equal(text("<html><head><title>T</title><style>p{x:y}</style>"
	                         "</head><body><script>var a = 1;</script>"
	                         "<p>body</p><noscript>ns</noscript></body></html>"),
	                    "body");
}

static void test_text_malformed(void **state)
{
	(void)state;
	assert_string_equal(text("<p>unclosed <b>bold<p>next"), "unclosed bold\n\nnext");
	/* libxml2's recovery drops the stray '<' */
	assert_string_equal(text("<<p>a</b></i>>"), "a>");
	/* invalid UTF-8 becomes U+FFFD: the output is always UTF-8 */
	assert_string_equal(text("<p>a\xFF"
	                         "b</p>"),
	                    "a\xEF\xBF\xBD"
	                    "b");
}

/* ---- sanitiser ---- */

/* Inputs the sanitiser exists for; none may leave a script element, an
 * event handler or a javascript: URL in the output. */
static const char *const attacks[] = {
    "<script>alert(1)</script><p>ok</p>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    "<a href=\"javascript:alert(1)\">x</a>",
    "<a href=\"jav&#x09;ascript:alert(1)\">x</a>",
    "<a href=\" JaVaScRiPt:alert(1)\">x</a>",
    "<a href=\"&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)\">x</a>",
    "<a href=\"jav&Tab;ascript&colon;alert(1)\">x</a>",
    "<a href=\"java\nscript:alert(1)\">x</a>",
    "<iframe src=\"https://evil.example/\"></iframe>",
    "<iframe srcdoc=\"<script>alert(1)</script>\"></iframe>",
    "<object data=\"evil.swf\"><param name=x value=y></object>",
    "<embed src=\"evil.swf\">",
    "<form action=\"https://evil.example/\"><input name=p><button "
    "formaction=javascript:alert(1)>go</button></form>",
    "<svg onload=alert(1)><script>alert(1)</script></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<style>p { width: expression(alert(1)); }</style>",
    "<p style=\"background:url(javascript:alert(1))\">x</p>",
    "<p style=\"x:exp\\72 ession(alert(1))\">x</p>",
    "<scr<script>ipt>alert(1)</script>",
    "<<script>alert(1)//<</script>",
    "<div><p>unclosed <b onclick=alert(1)>tags <script>alert(1)",
    "<body onload=alert(1)>",
    "<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">x</a>",
    "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(1)\">",
    "<base href=\"javascript:alert(1)//\"><a href=x>x</a>",
    "<!-- --!><script>alert(1)</script> -->",
    "<!DOCTYPE html SYSTEM \"><script>alert(1)</script>\"><p>x</p>",
    "<noembed><p title=\"</noembed><script>alert(1)</script>\">x</p></noembed>",
    "<xmp><img src=x onerror=alert(1)></xmp>",
    "<template><script>alert(1)</script></template>",
    "<details open ontoggle=alert(1)>x</details>",
    "<img src=\"data:image/svg+xml;base64,PHN2Zz4=\" onload=alert(1)>",
    "<table background=\"javascript:alert(1)\"><tr><td>x</td></tr></table>",
    NULL,
};

static void test_sanitize_attacks_never_leave_script(void **state)
{
	(void)state;
	for (const char *const *a = attacks; *a; a++) {
		const char *out = san(*a);
		if (contains_ci(out, "<script") || contains_ci(out, "javascript:") ||
		    contains_ci(out, "onerror") || contains_ci(out, "onload") ||
		    contains_ci(out, "onclick") || contains_ci(out, "ontoggle"))
			fail_msg("unsafe output for %s: %s", *a, out);
		/* and sanitising again changes nothing that matters */
		const char *again = san(out);
		if (contains_ci(again, "<script") || contains_ci(again, "javascript:"))
			fail_msg("unsafe re-sanitised output for %s: %s", *a, again);
	}
}

static void test_sanitize_script_element(void **state)
{
	(void)state;
	const char *out = san("<p>a</p><script>alert(1)</script><p>b</p>");
	assert_lacks(out, "alert");
	assert_has(out, "<p>a</p><p>b</p>");
}

static void test_sanitize_event_handler(void **state)
{
	(void)state;
	assert_has(san("<img src=x onerror=alert(1)>"), "<img src=\"x\">");
	assert_has(san("<p ONMOUSEOVER=\"x()\" class=c>t</p>"), "<p class=\"c\">t</p>");
}

static void test_sanitize_javascript_urls(void **state)
{
	(void)state;
	assert_has(san("<a href=\"javascript:alert(1)\">x</a>"), "<a>x</a>");
	assert_has(san("<a href=\"jav&#x09;ascript:alert(1)\">x</a>"), "<a>x</a>");
	assert_has(san("<a href=\" JaVaScRiPt:alert(1)\">x</a>"), "<a>x</a>");
	assert_has(san("<a href=\"vbscript:msgbox(1)\">x</a>"), "<a>x</a>");
	/* an undecoded reference in the scheme position is refused too */
	assert_has(san("<a href=\"jav&Tab;ascript&colon;alert(1)\">x</a>"), "<a>x</a>");
}

static void test_sanitize_allowed_urls(void **state)
{
	(void)state;
	const char *out = san("<a href=\"https://x.example/?a=1&amp;b=2\">h</a>"
	                      "<a href=\"http://x.example/\">h</a><a href=\"mailto:a@b\">m</a>"
	                      "<a href=\"tel:+15551234\">t</a><a href=\"/relative/path\">r</a>"
	                      "<a href=\"#anchor\">f</a><img src=\"cid:logo\">"
	                      "<img src=\"data:image/png;base64,iVBORw0KGgo=\">");
	assert_has(out, "href=\"https://x.example/?a=1&amp;b=2\"");
	assert_has(out, "href=\"http://x.example/\"");
	assert_has(out, "href=\"mailto:a@b\"");
	assert_has(out, "href=\"tel:+15551234\"");
	assert_has(out, "href=\"/relative/path\"");
	assert_has(out, "href=\"#anchor\"");
	assert_has(out, "src=\"cid:logo\"");
	assert_has(out, "src=\"data:image/png;base64,iVBORw0KGgo=\"");
	/* blanks around a URL are not part of it */
	assert_has(san("<a href=\" https://x/ \n\">x</a>"), "href=\"https://x/\"");
}

static void test_sanitize_data_urls(void **state)
{
	(void)state;
	const char *out = san("<a href=\"data:text/html,<script>alert(1)</script>\">d</a>"
	                      "<img src=\"data:image/svg+xml,<svg onload=alert(1)>\">"
	                      "<img src=\"data:image/gif;base64,R0lG\">");
	assert_has(out, "<a>d</a>");
	assert_lacks(out, "data:text");
	assert_lacks(out, "svg");
	assert_has(out, "src=\"data:image/gif;base64,R0lG\"");
}

static void test_sanitize_embedding_elements(void **state)
{
	(void)state;
	const char *out = san("<p>a</p><iframe src=x>in</iframe><object data=x>o</object>"
	                      "<embed src=x><applet code=x></applet><p>b</p>");
	/* browsers read <embed> as void: what follows it is kept */
	assert_lacks(out, "iframe");
	assert_lacks(out, "object");
	assert_lacks(out, "embed");
	assert_lacks(out, "applet");
	assert_has(out, "<p>a</p><p>b</p>");
}

static void test_sanitize_forms(void **state)
{
	(void)state;
	const char *out = san("<p>a</p><form action=\"https://evil/\"><input name=pw "
	                      "type=password><select><option>o</option></select>"
	                      "<textarea>t</textarea><button>b</button></form><p>b</p>");
	assert_lacks(out, "form");
	assert_lacks(out, "input");
	assert_lacks(out, "password");
	assert_lacks(out, "select");
	assert_lacks(out, "button");
	assert_has(out, "<p>a</p><p>b</p>");
}

static void test_sanitize_svg_math(void **state)
{
	(void)state;
	const char *out = san("<p>a</p><svg onload=alert(1)><circle r=1/></svg>"
	                      "<math><mi>x</mi></math><p>b</p>");
	assert_lacks(out, "svg");
	assert_lacks(out, "math");
	assert_lacks(out, "onload");
	assert_has(out, "<p>a</p><p>b</p>");
}

static void test_sanitize_css(void **state)
{
	(void)state;
	assert_lacks(san("<style>p { width: expression(alert(1)); }</style>"), "expression");
	assert_lacks(san("<style>@import url(https://x/a.css);</style>"), "@import");
	assert_lacks(san("<style>a{behavior:url(x.htc)}</style>"), "behavior");
	assert_lacks(san("<style>a{-moz-binding:url(x.xml#x)}</style>"), "binding");
	assert_lacks(san("<style>a{background:url('javascript:alert(1)')}</style>"), "javascript");
	assert_lacks(san("<p style=\"width:ex/**/pression(alert(1))\">x</p>"), "style=");
	assert_lacks(san("<p style=\"x:exp\\72 ession(alert(1))\">x</p>"), "style=");
	/* benign CSS stays, in both places */
	const char *ok = san("<style>p{color:red;background:url(\"https://x/a.png\")}"
	                     "</style><p style=\"color: #333; font-family: Arial\">x</p>");
	assert_has(ok, "<style>p{color:red;background:url(\"https://x/a.png\")}</style>");
	assert_has(ok, "style=\"color: #333; font-family: Arial\"");
}

static void test_sanitize_malformed(void **state)
{
	(void)state;
	const char *out = san("<scr<script>ipt>alert(1)</script>");
	assert_lacks(out, "<script");
	assert_lacks(out, "<scr");
	assert_lacks(san("<<script>alert(1)</script>"), "alert");
	out = san("<div><p>unclosed <b>bold <i>it");
	assert_has(out, "<div><p>unclosed <b>bold <i>it</i></b></p></div>");
}

static void test_sanitize_keeps_escaped_text(void **state)
{
	(void)state;
	const char *out = san("<p>&lt;script&gt;alert(1)&lt;/script&gt; &amp; 5 &lt; 6</p>");
	assert_has(out, "<p>&lt;script&gt;alert(1)&lt;/script&gt; &amp; 5 &lt; 6</p>");
	/* attribute values stay escaped too */
	out = san("<p title=\"&quot;&gt;&lt;script&gt;x\">t</p>");
	assert_has(out, "title='\"&gt;&lt;script&gt;x'");
}

static void test_sanitize_meta_and_doctype(void **state)
{
	(void)state;
	const char *out = san("<!DOCTYPE html><html><head><meta charset=\"iso-8859-1\">"
	                      "<meta name=viewport content=\"width=device-width\">"
	                      "<meta http-equiv=refresh content=\"0;url=https://x\">"
	                      "<title>T</title></head><body>\xC3\xA9</body></html>");
	assert_true(strncmp(out, "<!DOCTYPE html>", 15) == 0);
	assert_has(out, "<meta charset=\"utf-8\">");
	assert_has(out, "<meta name=\"viewport\" content=\"width=device-width\">");
	assert_lacks(out, "refresh");
	assert_has(out, "<title>T</title>");
	assert_has(out, "\xC3\xA9"); /* UTF-8 as is, not &eacute; */
	/* no doctype in, none out; a broken one is reduced to "html" */
	assert_lacks(san("<p>x</p>"), "<!DOCTYPE");
	out = san("<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\" "
	          "\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\"><p>x");
	assert_has(out, "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\" "
	                "\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\">");
}

static void test_sanitize_comments_and_unknown(void **state)
{
	(void)state;
	const char *out = san("<!--[if mso]><x>y</x><![endif]--><p>a</p>"
	                      "<marquee>m</marquee><custom-tag>c</custom-tag>");
	assert_lacks(out, "<!--");
	assert_lacks(out, "marquee");
	assert_lacks(out, "custom");
	assert_has(out, "<p>a</p>mc");
}

static const char newsletter[] =
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>News</title>"
    "<style>.btn{background:#0a7;color:#fff}</style></head>"
    "<body style=\"margin:0;background:#eee\">"
    "<table width=\"600\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" "
    "align=\"center\" bgcolor=\"#ffffff\"><tr>"
    "<td align=\"center\" style=\"padding:20px\"><a href=\"https://shop.example/\">"
    "<img src=\"cid:logo\" alt=\"Shop\" width=\"120\" height=\"40\" border=\"0\"></a></td>"
    "</tr><tr><td class=\"content\" style=\"font-family:Arial,sans-serif;font-size:14px\">"
    "<h1 style=\"color:#333\">Spring sale</h1><p>Up to <strong>50%</strong> off.</p>"
    "<ul><li>Shoes</li><li>Hats</li></ul>"
    "<a class=\"btn\" href=\"https://shop.example/sale?utm_source=mail&amp;id=7\" "
    "target=\"_blank\">Shop now</a></td></tr>"
    "<tr><td><img src=\"https://cdn.example/banner.jpg\" alt=\"Banner\"></td>"
    "<td><font color=\"#999\" size=\"1\">Unsubscribe "
    "<a href=\"https://shop.example/u\">here</a></font></td></tr></table></body></html>";

static void test_sanitize_newsletter_kept(void **state)
{
	(void)state;
	const char *out = san(newsletter);
	static const char *const expect[] = {
	    "<!DOCTYPE html>",
	    "<style>.btn{background:#0a7;color:#fff}</style>",
	    "<body style=\"margin:0;background:#eee\">",
	    "<table width=\"600\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" "
	    "align=\"center\" bgcolor=\"#ffffff\">",
	    "<td align=\"center\" style=\"padding:20px\"><a href=\"https://shop.example/\">"
	    "<img src=\"cid:logo\" alt=\"Shop\" width=\"120\" height=\"40\" border=\"0\"></a></td>",
	    "<h1 style=\"color:#333\">Spring sale</h1><p>Up to <strong>50%</strong> off.</p>",
	    "<ul><li>Shoes</li><li>Hats</li></ul>",
	    "href=\"https://shop.example/sale?utm_source=mail&amp;id=7\"",
	    "target=\"_blank\"",
	    "<img src=\"https://cdn.example/banner.jpg\" alt=\"Banner\">",
	    "<font color=\"#999\" size=\"1\">",
	    NULL,
	};
	for (const char *const *e = expect; *e; e++)
		if (!strstr(out, *e))
			fail_msg("missing %s in %s", *e, out);
	assert_string_equal(text(newsletter),
	                    "Shop <https://shop.example/>\n\n"
	                    "Spring sale\n\nUp to 50% off.\n\n- Shoes\n- Hats\n\n"
	                    "Shop now <https://shop.example/sale?utm_source=mail&id=7>\n"
	                    "Banner | Unsubscribe here <https://shop.example/u>");
}

static void test_sanitize_empty_and_utf8(void **state)
{
	(void)state;
	assert_string_equal(san(""), "");
	const char *out = san("<p>a\xFF\xC3</p>");
	assert_has(out, "a\xEF\xBF\xBD\xEF\xBF\xBD");
}

/* ---- cid references ---- */

static void test_references_cid(void **state)
{
	(void)state;
	const char *h = "<p><img src=\"CID:logo@x.example\"><td background=\"cid:bg\">"
	                "<div style=\"background:url('cid:tile%40x')\"></div>"
	                "<img src=\"cid:logo2\"></p>";
	size_t n = strlen(h);
	assert_true(sc_html_references_cid(h, n, "logo@x.example"));
	assert_true(sc_html_references_cid(h, n, " <logo@x.example> "));
	assert_true(sc_html_references_cid(h, n, "bg"));
	assert_true(sc_html_references_cid(h, n, "tile@x"));
	assert_true(sc_html_references_cid(h, n, "logo2"));
	assert_false(sc_html_references_cid(h, n, "logo"));  /* prefix only */
	assert_false(sc_html_references_cid(h, n, "LOGO2")); /* ids are exact */
	assert_false(sc_html_references_cid(h, n, "unused"));
	assert_false(sc_html_references_cid(h, n, ""));
	assert_false(sc_html_references_cid("<p>cid:bg</p>", 13, "bg")); /* text */
	assert_true(sc_html_references_cid("<style>a{background:url(cid:s)}</style>", 39, "s"));
}

/* Several ids in one parse: each answered on its own, whatever order the
 * references come in, an empty id never found. */
static void test_find_cids(void **state)
{
	(void)state;
	const char *h = "<p><img src=\"cid:b\"><td background=\"cid:logo@x\">"
	                "<div style=\"background:url(cid:c%40d)\"></div></p>";
	const char *const cids[] = {"<logo@x>", "missing", "", "b", "c@d", "b"};
	int found[] = {-1, -1, -1, -1, -1, -1};
	sc_html_find_cids(h, strlen(h), cids, 6, found);
	const int want[] = {1, 0, 0, 1, 1, 1};
	for (size_t i = 0; i < 6; i++)
		if (found[i] != want[i])
			fail_msg("cid %zu \"%s\": found %d, want %d", i, cids[i], found[i],
			         want[i]);
	/* unparsable or empty HTML: nothing found, every flag written */
	int none[] = {-1, -1};
	sc_html_find_cids("", 0, cids, 2, none);
	assert_int_equal(none[0], 0);
	assert_int_equal(none[1], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_detect_doctype_and_html),
	    cmocka_unit_test(test_detect_leading_space_and_bom),
	    cmocka_unit_test(test_detect_negatives),
	    cmocka_unit_test_teardown(test_text_paragraphs_and_br, free_results),
	    cmocka_unit_test_teardown(test_text_whitespace, free_results),
	    cmocka_unit_test_teardown(test_text_lists, free_results),
	    cmocka_unit_test_teardown(test_text_tables, free_results),
	    cmocka_unit_test_teardown(test_text_links, free_results),
	    cmocka_unit_test_teardown(test_text_inline_entities_images, free_results),
	    cmocka_unit_test_teardown(test_text_pre, free_results),
	    cmocka_unit_test_teardown(test_text_dropped_content, free_results),
	    cmocka_unit_test_teardown(test_text_malformed, free_results),
	    cmocka_unit_test_teardown(test_sanitize_attacks_never_leave_script, free_results),
	    cmocka_unit_test_teardown(test_sanitize_script_element, free_results),
	    cmocka_unit_test_teardown(test_sanitize_event_handler, free_results),
	    cmocka_unit_test_teardown(test_sanitize_javascript_urls, free_results),
	    cmocka_unit_test_teardown(test_sanitize_allowed_urls, free_results),
	    cmocka_unit_test_teardown(test_sanitize_data_urls, free_results),
	    cmocka_unit_test_teardown(test_sanitize_embedding_elements, free_results),
	    cmocka_unit_test_teardown(test_sanitize_forms, free_results),
	    cmocka_unit_test_teardown(test_sanitize_svg_math, free_results),
	    cmocka_unit_test_teardown(test_sanitize_css, free_results),
	    cmocka_unit_test_teardown(test_sanitize_malformed, free_results),
	    cmocka_unit_test_teardown(test_sanitize_keeps_escaped_text, free_results),
	    cmocka_unit_test_teardown(test_sanitize_meta_and_doctype, free_results),
	    cmocka_unit_test_teardown(test_sanitize_comments_and_unknown, free_results),
	    cmocka_unit_test_teardown(test_sanitize_newsletter_kept, free_results),
	    cmocka_unit_test_teardown(test_sanitize_empty_and_utf8, free_results),
	    cmocka_unit_test(test_references_cid),
	    cmocka_unit_test(test_find_cids),
	};
	return cmocka_run_group_tests_name("html", tests, NULL, NULL);
}
