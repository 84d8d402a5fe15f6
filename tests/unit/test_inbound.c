/* Unit tests for reading received messages (core/inbound/): hand-written
 * messages for each rule of sc_inbound_summary() (sink.h), most of them
 * read twice, with CRLF line ends (as the listener stores them) and with
 * LF only. What Python's email package makes of generated messages is
 * inbound_oracle.py's job. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core.h"
#include "inbound.h"

/* ---- helpers ----------------------------------------------------------- */

/* The message with every "\n" made "\r\n" when crlf. */
static char *with_eol(const char *msg, size_t len, int crlf, size_t *outlen)
{
	struct sc_buf b = {0};
	for (size_t i = 0; i < len; i++) {
		if (msg[i] == '\n' && crlf)
			assert_int_equal(sc_buf_add(&b, "\r", 1), SC_OK);
		assert_int_equal(sc_buf_add(&b, msg + i, 1), SC_OK);
	}
	*outlen = b.len;
	return b.p ? b.p : strdup("");
}

/* Every object must print and parse back, as a sink will use it. */
static void assert_json_roundtrip(const cJSON *o)
{
	char *s = cJSON_PrintUnformatted(o);
	assert_non_null(s);
	cJSON *back = cJSON_Parse(s);
	assert_non_null(back);
	assert_true(cJSON_Compare(o, back, 1));
	cJSON_Delete(back);
	free(s);
}

static cJSON *summary_n(const char *msg, size_t len, int crlf, size_t max_body)
{
	size_t n;
	char *m = with_eol(msg, len, crlf, &n);
	FILE *f = fmemopen(m, n ? n : 1, "rb");
	assert_non_null(f);
	if (!n)
		fgetc(f); /* fmemopen cannot open 0 bytes: read the 1 away */
	cJSON *o = NULL;
	struct sc_error err = SC_ERROR_INIT;
	assert_int_equal(inb_summary_stream(f, max_body, &o, &err), SC_OK);
	assert_null(err.message);
	fclose(f);
	free(m);
	assert_non_null(o);
	assert_json_roundtrip(o);
	return o;
}

static cJSON *summary(const char *msg, int crlf)
{
	return summary_n(msg, strlen(msg), crlf, 1 << 20);
}

static const char *str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	assert_true(cJSON_IsString(v));
	return v->valuestring;
}

static const char *hdr(const cJSON *o, const char *name)
{
	return str(cJSON_GetObjectItemCaseSensitive(o, "headers"), name);
}

static const cJSON *att(const cJSON *o, int i)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "attachments");
	assert_true(cJSON_IsArray(a));
	const cJSON *e = cJSON_GetArrayItem(a, i);
	assert_non_null(e);
	return e;
}

static int natt(const cJSON *o)
{
	return cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(o, "attachments"));
}

static int flag(const cJSON *o, const char *key)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key));
}

/* The decoded text of a Subject header value. */
static char *subject_of(const char *value)
{
	char *m = sc_asprintf("Subject: %s\n\nx\n", value);
	assert_non_null(m);
	cJSON *o = summary(m, 1);
	char *s = strdup(str(o, "subject"));
	cJSON_Delete(o);
	free(m);
	return s;
}

#define ASSERT_SUBJECT(value, expect)                                                              \
	do {                                                                                       \
		char *s_ = subject_of(value);                                                      \
		assert_string_equal(s_, expect);                                                   \
		free(s_);                                                                          \
	} while (0)

/* ---- single part, headers --------------------------------------------- */

static void single_part(void **state)
{
	(void)state;
	static const char m[] = "From: a@example.org\n"
	                        "To: b@example.org\n"
	                        "Subject: Hello there\n"
	                        "Message-ID:  <1234.5678@example.org> \n"
	                        "\n"
	                        "Hello,\n"
	                        "\n"
	                        "World.\n";
	for (int crlf = 0; crlf <= 1; crlf++) {
		cJSON *o = summary(m, crlf);
		assert_string_equal(str(o, "subject"), "Hello there");
		assert_string_equal(str(o, "message_id"), "1234.5678@example.org");
		assert_string_equal(hdr(o, "From"), "a@example.org");
		assert_string_equal(hdr(o, "Message-ID"), "<1234.5678@example.org> ");
		assert_string_equal(str(o, "body"), "Hello,\n\nWorld.\n");
		assert_string_equal(str(o, "body_type"), "text/plain");
		assert_int_equal(natt(o), 0);
		assert_false(flag(o, "body_truncated"));
		cJSON_Delete(o);
	}
}

static void no_subject_no_message_id(void **state)
{
	(void)state;
	cJSON *o = summary("From: a@x\n\nbody", 1);
	assert_string_equal(str(o, "subject"), "");
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "message_id")));
	assert_string_equal(str(o, "body"), "body"); /* no final line end */
	cJSON_Delete(o);
	o = summary("", 1);
	assert_string_equal(str(o, "body"), "");
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "body_type")) ||
	            !strcmp(str(o, "body_type"), "text/plain"));
	cJSON_Delete(o);
}

