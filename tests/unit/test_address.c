/* Unit tests for core/message/address.c: one TAP line per input, so a failure
 * names the address list that broke. Cases are tables; the test
 * functions only run them. */
#include "core.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define MAXPAIRS 5

struct pair {
	const char *display; /* NULL: expect no display name */
	const char *addr;    /* NULL ends the list */
};

struct ok_case {
	const char *in;
	struct pair want[MAXPAIRS];
};

struct err_case {
	const char *in;
	size_t len;       /* 0: strlen(in) */
	const char *want; /* substring of the message */
};

static const struct ok_case ok_cases[] = {
    {"a@b", {{NULL, "a@b"}}},
    {"john.doe@corp.example", {{NULL, "john.doe@corp.example"}}},
    {"Name <a@b>", {{"Name", "a@b"}}},
    {"  SOC Team   <soc@corp.example>  ", {{"SOC Team", "soc@corp.example"}}},
    {"\"Doe, Jane\" <jane@corp.example>", {{"Doe, Jane", "jane@corp.example"}}},
    {"\"Doe, Jane\" <jane@corp.example>, Bob <bob@corp.example>",
     {{"Doe, Jane", "jane@corp.example"}, {"Bob", "bob@corp.example"}}},
    {"\"a\\\"b\" <x@y>", {{"a\"b", "x@y"}}},
    {"\"back\\\\slash\" <x@y>", {{"back\\slash", "x@y"}}},
    {"\"\\J\\o\\e\" <x@y>", {{"Joe", "x@y"}}},
    {"John \"Q\" Doe <a@b>", {{"John Q Doe", "a@b"}}},
    {"John Q. Public <jqp@x.example>", {{"John Q. Public", "jqp@x.example"}}},
    {"\"\" <a@b>", {{NULL, "a@b"}}},
    {"<a@b>", {{NULL, "a@b"}}},
    {"< a@b >", {{NULL, "a@b"}}},
    {"a@b (Jane)", {{"Jane", "a@b"}}},
    {"(Jane) a@b", {{"Jane", "a@b"}}},
    {"a@b (Jane) (Doe)", {{"Jane Doe", "a@b"}}},
    {"a@b (Jane (work))", {{"Jane work", "a@b"}}},
    {"a@b (a \\) paren)", {{"a ) paren", "a@b"}}},
    {"Jane <a@b> (ignored)", {{"Jane", "a@b"}}},
    {"Jane (Manager) Doe <a@b>", {{"Jane Doe", "a@b"}}},
    {"a@b (x, y), c@d", {{"x, y", "a@b"}, {NULL, "c@d"}}},
    {"Team: a@b, c@d;", {{NULL, "a@b"}, {NULL, "c@d"}}},
    {"Team: a@b, Bob <c@d>; e@f", {{NULL, "a@b"}, {"Bob", "c@d"}, {NULL, "e@f"}}},
    {"\"The Team\": a@b;", {{NULL, "a@b"}}},
    {"Team: a@b, c@d", {{NULL, "a@b"}, {NULL, "c@d"}}},
    {"undisclosed-recipients:;", {{NULL, NULL}}},
    {"a@b, undisclosed-recipients:;, c@d", {{NULL, "a@b"}, {NULL, "c@d"}}},
    {"a@b; c@d", {{NULL, "a@b"}, {NULL, "c@d"}}},
    {"a@b;c@d;", {{NULL, "a@b"}, {NULL, "c@d"}}},
    {"a@b,,c@d", {{NULL, "a@b"}, {NULL, "c@d"}}},
    {"a@b, c@d,", {{NULL, "a@b"}, {NULL, "c@d"}}},
    {",a@b", {{NULL, "a@b"}}},
    {"", {{NULL, NULL}}},
    {"  , ; ,", {{NULL, NULL}}},
    {"\t a@b \t", {{NULL, "a@b"}}},
    /* RFC 5322 WSP inside a quoted display name or comment, as an
     * unfolded "Doe,<CRLF><TAB>Jane" leaves it (issue 8) */
    {"\"Doe,\tJane\" <jane@corp.example>", {{"Doe,\tJane", "jane@corp.example"}}},
    {"a@b (Jane\tDoe)", {{"Jane\tDoe", "a@b"}}},
    {"a @ b", {{NULL, "a@b"}}},
    {"John Doe<mailto:john@x.com>", {{"John Doe", "john@x.com"}}},
    {"<mailto:a@b>", {{NULL, "a@b"}}},
    {"Jane <MailTo:jane@x.com>", {{"Jane", "jane@x.com"}}},
    {"mailto:a@b", {{NULL, "a@b"}}},
    {"Jörg Müller <joerg@example.de>", {{"Jörg Müller", "joerg@example.de"}}},
    {"\"Müller, Jörg\" <j@x.de>", {{"Müller, Jörg", "j@x.de"}}},
    {"山田太郎 <taro@example.jp>", {{"山田太郎", "taro@example.jp"}}},
    {"jörg@müller.de", {{NULL, "jörg@müller.de"}}},
    {"用户@例子.广告", {{NULL, "用户@例子.广告"}}},
    {"a@[127.0.0.1]", {{NULL, "a@[127.0.0.1]"}}},
    {"Lab <root@[IPv6:2001:db8::1]>", {{"Lab", "root@[IPv6:2001:db8::1]"}}},
    {"\"john smith\"@x.example", {{NULL, "\"john smith\"@x.example"}}},
    {"\"a,b\"@x, c@d", {{NULL, "\"a,b\"@x"}, {NULL, "c@d"}}},
    {"\"a\\\"b\"@x", {{NULL, "\"a\\\"b\"@x"}}},
    {"Name <\"odd;local\"@x>", {{"Name", "\"odd;local\"@x"}}},
    {"first.o'brien+tag@sub.corp-example.com", {{NULL, "first.o'brien+tag@sub.corp-example.com"}}},
    {"!#$%&'*+-/=?^_`{|}~@x", {{NULL, "!#$%&'*+-/=?^_`{|}~@x"}}},
    {"A@B, a@b", {{NULL, "A@B"}, {NULL, "a@b"}}},
};