static void folded_and_repeated_headers(void **state)
{
	(void)state;
	static const char m[] = "Received: from a\n"
	                        "\tby b; Mon, 1 Dec 2026 10:00:00 +0000\n"
	                        "Subject: a long\n"
	                        "  subject\n"
	                        "received: from c\n"
	                        "X-Colon: a: b: c\n"
	                        "RECEIVED: third\n"
	                        "Empty:\n"
	                        "\n"
	                        "x\n";
	for (int crlf = 0; crlf <= 1; crlf++) {
		cJSON *o = summary(m, crlf);
		const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "headers");
		const cJSON *r = cJSON_GetObjectItemCaseSensitive(h, "Received");
		assert_true(cJSON_IsArray(r));
		assert_int_equal(cJSON_GetArraySize(r), 3);
		assert_string_equal(cJSON_GetArrayItem(r, 0)->valuestring,
		                    "from a\tby b; Mon, 1 Dec 2026 10:00:00 +0000");
		assert_string_equal(cJSON_GetArrayItem(r, 1)->valuestring, "from c");
		assert_string_equal(cJSON_GetArrayItem(r, 2)->valuestring, "third");
		assert_null(cJSON_GetObjectItemCaseSensitive(h, "received"));
		assert_string_equal(str(o, "subject"), "a long  subject");
		assert_string_equal(hdr(o, "X-Colon"), "a: b: c"); /* first colon */
		assert_string_equal(hdr(o, "Empty"), "");
		cJSON_Delete(o);
	}
}

static void header_section_ends_at_non_field(void **state)
{
	(void)state;
	/* No blank line: the first line that is not a field starts the body. */
	cJSON *o = summary("Subject: s\nthis is text\nmore\n", 1);
	assert_string_equal(str(o, "subject"), "s");
	assert_string_equal(str(o, "body"), "this is text\nmore\n");
	cJSON_Delete(o);
	/* An mbox separator before the fields is skipped. */
	o = summary("From someone@x Mon Dec  1 10:00:00 2026\nSubject: s\n\nb\n", 0);
	assert_string_equal(str(o, "subject"), "s");
	assert_string_equal(str(o, "body"), "b\n");
	cJSON_Delete(o);
}

/* ---- RFC 2047 ---------------------------------------------------------- */

static void rfc2047_words(void **state)
{
	(void)state;
	ASSERT_SUBJECT("=?utf-8?q?a_b=3F?=", "a b?");
	ASSERT_SUBJECT("=?UTF-8?Q?caf=C3=A9?=", "caf\xC3\xA9");
	ASSERT_SUBJECT("=?iso-8859-1?q?caf=E9?=", "caf\xC3\xA9");
	ASSERT_SUBJECT("=?utf-8?b?SMOpbGxv?=", "H\xC3\xA9llo");
	/* Whitespace between adjacent words goes (RFC 2047 §6.2), even
	 * across a fold; between a word and text it stays. */
	ASSERT_SUBJECT("=?utf-8?q?a?= =?utf-8?q?b?=", "ab");
	ASSERT_SUBJECT("=?utf-8?q?a?=\n   =?utf-8?q?b?=", "ab");
	ASSERT_SUBJECT("=?utf-8?q?a?= b =?utf-8?q?c?=", "a b c");
	ASSERT_SUBJECT("x =?utf-8?q?a_?= y", "x a  y");
	ASSERT_SUBJECT("=?utf-8?q?a?==?iso-8859-1?q?=E9?=", "a\xC3\xA9");
	/* A character split across two words (each word alone is not
	 * UTF-8): the bytes are joined before conversion. */
	ASSERT_SUBJECT("=?utf-8?B?4pw=?= =?utf-8?B?iA==?=", "\xE2\x9C\x88");
	ASSERT_SUBJECT("=?utf-8?q?=E2=9C?= =?utf-8?q?=88_ok?=", "\xE2\x9C\x88 ok");
	/* RFC 2231 language suffix on the charset. */
	ASSERT_SUBJECT("=?utf-8*en?q?hi?=", "hi");
	/* Unknown charset: read as UTF-8, what is not becomes U+FFFD. */
	ASSERT_SUBJECT("=?x-no-such?q?caf=C3=A9?=", "caf\xC3\xA9");
	ASSERT_SUBJECT("=?x-no-such?q?caf=E9?=", "caf\xEF\xBF\xBD");
	ASSERT_SUBJECT("=?utf-8//TRANSLIT?q?x?=", "x");
	/* Malformed words stay as written. */
	ASSERT_SUBJECT("=?utf-8?x?abc?=", "=?utf-8?x?abc?=");
	ASSERT_SUBJECT("=?utf-8?q?no end", "=?utf-8?q?no end");
	ASSERT_SUBJECT("=??q?a?=", "=??q?a?=");
	ASSERT_SUBJECT("=?utf-8?q?a=?=", "a=");
	ASSERT_SUBJECT("=?utf-8?b?SGk?=", "Hi"); /* missing padding */
	ASSERT_SUBJECT("=?utf-8?b?!!!?=", "");
	/* Raw 8-bit in a header (SMTPUTF8, or junk). */
	ASSERT_SUBJECT("Gr\xC3\xBC\xC3\x9F"
	               "e",
	               "Gr\xC3\xBC\xC3\x9F"
	               "e");
	ASSERT_SUBJECT("bad \xFF\xC3", "bad \xEF\xBF\xBD\xEF\xBF\xBD");
	/* A NUL decoded from a word cannot end the string early. */
	ASSERT_SUBJECT("=?utf-8?q?a=00b?=", "a\xEF\xBF\xBD"
	                                    "b");
}

static void encoded_from_header(void **state)
{
	(void)state;
	cJSON *o = summary("From: =?utf-8?q?J=C3=B6rg?= <j@example.org>\n\n", 1);
	assert_string_equal(hdr(o, "From"), "J\xC3\xB6rg <j@example.org>");
	cJSON_Delete(o);
}

/* ---- transfer encodings and charsets -------------------------------- */