static const struct err_case err_cases[] = {
    {"bob at corp.example", 0,
     "\"bob at corp.example\" is not an e-mail address: it has no \"@\"; "
     "write it as name@domain"},
    {"bob", 0, "no \"@\""},
    {"a@b, bob", 0, "\"bob\" is not an e-mail address"},
    {"John Doe", 0, "no \"@\""},
    {"\"John Doe\"", 0, "no \"@\""},
    {"John Doe <john>", 0, "\"John Doe <john>\" is not an e-mail address: it has no \"@\""},
    {"@b", 0, "nothing before the \"@\""},
    {"Jane <@b>", 0, "nothing before the \"@\""},
    {"a@", 0, "no domain after the \"@\""},
    {"a@ , c@d", 0, "\"a@\" has no domain"},
    {"a@b@c", 0, "more than one \"@\""},
    {"\"a@b", 0, "quote (\") that is never closed"},
    {"\"Doe, Jane <jane@x>, bob@x", 0, "never closed"},
    {"Jane <a@b", 0, "\"<\" that is never closed"},
    {"Jane <a@b, c@d", 0, "never closed"},
    {"a@b>", 0, "\">\" without a matching \"<\""},
    {"a@b (Jane", 0, "\"(\" that is never closed"},
    {"a@b (Jane (work)", 0, "never closed"},
    {"a@b Jane)", 0, "\")\" without a matching \"(\""},
    {"a@[127.0.0.1", 0, "\"[\" that is never closed"},
    {"a@127.0.0.1]", 0, "\"]\" without a matching \"[\""},
    {"<>", 0, "no address between \"<\" and \">\""},
    {"Jane Doe <>", 0, "\"Jane Doe <>\" has no address"},
    {"<mailto:>", 0, "no address between"},
    {"john doe@x.example", 0,
     "\"john doe@x.example\" is not an e-mail address: it contains a space"},
    {"john@x .example", 0, "text after the address"},
    {"a@b c@d", 0, "text after the address; separate addresses with \",\""},
    {"Jane <a@b> Doe", 0, "text after \">\""},
    {"john@x.com <john@x.com>", 0, "put the name in quotes"},
    {"[External] Jane <j@x>", 0, "put the name in quotes"},
    {"a..b@c", 0, "two in a row"},
    {".a@c", 0, "start or end of the name"},
    {"a@c.", 0, "start or end of the domain"},
    {"a@.c", 0, "domain"},
    {"a@b..c", 0, "two in a row"},
    {"a@[]", 0, "bad domain literal"},
    {"a@[1 2]", 0, "bad domain literal"},
    {"a\\b@c", 0, "unexpected \"\\\""},
    {"(only a comment)", 0, "only a comment"},
    {"A: B: a@b;;", 0, "inside another group"},
    {": a@b;", 0, "a group needs a name"},
    {"a@b: c@d;", 0, "in the name before \":\""},
    {"<@r1,@r2:a@b>", 0, "source route"},
    {"<sip:a@b>", 0, "unexpected \":\""},
    {"a@b\r\nBcc: evil@x", 0, "line break (CR)"},
    {"a@b\nBcc: evil@x", 0, "\"a@b\\nBcc\" contains a line break (LF)"},
    {"Jane\r <a@b>", 0, "no CR or LF"},
    {"\"a\r\nb\" <a@b>", 0, "line break"},
    {"a@b (x\ny)", 0, "line break"},
    {"a@b\0c@d", 4, "NUL byte"},
    {"a\x01@b", 0, "control character 0x01"},
    {"a@b\x7f", 0, "control character 0x7f"},
    {"a@b\x1b[31m", 0, "\"a@b\\x1b[31m\" contains the control character 0x1b"},
    {"\"a\tb\"@c", 0, "TAB inside the quoted name"},
    {"a@[1.2.3.4\t]", 0, "TAB inside [...]"},
    {"\xff@x", 0, "not valid UTF-8"},
    {"\xc3@x", 0, "not valid UTF-8"},
    {"\xc0\xaf@x", 0, "not valid UTF-8"},     /* overlong '/' */
    {"\xed\xa0\x80@x", 0, "not valid UTF-8"}, /* surrogate */
    {"\xf4\x90\x80\x80@x", 0, "not valid UTF-8"},
};

/* TAP lines end at a newline and treat '#' specially: keep names tame. */
static char *case_name(const char *prefix, const char *in, size_t len)
{
	char *s = sc_asprintf("%s %.*s", prefix, (int)len, in);
	for (char *c = s; c && *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == '#')
			*c = '?';
	return s;
}

static size_t err_len(const struct err_case *c)
{
	return c->len ? c->len : strlen(c->in);
}

static void test_ok(void **state)
{
	const struct ok_case *c = *state;
	struct sc_address_list l;
	struct sc_error err = SC_ERROR_INIT;
	size_t n = 0;

	int rc = sc_address_list_parse(c->in, strlen(c->in), &l, &err);
	if (rc != SC_OK)
		print_error("unexpected error: %s\n", err.message);
	assert_int_equal(rc, SC_OK);
	assert_null(err.message);
	while (n < MAXPAIRS && c->want[n].addr)
		n++;
	assert_int_equal(l.n, n);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(l.v[i].addr, c->want[i].addr);
		if (c->want[i].display)
			assert_non_null(l.v[i].display);
		else
			assert_null(l.v[i].display);
		if (c->want[i].display)
			assert_string_equal(l.v[i].display, c->want[i].display);
	}
	sc_address_list_free(&l);
}

static void test_err(void **state)
{
	const struct err_case *c = *state;
	struct sc_address_list l;
	struct sc_error err = SC_ERROR_INIT;

	int rc = sc_address_list_parse(c->in, err_len(c), &l, &err);
	assert_int_equal(rc, SC_EINPUT);
	assert_int_equal(err.code, SC_EINPUT);
	assert_non_null(err.message);
	if (!strstr(err.message, c->want))
		print_error("message: %s\nwanted:  %s\n", err.message, c->want);
	assert_non_null(strstr(err.message, c->want));
	/* The message lands in JSON and logs: never a raw control byte. */
	for (const char *m = err.message; *m; m++)
		assert_false((unsigned char)*m < 0x20);
	assert_int_equal(l.n, 0);
	assert_null(l.v);
	sc_address_list_free(&l); /* allowed after failure, and harmless */
	sc_error_clear(&err);
}