static const char *body_of(const char *headers_and_body, cJSON **keep)
{
	*keep = summary(headers_and_body, 1);
	return str(*keep, "body");
}

static void quoted_printable(void **state)
{
	(void)state;
	cJSON *o;
	assert_string_equal(body_of("Content-Transfer-Encoding: quoted-printable\n\n"
	                            "soft=\nbreak, trailing   \n"
	                            "=48=65=6c=6C=6f\n"
	                            "bad =ZZ =4 end=\n"
	                            "x= \n"
	                            "y\n",
	                            &o),
	                    "softbreak, trailing\nHello\nbad =ZZ =4 endx"
	                    "y\n");
	cJSON_Delete(o);
	assert_string_equal(body_of("Content-Transfer-Encoding: Quoted-Printable\n"
	                            "Content-Type: text/plain; charset=utf-8\n\n"
	                            "a=C3=\n=A9 mid = blank\n",
	                            &o),
	                    "a\xC3\xA9 mid = blank\n");
	cJSON_Delete(o);
	/* Encoded CRLF pairs become "\n" like the transport ones. */
	assert_string_equal(body_of("Content-Transfer-Encoding: quoted-printable\n\n"
	                            "a=0D=0Ab\n",
	                            &o),
	                    "a\nb\n");
	cJSON_Delete(o);
}

static void base64_bodies(void **state)
{
	(void)state;
	cJSON *o;
	/* Across lines, blanks and junk ignored. */
	assert_string_equal(body_of("Content-Transfer-Encoding: base64\n\n"
	                            "SGVs\n bG8s IHdv\ncmxk!!\nIQ==\n",
	                            &o),
	                    "Hello, world!");
	cJSON_Delete(o);
	/* Two encodings glued together: decoding goes on after "=". */
	assert_string_equal(body_of("Content-Transfer-Encoding: base64\n\n"
	                            "SGk=\nSGk=\n",
	                            &o),
	                    "HiHi");
	cJSON_Delete(o);
	/* Missing padding, and a dangling character. */
	assert_string_equal(body_of("Content-Transfer-Encoding: BASE64\n\nSGk\n", &o), "Hi");
	cJSON_Delete(o);
	assert_string_equal(body_of("Content-Transfer-Encoding: base64\n\nSGkhS\n", &o), "Hi!");
	cJSON_Delete(o);
	/* Binary after decoding: NUL and bad UTF-8 become U+FFFD. */
	assert_string_equal(body_of("Content-Transfer-Encoding: base64\n\nAP9h\n", &o),
	                    "\xEF\xBF\xBD\xEF\xBF\xBD"
	                    "a");
	cJSON_Delete(o);
}

static void charsets(void **state)
{
	(void)state;
	cJSON *o;
	assert_string_equal(body_of("Content-Type: text/plain; charset=windows-1252\n"
	                            "Content-Transfer-Encoding: 8bit\n\n\x80 \x93q\x94\n",
	                            &o),
	                    "\xE2\x82\xAC \xE2\x80\x9Cq\xE2\x80\x9D\n");
	cJSON_Delete(o);
	assert_string_equal(body_of("Content-Type: text/plain; charset=\"ISO-8859-1\"\n\n"
	                            "\xE9t\xE9\n",
	                            &o),
	                    "\xC3\xA9t\xC3\xA9\n");
	cJSON_Delete(o);
	/* Shift_JIS as Windows-31J: 0x5C stays a backslash. */
	assert_string_equal(body_of("Content-Type: text/plain; charset=shift_jis\n\n"
	                            "\x93\xFA\x96\x7B C:\\x\n",
	                            &o),
	                    "\xE6\x97\xA5\xE6\x9C\xAC C:\\x\n");
	cJSON_Delete(o);
	assert_string_equal(body_of("Content-Type: text/plain; charset=iso-2022-jp\n\n"
	                            "\x1B$BF|K\\\x1B(B\n",
	                            &o),
	                    "\xE6\x97\xA5\xE6\x9C\xAC\n");
	cJSON_Delete(o);
	/* Unknown charset: UTF-8 with U+FFFD. */
	assert_string_equal(body_of("Content-Type: text/plain; charset=x-klingon\n\n"
	                            "ok \xC3\xA9 \xE9\n",
	                            &o),
	                    "ok \xC3\xA9 \xEF\xBF\xBD\n");
	cJSON_Delete(o);
	/* Bytes us-ascii cannot hold are read as UTF-8 too. */
	assert_string_equal(body_of("Content-Type: text/plain; charset=us-ascii\n\n"
	                            "\xC3\xA9\n",
	                            &o),
	                    "\xC3\xA9\n");
	cJSON_Delete(o);
	/* Ill-formed UTF-8: one U+FFFD per maximal subpart. */
	assert_string_equal(body_of("Content-Type: text/plain; charset=utf-8\n\n"
	                            "\xE2\x9C\xF0\x9F\x98\x80\xED\xA0\x80\xC0\xAF\n",
	                            &o),
	                    "\xEF\xBF\xBD\xF0\x9F\x98\x80\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
	                    "\xEF\xBF\xBD\xEF\xBF\xBD\n");
	cJSON_Delete(o);
	/* Bytes a known charset cannot map. */
	assert_string_equal(body_of("Content-Type: text/plain; charset=iso-8859-8\n\n"
	                            "\xFF.\n",
	                            &o),
	                    "\xEF\xBF\xBD.\n");
	cJSON_Delete(o);
}

/* ---- multipart --------------------------------------------------------- */

static void alternative_prefers_plain(void **state)
{
	(void)state;
	static const char m[] = "Subject: alt\n"
	                        "Content-Type: multipart/alternative; boundary=\"=_b 1\"\n"
	                        "\n"
	                        "preamble\n"
	                        "--=_b 1\n"
	                        "Content-Type: text/html; charset=utf-8\n"
	                        "\n"
	                        "<p>html</p>\n"
	                        "--=_b 1\n"
	                        "Content-Type: text/plain; charset=utf-8\n"
	                        "Content-Transfer-Encoding: quoted-printable\n"
	                        "\n"
	                        "plain caf=C3=A9\n"
	                        "\n"
	                        "--=_b 1-- \n"
	                        "epilogue\n";
	for (int crlf = 0; crlf <= 1; crlf++) {
		cJSON *o = summary(m, crlf);
		/* The line end before a delimiter belongs to it. */
		assert_string_equal(str(o, "body"), "plain caf\xC3\xA9\n");
		assert_string_equal(str(o, "body_type"), "text/plain");
		assert_int_equal(natt(o), 0);
		cJSON_Delete(o);
	}
}

static void html_only(void **state)
{
	(void)state;
	static const char m[] = "Content-Type: multipart/mixed; boundary=b\n\n"
	                        "--b\n"
	                        "Content-Type: text/html; charset=iso-8859-1\n"
	                        "Content-Transfer-Encoding: base64\n\n"
	                        "PHA+6TwvcD4=\n"
	                        "--b\n"
	                        "Content-Type: image/png\n"
	                        "Content-Transfer-Encoding: base64\n\n"
	                        "iVBORw0KGgo=\n"
	                        "--b--\n";
	for (int crlf = 0; crlf <= 1; crlf++) {
		cJSON *o = summary(m, crlf);
		assert_string_equal(str(o, "body"), "<p>\xC3\xA9</p>");
		assert_string_equal(str(o, "body_type"), "text/html");
		assert_int_equal(natt(o), 1);
		assert_string_equal(str(att(o, 0), "content_type"), "image/png");
		assert_int_equal(cJSON_GetObjectItem(att(o, 0), "size")->valueint, 8);
		assert_string_equal(str(att(o, 0), "name"), "");
		cJSON_Delete(o);
	}
}

static void nested_multiparts(void **state)
{
	(void)state;
	static const char m[] = "Content-Type: multipart/mixed; boundary=outer\n\n"
	                        "--outer\n"
	                        "Content-Type: multipart/alternative; boundary=alt\n\n"
	                        "--alt\n"
	                        "Content-Type: text/plain\n\n"
	                        "the text\n"
	                        "--alt\n"
	                        "Content-Type: multipart/related; boundary=rel\n\n"
	                        "--rel\n"
	                        "Content-Type: text/html\n\n"
	                        "<img src=cid:i>\n"
	                        "--rel\n"
	                        "Content-Type: image/gif; name=\"pic.gif\"\n"
	                        "Content-Disposition: inline\n"
	                        "Content-Transfer-Encoding: base64\n\n"
	                        "R0lGODlh\n"
	                        "--rel--\n"
	                        "--alt--\n"
	                        "--outer\n"
	                        "Content-Type: application/pdf\n"
	                        "Content-Disposition: attachment; filename=\"r\\\"1\\\".pdf\"\n"
	                        "Content-Transfer-Encoding: base64\n\n"
	                        "JVBERi0xLjQK\n"
	                        "--outer\n"
	                        "Content-Type: text/plain; name=notes.txt\n"
	                        "Content-Disposition: attachment\n\n"
	                        "line 1\n"
	                        "line 2\n"
	                        "--outer\n"
	                        "Content-Type: message/rfc822\n\n"
	                        "Subject: inner\n"
	                        "Content-Type: text/plain\n\n"
	                        "not the body\n"
	                        "--outer--\n";
	for (int crlf = 0; crlf <= 1; crlf++) {
		cJSON *o = summary(m, crlf);
		assert_string_equal(str(o, "body"), "the text");
		assert_int_equal(natt(o), 4);
		assert_string_equal(str(att(o, 0), "name"), "pic.gif");
		assert_string_equal(str(att(o, 0), "content_type"), "image/gif");
		assert_int_equal(cJSON_GetObjectItem(att(o, 0), "size")->valueint, 6);
		assert_string_equal(str(att(o, 1), "name"), "r\"1\".pdf");
		assert_int_equal(cJSON_GetObjectItem(att(o, 1), "size")->valueint, 9);
		assert_string_equal(str(att(o, 2), "name"), "notes.txt");
		assert_string_equal(str(att(o, 2), "content_type"), "text/plain");
		/* 7bit text: each line end counts as one byte ("\n"). */
		assert_int_equal(cJSON_GetObjectItem(att(o, 2), "size")->valueint, 13);
		assert_string_equal(str(att(o, 3), "content_type"), "message/rfc822");
		cJSON_Delete(o);
	}
}