/* The parser must honour `len` and never read past it. */
static void test_len_not_terminated(void **state)
{
	const char text[] = "a@b, c@d";
	char *copy = malloc(sizeof(text) - 1);
	struct sc_address_list l;
	struct sc_error err = SC_ERROR_INIT;

	(void)state;
	assert_non_null(copy);
	memcpy(copy, text, sizeof(text) - 1);
	assert_int_equal(sc_address_list_parse(copy, 3, &l, &err), SC_OK);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].addr, "a@b");
	sc_address_list_free(&l);
	assert_int_equal(sc_address_list_parse(copy, sizeof(text) - 1, &l, &err), SC_OK);
	assert_int_equal(l.n, 2);
	sc_address_list_free(&l);
	free(copy);
}

static void test_out_replaced(void **state)
{
	struct sc_address_list l;
	struct sc_error err = SC_ERROR_INIT;

	(void)state;
	assert_int_equal(sc_address_list_parse("a@b", 3, &l, &err), SC_OK);
	struct sc_address_list keep = l;
	/* `out` is overwritten, not appended to: the caller frees first. */
	assert_int_equal(sc_address_list_parse("c@d, e@f", 8, &l, &err), SC_OK);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].addr, "c@d");
	sc_address_list_free(&keep);
	sc_address_list_free(&l);
	sc_address_list_free(&l); /* twice is fine: free resets */
	assert_int_equal(sc_address_list_parse(NULL, 0, &l, &err), SC_OK);
	assert_int_equal(l.n, 0);
	assert_int_equal(sc_address_list_parse("bob", 3, &l, NULL), SC_EINPUT);
}

/* A long item is quoted in part, and the cut never splits a character. */
static void test_long_item_message(void **state)
{
	char *in = malloc(4000);
	struct sc_address_list l;
	struct sc_error err = SC_ERROR_INIT;

	(void)state;
	assert_non_null(in);
	for (size_t i = 0; i < 4000; i += 2)
		memcpy(in + i, "\xc3\xa9", 2); /* é */
	assert_int_equal(sc_address_list_parse(in, 4000, &l, &err), SC_EINPUT);
	assert_true(strlen(err.message) < 300);
	assert_non_null(strstr(err.message, "...\" is not an e-mail address"));
	assert_null(strstr(err.message, "\xc3\""));
	sc_error_clear(&err);
	free(in);
}

/* An earlier message in err is replaced, not leaked (ASan checks). */
static void test_error_replaced(void **state)
{
	struct sc_address_list l;
	struct sc_error err = SC_ERROR_INIT;

	(void)state;
	sc_error_set(&err, SC_EAUTH, "old");
	assert_int_equal(sc_address_list_parse("x", 1, &l, &err), SC_EINPUT);
	assert_non_null(strstr(err.message, "\"x\""));
	assert_int_equal(sc_address_list_parse("a@b", 3, &l, &err), SC_OK);
	assert_int_equal(err.code, SC_EINPUT); /* untouched on success */
	sc_address_list_free(&l);
	sc_error_clear(&err);
}