static void attachment_names(void **state)
{
	(void)state;
	static const char m[] =
	    "Content-Type: multipart/mixed; boundary=b\n\n"
	    "--b\n"
	    "Content-Type: application/octet-stream\n"
	    "Content-Disposition: attachment;\n"
	    " filename*=UTF-8''%C3%A9t%C3%A9%20%E2%82%AC.txt\n\n"
	    "x\n"
	    "--b\n"
	    "Content-Type: application/octet-stream\n"
	    "Content-Disposition: attachment;\n"
	    " filename*0*=iso-8859-1'fr'caf%E9;\n"
	    " filename*1=\" au lait\";\n"
	    " filename*2*=%2Etxt\n\n"
	    "x\n"
	    "--b\n"
	    "Content-Type: application/octet-stream;\n"
	    "\tname=\"=?utf-8?B?w6l0w6kucGRm?=\"\n\n"
	    "x\n"
	    "--b\n"
	    "Content-Type: application/octet-stream; name=ct-name.bin\n"
	    "Content-Disposition: attachment; filename=cd-name.bin\n\n"
	    "x\n"
	    "--b\n"
	    "Content-Type: application/octet-stream; (a comment) name = spaced name.bin ;\n\n"
	    "x\n"
	    "--b\n"
	    "Content-Type: application/x; name*1=\"b\"; name*0=\"a\"; name*3=\"gap\"\n\n"
	    "x\n"
	    "--b\n"
	    "Content-Type: application/x; name*=''%41%zz%4\n\n"
	    "x\n"
	    "--b\n"
	    "Content-Type: application/x; name*0=\"plain \"; name*1*=%C3%A9; name=ignored\n\n"
	    "x\n"
	    "--b\n"
	    "Content-Type: application/x; name*=no-quotes%41; name*x=junk\n\n"
	    "x\n"
	    "--b--\n";
	for (int crlf = 0; crlf <= 1; crlf++) {
		cJSON *o = summary(m, crlf);
		assert_int_equal(natt(o), 9);
		assert_string_equal(str(att(o, 0), "name"), "\xC3\xA9t\xC3\xA9 \xE2\x82\xAC.txt");
		assert_string_equal(str(att(o, 1), "name"), "caf\xC3\xA9 au lait.txt");
		assert_string_equal(str(att(o, 2), "name"), "\xC3\xA9t\xC3\xA9.pdf");
		assert_string_equal(str(att(o, 3), "name"), "cd-name.bin");
		assert_string_equal(str(att(o, 4), "name"), "spaced name.bin");
		assert_string_equal(str(att(o, 5), "name"), "ab");
		assert_string_equal(str(att(o, 5), "content_type"), "application/x");
		/* Empty charset: UTF-8; a bad escape stays as written. */
		assert_string_equal(str(att(o, 6), "name"), "A%zz%4");
		/* Sections win over the plain form; no charset: UTF-8. */
		assert_string_equal(str(att(o, 7), "name"), "plain \xC3\xA9");
		/* No charset'language' prefix: the value as it is, decoded. */
		assert_string_equal(str(att(o, 8), "name"), "no-quotesA");
		assert_int_equal(cJSON_GetObjectItem(att(o, 0), "size")->valueint, crlf ? 1 : 1);
		cJSON_Delete(o);
	}
}

static void text_attachment_is_not_body(void **state)
{
	(void)state;
	cJSON *o = summary("Content-Type: multipart/mixed; boundary=b\n\n"
	                   "--b\n"
	                   "Content-Type: text/plain\n"
	                   "Content-Disposition: attachment; filename=a.txt\n\n"
	                   "file\n"
	                   "--b\n"
	                   "Content-Type: text/plain\n\n"
	                   "body\n"
	                   "--b\n"
	                   "Content-Type: text/plain\n\n"
	                   "second inline text: neither\n"
	                   "--b--\n",
	                   1);
	assert_string_equal(str(o, "body"), "body");
	assert_int_equal(natt(o), 1);
	assert_string_equal(str(att(o, 0), "name"), "a.txt");
	cJSON_Delete(o);
	/* A single-part message that is a file. */
	o = summary("Content-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n"
	            "JVBERi0xLjQK\n",
	            1);
	assert_string_equal(str(o, "body"), "");
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "body_type")));
	assert_int_equal(natt(o), 1);
	assert_int_equal(cJSON_GetObjectItem(att(o, 0), "size")->valueint, 9);
	cJSON_Delete(o);
}

static void digest_parts_are_messages(void **state)
{
	(void)state;
	cJSON *o = summary("Content-Type: multipart/digest; boundary=d\n\n"
	                   "--d\n\n"
	                   "Subject: one\n\nbody one\n"
	                   "--d--\n",
	                   1);
	assert_int_equal(natt(o), 1);
	assert_string_equal(str(att(o, 0), "content_type"), "message/rfc822");
	cJSON_Delete(o);
}

/* ---- malformed and truncated ----------------------------------------- */

static void truncated_messages(void **state)
{
	(void)state;
	/* EOF inside the header section. */
	cJSON *o = summary("Subject: cut\nX-Half: abc", 1);
	assert_string_equal(str(o, "subject"), "cut");
	assert_string_equal(hdr(o, "X-Half"), "abc");
	assert_string_equal(str(o, "body"), "");
	cJSON_Delete(o);
	/* EOF inside a part's headers, and inside a base64 file. */
	o = summary("Content-Type: multipart/mixed; boundary=b\n\n"
	            "--b\nContent-Type: text/plain\n\nthe body\n"
	            "--b\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\n"
	            "iVBORw0KG",
	            1);
	assert_string_equal(str(o, "body"), "the body");
	assert_int_equal(natt(o), 1);
	assert_int_equal(cJSON_GetObjectItem(att(o, 0), "size")->valueint, 6);
	cJSON_Delete(o);
	o = summary("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: te", 1);
	assert_string_equal(str(o, "body"), "");
	cJSON_Delete(o);
	/* No close delimiter: the text runs to the end of the file. */
	o = summary("Content-Type: multipart/alternative; boundary=b\n\n"
	            "--b\n\nplain to the end\n",
	            1);
	assert_string_equal(str(o, "body"), "plain to the end\n");
	cJSON_Delete(o);
	/* Boundary never appears: nothing but preamble. */
	o = summary("Content-Type: multipart/mixed; boundary=nope\n\ntext\n", 1);
	assert_string_equal(str(o, "body"), "");
	cJSON_Delete(o);
}

static void malformed_mime(void **state)
{
	(void)state;
	/* multipart without a boundary: read as text. */
	cJSON *o = summary("Content-Type: multipart/mixed\n\n--x\nhello\n", 1);
	assert_string_equal(str(o, "body"), "--x\nhello\n");
	cJSON_Delete(o);
	/* Content-Type that is no media type: text/plain. */
	o = summary("Content-Type: garbage\n\nhi\n", 1);
	assert_string_equal(str(o, "body"), "hi\n");
	cJSON_Delete(o);
	/* An outer delimiter closes the inner multipart left open. */
	o = summary("Content-Type: multipart/mixed; boundary=o\n\n"
	            "--o\nContent-Type: multipart/alternative; boundary=i\n\n"
	            "--i\nContent-Type: text/plain\n\nin\n"
	            "--o\nContent-Type: image/png\n\nPNG\n"
	            "--o--\n",
	            1);
	assert_string_equal(str(o, "body"), "in");
	assert_int_equal(natt(o), 1);
	assert_int_equal(cJSON_GetObjectItem(att(o, 0), "size")->valueint, 3);
	cJSON_Delete(o);
	/* Part headers cut by a delimiter; a part with no headers at all. */
	o = summary("Content-Type: multipart/mixed; boundary=b\n\n"
	            "--b\nContent-Type: image/png\n"
	            "--b\nno headers here\n"
	            "--b--\n",
	            1);
	assert_string_equal(str(o, "body"), "no headers here");
	assert_int_equal(natt(o), 1);
	cJSON_Delete(o);
	/* A delimiter with more text after it is not one. */
	o = summary("Content-Type: multipart/mixed; boundary=b\n\n"
	            "--b\n\n--bb\n--b x\n--b\t\n\nnext\n--b--",
	            1);
	assert_string_equal(str(o, "body"), "--bb\n--b x");
	cJSON_Delete(o);
}

static void nul_bytes(void **state)
{
	(void)state;
	/* A NUL inside the boundary parameter (found by fuzz_inbound: the
	 * boundary was copied with strndup, shorter than its length). */
	static const char m[] = "Content-Type: multipart/mixed; boundary=\"a\0b\"\n\n"
	                        "--a\0b\n\nin\0side\n--a\0b--\n";
	for (int crlf = 0; crlf <= 1; crlf++) {
		cJSON *o = summary_n(m, sizeof m - 1, crlf, 100);
		assert_string_equal(str(o, "body"), "in\xEF\xBF\xBDside");
		cJSON_Delete(o);
	}
	static const char h[] = "Subject: a\0b\nX-\0: v\n\nx";
	cJSON *o = summary_n(h, sizeof h - 1, 1, 100);
	assert_string_equal(str(o, "subject"), "a\xEF\xBF\xBD"
	                                       "b");
	/* A NUL is no field-name character: that line starts the body. */
	assert_string_equal(str(o, "body"), "X-\xEF\xBF\xBD: v\n\nx");
	cJSON_Delete(o);
}

static void nesting_depth_bounded(void **state)
{
	(void)state;
	struct sc_buf m = {0};
	for (int i = 0; i < 100; i++)
		assert_int_equal(
		    sc_buf_printf(&m, "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i,
		                  i),
		    SC_OK);
	assert_int_equal(sc_buf_str(&m, "Content-Type: text/plain\n\ndeep\n"), SC_OK);
	cJSON *o = summary_n(m.p, m.len, 1, 1 << 20);
	/* 32 levels are walked; the 33rd multipart is one opaque part. */
	assert_string_equal(str(o, "body"), "");
	assert_int_equal(natt(o), 1);
	assert_string_equal(str(att(o, 0), "content_type"), "multipart/mixed");
	cJSON_Delete(o);
	sc_buf_free(&m);
}

static void body_over_max_body(void **state)
{
	(void)state;
	struct sc_buf m = {0};
	assert_int_equal(sc_buf_str(&m, "Content-Type: text/plain; charset=utf-8\n\n"), SC_OK);
	for (int i = 0; i < 5000; i++)
		assert_int_equal(sc_buf_str(&m, "\xC3\xA9t\xC3\xA9 "), SC_OK);
	for (int crlf = 0; crlf <= 1; crlf++) {
		cJSON *o = summary_n(m.p, m.len, crlf, 1000);
		const char *b = str(o, "body");
		/* Cut before the character that did not fit in 1000 bytes. */
		assert_int_equal(strlen(b), 999);
		assert_true(flag(o, "body_truncated"));
		cJSON_Delete(o);
	}
	cJSON *o = summary_n(m.p, m.len, 1, 0);
	assert_string_equal(str(o, "body"), "");
	assert_true(flag(o, "body_truncated"));
	cJSON_Delete(o);
	sc_buf_free(&m);
}