static void test_add_unique(void **state)
{
	struct sc_address_list l = {NULL, 0};
	struct sc_address a = {"Jane", "Jane@Corp.Example"};
	struct sc_address b = {NULL, "jane@corp.example"};
	struct sc_address c = {NULL, "jane@corp.example.org"};
	struct sc_address d = {NULL, "JÖRG@x"};
	struct sc_address e = {NULL, "jörg@x"};

	(void)state;
	assert_int_equal(sc_address_list_add_unique(&l, &a), SC_OK);
	assert_int_equal(sc_address_list_add_unique(&l, &b), SC_OK);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].display, "Jane");
	assert_ptr_not_equal(l.v[0].addr, a.addr); /* a copy */
	assert_int_equal(sc_address_list_add_unique(&l, &c), SC_OK);
	assert_int_equal(sc_address_list_add_unique(&l, &d), SC_OK);
	/* Only ASCII folds: Ö and ö are different bytes, kept apart. */
	assert_int_equal(sc_address_list_add_unique(&l, &e), SC_OK);
	assert_int_equal(l.n, 4);
	assert_null(l.v[1].display);
	sc_address_list_free(&l);
}

/* add_unique on top of a parsed list (the to+cc+bcc envelope). */
static void test_add_unique_after_parse(void **state)
{
	struct sc_address_list to, cc;
	struct sc_error err = SC_ERROR_INIT;
	const char *t = "a@x, b@x", *c = "B@X, c@x; a@x";

	(void)state;
	assert_int_equal(sc_address_list_parse(t, strlen(t), &to, &err), SC_OK);
	assert_int_equal(sc_address_list_parse(c, strlen(c), &cc, &err), SC_OK);
	for (size_t i = 0; i < cc.n; i++)
		assert_int_equal(sc_address_list_add_unique(&to, &cc.v[i]), SC_OK);
	assert_int_equal(to.n, 3);
	assert_string_equal(to.v[2].addr, "c@x");
	sc_address_list_free(&to);
	sc_address_list_free(&cc);
}

static void test_is_utf8(void **state)
{
	struct sc_address ascii = {"Jane", "jane@x"};
	struct sc_address noname = {NULL, "jane@x"};
	struct sc_address name8 = {"Jörg", "j@x"};
	struct sc_address addr8 = {NULL, "j@müller.de"};

	(void)state;
	assert_false(sc_address_is_utf8(&ascii));
	assert_false(sc_address_is_utf8(&noname));
	assert_true(sc_address_is_utf8(&name8));
	assert_true(sc_address_is_utf8(&addr8));
}

#define NOK (sizeof(ok_cases) / sizeof(ok_cases[0]))
#define NERR (sizeof(err_cases) / sizeof(err_cases[0]))

static const struct CMUnitTest fixed[] = {
    cmocka_unit_test(test_len_not_terminated),
    cmocka_unit_test(test_out_replaced),
    cmocka_unit_test(test_long_item_message),
    cmocka_unit_test(test_error_replaced),
    cmocka_unit_test(test_add_unique),
    cmocka_unit_test(test_add_unique_after_parse),
    cmocka_unit_test(test_is_utf8),
};

#define NFIXED (sizeof(fixed) / sizeof(fixed[0]))

int main(void)
{
	/* Sized at compile time so cmocka_run_group_tests_name can count. */
	static struct CMUnitTest tests[NOK + NERR + NFIXED];
	size_t k = 0;

	for (size_t i = 0; i < NOK; i++, k++)
		tests[k] =
		    (struct CMUnitTest){case_name("parses", ok_cases[i].in, strlen(ok_cases[i].in)),
		                        test_ok, NULL, NULL, (void *)&ok_cases[i]};
	for (size_t i = 0; i < NERR; i++, k++)
		tests[k] = (struct CMUnitTest){
		    case_name("rejects", err_cases[i].in, err_len(&err_cases[i])), test_err, NULL,
		    NULL, (void *)&err_cases[i]};
	for (size_t i = 0; i < NFIXED; i++, k++)
		tests[k] = fixed[i];
	int rc = cmocka_run_group_tests_name("address", tests, NULL, NULL);
	for (size_t i = 0; i < NOK + NERR; i++)
		free((char *)tests[i].name);
	return rc;
}