static void long_lines_and_header_bound(void **state)
{
	(void)state;
	struct sc_buf m = {0};
	assert_int_equal(sc_buf_str(&m, "Subject: s\nX-Big: "), SC_OK);
	for (int i = 0; i < 200000; i++) /* 1.2 MB of folded header */
		assert_int_equal(sc_buf_str(&m, "abcde\n "), SC_OK);
	assert_int_equal(sc_buf_str(&m, "end\nX-After: lost\n\n"), SC_OK);
	size_t body_at = m.len;
	for (int i = 0; i < 100000; i++) /* a 200 kB line: read in pieces */
		assert_int_equal(sc_buf_str(&m, "=4"), SC_OK);
	assert_int_equal(sc_buf_str(&m, "\n"), SC_OK);
	cJSON *o = summary_n(m.p, m.len, 1, (size_t)1 << 20);
	assert_true(flag(o, "headers_truncated"));
	assert_string_equal(str(o, "subject"), "s");
	assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "headers"), "X-After"));
	assert_int_equal(strlen(str(o, "body")), m.len - body_at);
	cJSON_Delete(o);
	sc_buf_free(&m);
}

static cJSON *summary_chunked(const char *msg, size_t len, size_t chunk)
{
	FILE *f = fmemopen((void *)msg, len, "rb");
	assert_non_null(f);
	cJSON *o = NULL;
	struct sc_error err = SC_ERROR_INIT;
	assert_int_equal(inb_summary_chunked(f, 1 << 20, chunk, &o, &err), SC_OK);
	fclose(f);
	assert_non_null(o);
	return o;
}

/* The summary is the same whatever the read buffer (from 48 bytes up:
 * the header and boundary lines used here fit it). */
static void assert_chunk_invariant(const struct sc_buf *m)
{
	cJSON *ref = summary_chunked(m->p, m->len, (size_t)64 << 10);
	for (size_t chunk = 48; chunk <= 140; chunk++) {
		cJSON *o = summary_chunked(m->p, m->len, chunk);
		if (!cJSON_Compare(ref, o, 1)) {
			char *a = cJSON_Print(ref), *b = cJSON_Print(o);
			print_error("chunk %zu:\n%s\n!=\n%s\n", chunk, a, b);
			free(a);
			free(b);
			fail();
		}
		cJSON_Delete(o);
	}
	/* The smallest buffer: nothing to compare, but it must end. */
	cJSON_Delete(summary_chunked(m->p, m->len, 1));
	cJSON_Delete(ref);
}

static void repeat(struct sc_buf *m, const char *s, int n)
{
	for (int i = 0; i < n; i++)
		assert_int_equal(sc_buf_str(m, s), SC_OK);
}

/* Lines longer than the read buffer arrive in pieces: every cut (in a
 * "=XY", a base64 quad, a UTF-8 or ISO-2022-JP sequence, in held
 * blanks, between CR and LF) must decode as if the line came whole. */
static void lines_in_pieces(void **state)
{
	(void)state;
	struct sc_buf m = {0};
	assert_int_equal(sc_buf_str(&m, "Subject: pieces\r\n"
	                                "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
	                                "Content-Type: text/plain; charset=utf-8\r\n"
	                                "Content-Transfer-Encoding: quoted-printable\r\n\r\n"),
	                 SC_OK);
	repeat(&m, "x=3D\xF0\x9F\x8E\x89=C3=A9  \t", 40);
	assert_int_equal(sc_buf_str(&m, "\r\n\r\n\r\n--b\r\nContent-Type: image/png\r\n"
	                                "Content-Transfer-Encoding: base64\r\n\r\n"),
	                 SC_OK);
	repeat(&m, "iVBORw0KGgo= AAEC\r", 50);
	assert_int_equal(sc_buf_str(&m, "\r\n--b--\r\n"), SC_OK);
	assert_chunk_invariant(&m);
	cJSON *o = summary_chunked(m.p, m.len, 50);
	assert_int_equal(strncmp(str(o, "body"), "x=\xF0\x9F\x8E\x89\xC3\xA9  \tx=", 13), 0);
	assert_int_equal(cJSON_GetObjectItem(att(o, 0), "size")->valueint, 50 * 11);
	cJSON_Delete(o);

	m.len = 0;
	assert_int_equal(sc_buf_str(&m, "Content-Type: text/plain; charset=iso-2022-jp\n\n"),
	                 SC_OK);
	repeat(&m, "\x1B$BF|K\\\x1B(B ab", 30);
	assert_int_equal(sc_buf_str(&m, "\n"), SC_OK);
	assert_chunk_invariant(&m);

	m.len = 0;
	assert_int_equal(sc_buf_str(&m, "Content-Type: text/plain; charset=utf-8\n"
	                                "Content-Transfer-Encoding: 8bit\n\n"),
	                 SC_OK);
	repeat(&m, "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x8E\x89\xFF", 40);
	assert_int_equal(sc_buf_str(&m, "\r\n"), SC_OK);
	assert_chunk_invariant(&m);
	sc_buf_free(&m);
}

static void many_fields(void **state)
{
	(void)state;
	struct sc_buf m = {0};
	for (int i = 0; i < 12000; i++)
		assert_int_equal(sc_buf_printf(&m, i % 2 ? "Received: r%d\n" : "X-%d: v\n", i),
		                 SC_OK);
	assert_int_equal(sc_buf_str(&m, "Subject: late\n\nbody\n"), SC_OK);
	cJSON *o = summary_n(m.p, m.len, 1, 100);
	const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "headers");
	/* 10,000 fields kept: 5,000 distinct X- names and one array. */
	assert_int_equal(cJSON_GetArraySize(h), 5001);
	const cJSON *r = cJSON_GetObjectItemCaseSensitive(h, "Received");
	assert_int_equal(cJSON_GetArraySize(r), 5000);
	assert_string_equal(cJSON_GetArrayItem(r, 4999)->valuestring, "r9999");
	assert_true(flag(o, "headers_truncated"));
	assert_string_equal(str(o, "subject"), "");
	assert_string_equal(str(o, "body"), "body\n");
	cJSON_Delete(o);
	sc_buf_free(&m);
}

static void file_interface(void **state)
{
	(void)state;
	char path[] = "/tmp/test_inbound.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	static const char m[] = "Subject: file\r\n\r\nbody\r\n";
	assert_int_equal(write(fd, m, sizeof m - 1), (ssize_t)(sizeof m - 1));
	close(fd);
	cJSON *o = NULL;
	struct sc_error err = SC_ERROR_INIT;
	assert_int_equal(sc_inbound_summary(path, 100, &o, &err), SC_OK);
	assert_string_equal(str(o, "body"), "body\n");
	cJSON_Delete(o);
	unlink(path);
	/* A file that is not there is the one error, and it says which. */
	o = (cJSON *)1;
	assert_int_equal(sc_inbound_summary(path, 100, &o, &err), SC_EIO);
	assert_null(o);
	assert_non_null(strstr(err.message, path));
	sc_error_clear(&err);
	/* A directory opens but does not read: SC_EIO, not an empty message. */
	assert_int_equal(sc_inbound_summary("/", 100, &o, &err), SC_EIO);
	assert_null(o);
	assert_non_null(strstr(err.message, "directory"));
	sc_error_clear(&err);
}

/* From memory: the same object as from the file, the HTML pass (which
 * rewinds the stream) included; zero bytes are an empty message. */
static void memory_interface(void **state)
{
	(void)state;
	static const char m[] = "Subject: =?UTF-8?B?bcOpbW9pcmU=?=\r\nContent-Type: "
	                        "multipart/alternative; boundary=x\r\n\r\n"
	                        "--x\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n--x--\r\n";
	char path[] = "/tmp/test_inbound.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, m, sizeof m - 1), (ssize_t)(sizeof m - 1));
	close(fd);
	cJSON *a = NULL, *b = NULL;
	struct sc_error err = SC_ERROR_INIT;
	assert_int_equal(sc_inbound_summary(path, 100, &a, &err), SC_OK);
	assert_int_equal(sc_inbound_summary_mem(m, sizeof m - 1, 100, &b, &err), SC_OK);
	unlink(path);
	assert_true(cJSON_Compare(a, b, 1));
	assert_string_equal(str(b, "subject"), "m\xc3\xa9moire");
	assert_string_equal(str(b, "body_type"), "text/html");
	cJSON_Delete(a);
	cJSON_Delete(b);
	assert_int_equal(sc_inbound_summary_mem("", 0, 100, &b, &err), SC_OK);
	assert_string_equal(str(b, "subject"), "");
	assert_string_equal(str(b, "body"), "");
	cJSON_Delete(b);
}

/* sc_inbound_load: the message's bytes after what b held, or nothing of
 * a file that is not the size the listener said. */
static void load_interface(void **state)
{
	(void)state;
	char path[] = "/tmp/test_inbound.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "Subject: x\r\n\r\nhi\r\n", 18), 18);
	close(fd);
	struct sc_inbound m = {.path = path, .size = 18};
	struct sc_buf b = {0};
	assert_int_equal(sc_buf_str(&b, "Return-Path: <>\r\n"), SC_OK);
	assert_int_equal(sc_inbound_load(&m, &b), SC_OK);
	assert_string_equal(b.p, "Return-Path: <>\r\nSubject: x\r\n\r\nhi\r\n");
	size_t had = b.len;
	m.size = 19; /* the file is shorter */
	assert_int_equal(sc_inbound_load(&m, &b), SC_EIO);
	m.size = 17; /* the file is longer */
	assert_int_equal(sc_inbound_load(&m, &b), SC_EIO);
	assert_int_equal(b.len, had);
	assert_int_equal(b.p[had], '\0');
	m.size = SC_INBOUND_LOAD_MAX + 1;
	assert_int_equal(sc_inbound_load(&m, &b), SC_EIO);
	assert_int_equal(errno, EFBIG);
	unlink(path);
	m.size = 18;
	assert_int_equal(sc_inbound_load(&m, &b), SC_EIO); /* gone */
	assert_int_equal(b.len, had);
	sc_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(single_part),
	    cmocka_unit_test(no_subject_no_message_id),
	    cmocka_unit_test(folded_and_repeated_headers),
	    cmocka_unit_test(header_section_ends_at_non_field),
	    cmocka_unit_test(rfc2047_words),
	    cmocka_unit_test(encoded_from_header),
	    cmocka_unit_test(quoted_printable),
	    cmocka_unit_test(base64_bodies),
	    cmocka_unit_test(charsets),
	    cmocka_unit_test(alternative_prefers_plain),
	    cmocka_unit_test(html_only),
	    cmocka_unit_test(nested_multiparts),
	    cmocka_unit_test(attachment_names),
	    cmocka_unit_test(text_attachment_is_not_body),
	    cmocka_unit_test(digest_parts_are_messages),
	    cmocka_unit_test(truncated_messages),
	    cmocka_unit_test(malformed_mime),
	    cmocka_unit_test(nul_bytes),
	    cmocka_unit_test(nesting_depth_bounded),
	    cmocka_unit_test(body_over_max_body),
	    cmocka_unit_test(long_lines_and_header_bound),
	    cmocka_unit_test(lines_in_pieces),
	    cmocka_unit_test(many_fields),
	    cmocka_unit_test(file_interface),
	    cmocka_unit_test(memory_interface),
	    cmocka_unit_test(load_interface),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
