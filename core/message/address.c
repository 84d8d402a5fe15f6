/* RFC 5322 address lists, as typed by people into to/cc/bcc/from.
 *
 * The input is untrusted (playbooks paste it from alerts), so the parser
 * is strict where a mistake would send mail somewhere else or inject a
 * header, and lenient only where the intent is unambiguous.
 *
 * Rules, in the order they apply:
 *
 *  1. Bytes. The text must be valid UTF-8. CR, LF, NUL and every other
 *     control character (0x00-0x1F, 0x7F) is rejected wherever it is:
 *     a line break in an address is a header-injection attempt or a
 *     paste accident, never folding. TAB counts as a space between
 *     words, is kept inside quotes and comments (RFC 5322 WSP), and is
 *     rejected inside [literals].
 *  2. Tokens. Words (atext, '.', and any UTF-8), "quoted strings" with
 *     \-escapes, (comments) that nest, [domain literals], and the
 *     specials < > @ : ; , each on its own. Comments count as
 *     whitespace everywhere. Unclosed quotes, comments, literals and
 *     '<', and a stray ')' ']' '>', are errors.
 *  3. Items. The list splits at ',' and ';' outside quotes, comments,
 *     literals and <...>. Empty items (",,", a trailing ',') are skipped.
 *     "Name: ...;" opens a group: its members are returned flat, its name
 *     is dropped, and the next ';' closes it (a missing final ';' is
 *     accepted). Groups do not nest and need a name; "undisclosed:;"
 *     yields nothing.
 *  4. An item is `addr-spec` or `[display-name] <addr-spec>`.
 *     - The display name is words and quoted strings joined by single
 *       spaces, quotes removed, \-escapes undone; none (or "") is NULL.
 *       '@' or '[' in an unquoted name is an error (quote the name), as
 *       it usually means two addresses missing a comma.
 *     - Inside <...>, a leading "mailto:" (any case) is dropped: the
 *       SOAR form `John Doe<mailto:john@x.com>` is John Doe <john@x.com>.
 *       "<>" is an error: the null sender is never a recipient.
 *     - A bare addr-spec takes its comments, joined by spaces and with
 *       nested parentheses removed, as display name (as Python does);
 *       after <...> comments are dropped.
 *     - Nothing but comments may follow the address in the item.
 *  5. addr-spec = local "@" domain, whitespace allowed only around '@'.
 *     local is one dot-atom (no leading, trailing or double '.') or one
 *     quoted string, kept as written, quotes included. domain is a
 *     dot-atom (UTF-8 allowed, for SMTPUTF8) or a [literal] of printable
 *     ASCII without spaces. "john doe@x" is an error, not "john doe".
 *
 * Messages quote the offending item (trimmed, control characters
 * escaped, cut at 80 bytes) and say what to write instead; the caller
 * prefixes the parameter name.
 */
#include "core.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Every copy out of the input goes through the host API's struct sc_buf,
 * so no fixed buffer ever meets user data. */

/* realloc of an array, refusing n * size overflow. */
static void *grow(void *v, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	return realloc(v, n * size);
}

/* ------------------------------------------------------------------ */
/* Characters */

/* ASCII only: strcasecmp would fold bytes >= 0x80 in some locales, and
 * two UTF-8 addresses differing there are different mailboxes. */
static int ascii_caseeq(const char *a, size_t an, const char *b, size_t bn)
{
	if (an != bn)
		return 0;
	for (size_t i = 0; i < an; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (x >= 'A' && x <= 'Z')
			x += 'a' - 'A';
		if (y >= 'A' && y <= 'Z')
			y += 'a' - 'A';
		if (x != y)
			return 0;
	}
	return 1;
}

static int is_ws(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static int is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

static int is_special(unsigned char c)
{
	return c != '\0' && strchr("()<>[]:;@\\,\"", c) != NULL;
}

/* ------------------------------------------------------------------ */
/* Parser state */

enum tok_type { T_WORD, T_QSTR, T_COMMENT, T_DLIT, T_CHAR };

struct tok {
	enum tok_type type;
	size_t off, len; /* raw span in the input, delimiters included */
};

struct parser {
	const char *s;
	size_t len;
	struct tok *t;
	size_t nt, tcap;
	struct sc_address *v; /* results, `cap` allocated */
	size_t n, cap;
	struct sc_error *err;
};

static int nomem(struct parser *p)
{
	return sc_error_set(p->err, SC_ENOMEM, "out of memory while parsing addresses");
}

static char tok_ch(const struct parser *p, size_t i)
{
	return p->t[i].type == T_CHAR ? p->s[p->t[i].off] : 0;
}

/* ------------------------------------------------------------------ */
/* Error messages */

/* The item around `pos`: the same top-level ',' ';' ':' split that the
 * parser uses, recomputed from the raw text so that errors found while
 * tokenising can quote their item too. */
static void item_span(const struct parser *p, size_t pos, size_t *start, size_t *end)
{
	int quote = 0, angle = 0, lit = 0;
	size_t depth = 0;

	*start = 0;
	*end = p->len;
	for (size_t i = 0; i < p->len; i++) {
		char c = p->s[i];
		if ((quote || depth) && c == '\\') {
			i++;
		} else if (quote) {
			quote = c != '"';
		} else if (depth) {
			if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
		} else if (lit) {
			lit = c != ']';
		} else if (c == '"' || c == '(' || c == '[') {
			quote = c == '"';
			depth = c == '(';
			lit = c == '[';
		} else if (c == '<' || c == '>') {
			angle = c == '<';
		} else if (!angle && (c == ',' || c == ';' || c == ':')) {
			if (i >= pos) {
				*end = i;
				return;
			}
			*start = i + 1;
		}
	}
}

/* Item text for a message: trimmed, control bytes and broken UTF-8
 * escaped (the message ends up in JSON and in logs), cut at 80 bytes. */
static int show_item(const struct parser *p, size_t pos, struct sc_buf *b)
{
	size_t a, z;
	item_span(p, pos, &a, &z);
	while (a < z && is_ws((unsigned char)p->s[a]))
		a++;
	while (z > a && is_ws((unsigned char)p->s[z - 1]))
		z--;
	for (size_t i = a; i < z;) {
		const unsigned char *c = (const unsigned char *)p->s + i;
		size_t n = sc_utf8_len(c, z - i);
		if (b->len >= 80)
			return sc_buf_add(b, "...", 3);
		if (n == 1 && !is_ctl(*c)) {
			if (sc_buf_add(b, (const char *)c, 1))
				return -1;
		} else if (n > 1) {
			if (sc_buf_add(b, (const char *)c, n))
				return -1;
		} else {
			static const char hex[] = "0123456789abcdef";
			char e[4] = {'\\', 'x', hex[*c >> 4], hex[*c & 15]};
			if (*c == '\r' || *c == '\n' || *c == '\t')
				e[1] = *c == '\r' ? 'r' : *c == '\n' ? 'n' : 't';
			if (sc_buf_add(b, e, e[1] == 'x' ? 4 : 2))
				return -1;
			n = 1;
		}
		i += n;
	}
	return 0;
}

/* SC_EINPUT: "\"<item at pos>\" <what is wrong; what to write>". */
static int fail(struct parser *p, size_t pos, const char *fmt, ...) SC_PRINTF(3, 4);
static int fail(struct parser *p, size_t pos, const char *fmt, ...)
{
	struct sc_buf item = {0};
	va_list ap;

	if (show_item(p, pos, &item)) {
		free(item.p);
		return nomem(p);
	}
	va_start(ap, fmt);
	char *why = core_vasprintf(fmt, ap);
	va_end(ap);
	if (!why) {
		free(item.p);
		return nomem(p);
	}
	sc_error_set(p->err, SC_EINPUT, "\"%s\" %s", item.p ? item.p : "", why);
	free(item.p);
	free(why);
	return p->err && !p->err->message ? nomem(p) : SC_EINPUT;
}

static int fail_unexpected(struct parser *p, size_t i, const char *where)
{
	const struct tok *t = &p->t[i];
	int n = t->len > 20 ? 20 : (int)t->len;
	return fail(p, t->off, "is not a valid address: unexpected \"%.*s\"%s%s", n, p->s + t->off,
	            *where ? " " : "", where);
}

/* ------------------------------------------------------------------ */
/* Bytes (rule 1) */

static int check_bytes(struct parser *p)
{
	for (size_t i = 0; i < p->len;) {
		unsigned char c = (unsigned char)p->s[i];
		size_t n = sc_utf8_len((const unsigned char *)p->s + i, p->len - i);
		if (c == '\r' || c == '\n')
			return fail(p, i,
			            "contains a line break (%s); an address "
			            "must be on one line, with no CR or LF",
			            c == '\r' ? "CR" : "LF");
		if (c == '\0')
			return fail(p, i, "contains a NUL byte; remove it");
		if (is_ctl(c) && c != '\t')
			return fail(p, i,
			            "contains the control character 0x%02x; "
			            "remove it",
			            c);
		if (n == 0)
			return fail(p, i,
			            "is not valid UTF-8 (byte 0x%02x); send "
			            "the text as UTF-8",
			            c);
		i += n;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Tokens (rule 2) */

static int push_tok(struct parser *p, enum tok_type type, size_t off, size_t len)
{
	if (p->nt == p->tcap) {
		size_t cap = p->tcap ? p->tcap * 2 : 16;
		struct tok *t = grow(p->t, cap, sizeof(*t));
		if (!t)
			return nomem(p);
		p->t = t;
		p->tcap = cap;
	}
	p->t[p->nt++] = (struct tok){type, off, len};
	return 0;
}

/* End (one past the closing delimiter) of the quoted string, comment or
 * literal opening at `i`, or 0 when it never closes. A TAB inside a
 * quoted string or comment is kept: it is WSP, which RFC 5322 §3.2.4 and
 * §3.2.2 allow there, and what an unfolded "Doe,<CRLF><TAB>Jane" leaves
 * behind. Inside a [literal] it is refused (an address, not text). */
static size_t scan_delimited(struct parser *p, size_t i, int *tab)
{
	char open = p->s[i], close = open == '(' ? ')' : open == '[' ? ']' : '"';
	size_t depth = 1;

	*tab = 0;
	for (i++; i < p->len; i++) {
		char c = p->s[i];
		if (c == '\t' && open == '[') {
			*tab = 1;
			return i;
		}
		if (c == '\\' && open != '[') {
			if (++i == p->len)
				break;
		} else if (c == close && --depth == 0) {
			return i + 1;
		} else if (c == '(' && open == '(') {
			depth++;
		}
	}
	return 0;
}

static int lex_delimited(struct parser *p, size_t *i)
{
	static const char *const what[] = {"a quote (\")", "a \"(\"", "a \"[\""};
	char c = p->s[*i];
	int kind = c == '"' ? 0 : c == '(' ? 1 : 2;
	int tab;
	size_t end = scan_delimited(p, *i, &tab);

	if (tab)
		return fail(p, end, "contains a TAB inside [...]; use a space");
	if (!end)
		return fail(p, *i,
		            "has %s that is never closed; close it or "
		            "remove it",
		            what[kind]);
	int rc = push_tok(p, kind == 0 ? T_QSTR : kind == 1 ? T_COMMENT : T_DLIT, *i, end - *i);
	*i = end;
	return rc;
}

static int lex(struct parser *p)
{
	int rc = 0;

	for (size_t i = 0; i < p->len && !rc;) {
		unsigned char c = (unsigned char)p->s[i];
		size_t j = i + 1;
		if (is_ws(c)) {
			i++;
			continue;
		}
		if (c == '"' || c == '(' || c == '[') {
			rc = lex_delimited(p, &i);
			continue;
		}
		if (c == ')' || c == ']')
			return fail(p, i,
			            "has a \"%c\" without a matching \"%c\"; "
			            "remove it",
			            c, c == ')' ? '(' : '[');
		if (!is_special(c))
			while (j < p->len && !is_ws((unsigned char)p->s[j]) &&
			       !is_special((unsigned char)p->s[j]))
				j++;
		rc = push_tok(p, is_special(c) ? T_CHAR : T_WORD, i, j - i);
		i = j;
	}
	return rc;
}

/* ------------------------------------------------------------------ */
/* Display names and comments (rule 4) */

/* Append the inside of a quoted string or comment with \-escapes undone;
 * in a comment the parentheses of nested comments are dropped, which is
 * what Python's email.utils does with "(Jane (work))" -> "Jane work". */
static int add_unquoted(struct sc_buf *b, const char *s, size_t n, int comment)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n)
			i++;
		else if (comment && (s[i] == '(' || s[i] == ')'))
			continue;
		if (sc_buf_add(b, s + i, 1))
			return -1;
	}
	return 0;
}

/* Join the words and quoted strings in [i, j), or with `comments` the
 * comments instead, by single spaces (words as is,
 * quoted strings and comments unquoted). *out is NULL when empty. */
static int join_tokens(struct parser *p, size_t i, size_t j, int comments, char **out)
{
	struct sc_buf b = {0};
	int first = 1;

	*out = NULL;
	for (; i < j; i++) {
		const struct tok *t = &p->t[i];
		if ((t->type == T_COMMENT) != comments)
			continue;
		if ((!first && sc_buf_add(&b, " ", 1)) ||
		    (t->type == T_WORD
		         ? sc_buf_add(&b, p->s + t->off, t->len)
		         : add_unquoted(&b, p->s + t->off + 1, t->len - 2, comments))) {
			free(b.p);
			return nomem(p);
		}
		first = 0;
	}
	if (b.len)
		*out = sc_buf_take(&b);
	free(b.p);
	return 0;
}

/* A display name or group name: words and quoted strings only. */
static int check_phrase(struct parser *p, size_t i, size_t j, const char *before)
{
	for (; i < j; i++) {
		enum tok_type ty = p->t[i].type;
		if (ty == T_WORD || ty == T_QSTR || ty == T_COMMENT)
			continue;
		if (tok_ch(p, i) == '@' || ty == T_DLIT)
			return fail(p, p->t[i].off,
			            "has \"%c\" in the name before "
			            "\"%s\"; put the name in quotes (\"Name\" "
			            "<name@domain>) or add the missing \",\"",
			            p->s[p->t[i].off], before);
		return fail_unexpected(p, i, "in the name");
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* addr-spec (rule 5) */

static int dot_atom_ok(const char *s, size_t n)
{
	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (size_t i = 1; i < n; i++)
		if (s[i] == '.' && s[i - 1] == '.')
			return 0;
	return 1;
}

static int literal_ok(const char *s, size_t n)
{
	if (n < 3)
		return 0;
	for (size_t i = 1; i + 1 < n; i++)
		if (s[i] == ' ' || s[i] == '[' || s[i] == '\\')
			return 0;
	return 1;
}

/* Next token in [i, j) that is not a comment, or j. */
static size_t next_tok(const struct parser *p, size_t i, size_t j)
{
	while (i < j && p->t[i].type == T_COMMENT)
		i++;
	return i;
}

static int check_local(struct parser *p, size_t i, size_t at)
{
	size_t first = next_tok(p, i, at), second;
	const struct tok *t = &p->t[first];

	if (first == at)
		return fail(p, p->t[at].off,
		            "has nothing before the \"@\"; "
		            "write it as name@domain");
	second = next_tok(p, first + 1, at);
	if (second < at && p->t[second].type != T_WORD && p->t[second].type != T_QSTR)
		return fail_unexpected(p, second, "before the \"@\"");
	if (second < at)
		return fail(p, t->off,
		            "is not an e-mail address: it contains "
		            "a space; remove it, or write Name <name@domain>");
	if (t->type == T_QSTR && memchr(p->s + t->off, '\t', t->len))
		return fail(p, t->off,
		            "contains a TAB inside the quoted name "
		            "before the \"@\", which SMTP cannot carry (RFC 5321 "
		            "qtextSMTP); use a space");
	if (t->type == T_QSTR)
		return 0;
	if (t->type != T_WORD)
		return fail_unexpected(p, first, "before the \"@\"");
	if (!dot_atom_ok(p->s + t->off, t->len))
		return fail(p, t->off,
		            "has a \".\" at the start or end of the "
		            "name, or two in a row; fix the address");
	return 0;
}

static int fail_two_at(struct parser *p, size_t i)
{
	return fail(p, p->t[i].off,
	            "has more than one \"@\"; write one "
	            "address as name@domain, and separate addresses with \",\"");
}

static int check_domain(struct parser *p, size_t at, size_t d, size_t j)
{
	const struct tok *t = &p->t[d];

	if (d == j)
		return fail(p, p->t[at].off,
		            "has no domain after the \"@\"; "
		            "write it as name@domain");
	if (tok_ch(p, d) == '@')
		return fail_two_at(p, d);
	if (t->type == T_DLIT) {
		if (!literal_ok(p->s + t->off, t->len))
			return fail(p, t->off,
			            "has a bad domain literal; write "
			            "an IP address as name@[192.0.2.1]");
		return 0;
	}
	if (t->type != T_WORD)
		return fail_unexpected(p, d, "after the \"@\"");
	if (!dot_atom_ok(p->s + t->off, t->len))
		return fail(p, t->off,
		            "has a \".\" at the start or end of the "
		            "domain, or two in a row; fix the address");
	return 0;
}

/* The tokens [i, j) must be exactly local "@" domain (plus comments);
 * on success *addr is the addr-spec as written, without whitespace. */
static int parse_addr_spec(struct parser *p, size_t i, size_t j, char **addr)
{
	size_t at = i, d, rest;
	int rc;

	*addr = NULL;
	while (at < j && tok_ch(p, at) != '@')
		at++;
	if (at == j)
		return fail(p, p->t[i].off,
		            "is not an e-mail address: it has "
		            "no \"@\"; write it as name@domain");
	d = next_tok(p, at + 1, j);
	if ((rc = check_local(p, i, at)) || (rc = check_domain(p, at, d, j)))
		return rc;
	rest = next_tok(p, d + 1, j);
	if (rest < j && tok_ch(p, rest) == '@')
		return fail_two_at(p, rest);
	if (rest < j && p->t[rest].type != T_WORD && p->t[rest].type != T_QSTR)
		return fail_unexpected(p, rest, "after the address");
	if (rest < j)
		return fail(p, p->t[rest].off,
		            "has text after the address; "
		            "separate addresses with \",\"");

	const struct tok *l = &p->t[next_tok(p, i, at)], *r = &p->t[d];
	*addr = sc_asprintf("%.*s@%.*s", (int)l->len, p->s + l->off, (int)r->len, p->s + r->off);
	return *addr ? 0 : nomem(p);
}

/* ------------------------------------------------------------------ */
/* Items (rules 3 and 4) */

static int push_addr(struct parser *p, char *display, char *addr)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 4;
		struct sc_address *v = grow(p->v, cap, sizeof(*v));
		if (!v) {
			free(display);
			free(addr);
			return nomem(p);
		}
		p->v = v;
		p->cap = cap;
	}
	p->v[p->n++] = (struct sc_address){display, addr};
	return 0;
}

static int is_mailto(const struct parser *p, size_t i)
{
	const struct tok *t = &p->t[i];
	return t->type == T_WORD && ascii_caseeq(p->s + t->off, t->len, "mailto", 6);
}

static int has_char(const struct parser *p, size_t i, size_t j, char c)
{
	for (; i < j; i++)
		if (tok_ch(p, i) == c)
			return 1;
	return 0;
}

/* `[phrase] < [mailto:] addr-spec > [comments]`, '<' at index k. */
static int parse_angle_item(struct parser *p, size_t i, size_t k, size_t j)
{
	size_t m = k + 1, a;
	char *display = NULL, *addr = NULL;
	int rc = check_phrase(p, i, k, "<");

	if (rc)
		return rc;
	while (m < j && tok_ch(p, m) != '>' && tok_ch(p, m) != '<')
		m++;
	if (m == j || tok_ch(p, m) == '<')
		return fail(p, p->t[k].off,
		            "has a \"<\" that is never closed; "
		            "write it as Name <name@domain>");
	a = next_tok(p, k + 1, m);
	if (a + 1 < m && is_mailto(p, a) && tok_ch(p, a + 1) == ':')
		a = next_tok(p, a + 2, m);
	if (a < m && tok_ch(p, a) == '@' && has_char(p, a, m, ':'))
		return fail(p, p->t[a].off,
		            "has an obsolete source route "
		            "(<@host:...>); write only <name@domain>");
	if (a == m)
		return fail(p, p->t[k].off,
		            "has no address between \"<\" and "
		            "\">\"; write it as Name <name@domain>");
	if ((rc = parse_addr_spec(p, a, m, &addr)))
		return rc;
	size_t rest = next_tok(p, m + 1, j);
	if (rest < j) {
		free(addr);
		return fail(p, p->t[rest].off,
		            "has text after \">\"; separate "
		            "addresses with \",\"");
	}
	if ((rc = join_tokens(p, i, k, 0, &display))) {
		free(addr);
		return rc;
	}
	return push_addr(p, display, addr);
}

/* One item, tokens [i, j), already split off at a ',' or ';'. */
static int parse_item(struct parser *p, size_t i, size_t j)
{
	size_t first = next_tok(p, i, j), k;
	char *display = NULL, *addr = NULL;
	int rc;

	if (first == j) {
		if (i == j)
			return 0; /* empty item: ",," or a trailing ',' */
		return fail(p, p->t[i].off,
		            "is only a comment, not an e-mail "
		            "address; write it as name@domain");
	}
	for (k = first; k < j; k++) {
		if (tok_ch(p, k) == '<')
			return parse_angle_item(p, i, k, j);
		if (tok_ch(p, k) == '>')
			return fail(p, p->t[k].off,
			            "has a \">\" without a "
			            "matching \"<\"; write it as Name "
			            "<name@domain>");
	}
	if ((rc = parse_addr_spec(p, first, j, &addr)))
		return rc;
	if ((rc = join_tokens(p, i, j, 1, &display))) {
		free(addr);
		return rc;
	}
	return push_addr(p, display, addr);
}

/* "name:" opening a group; the tokens [i, j) are the name, j the ':'. */
static int open_group(struct parser *p, size_t i, size_t j, int *in_group)
{
	if (*in_group)
		return fail(p, p->t[j].off,
		            "starts a group (\":\") inside another "
		            "group; close the first group with \";\"");
	if (next_tok(p, i, j) == j)
		return sc_error_set(p->err, SC_EINPUT,
		                    "a group needs a name "
		                    "before its \":\"; write it as Team: "
		                    "a@example.com, b@example.com;");
	int rc = check_phrase(p, i, j, ":");
	if (!rc)
		*in_group = 1;
	return rc;
}

/* Index of the ',' ';' or ':' that ends the item starting at i (outside
 * <...>, where "mailto:" lives), or nt. */
static size_t item_end(const struct parser *p, size_t i)
{
	int angle = 0;
	for (; i < p->nt; i++) {
		char c = tok_ch(p, i);
		if (c == '<' || c == '>')
			angle = c == '<';
		else if (!angle && (c == ',' || c == ';' || c == ':'))
			break;
	}
	return i;
}

static int parse_list(struct parser *p)
{
	int in_group = 0, rc = 0;

	for (size_t i = 0; i < p->nt && !rc;) {
		size_t j = item_end(p, i);
		char sep = j < p->nt ? tok_ch(p, j) : 0;
		if (sep == ':') {
			rc = open_group(p, i, j, &in_group);
		} else {
			rc = parse_item(p, i, j);
			if (sep == ';')
				in_group = 0;
		}
		i = j + 1;
	}
	return rc;
}

/* ------------------------------------------------------------------ */
/* Public API */

int sc_address_list_parse(const char *text, size_t len, struct sc_address_list *out,
                          struct sc_error *err)
{
	struct parser p = {.s = text ? text : "", .len = text ? len : 0, .err = err};
	int rc;

	out->v = NULL;
	out->n = 0;
	rc = check_bytes(&p);
	if (!rc)
		rc = lex(&p);
	if (!rc)
		rc = parse_list(&p);
	free(p.t);
	out->v = p.v;
	out->n = p.n;
	if (rc)
		sc_address_list_free(out);
	return rc;
}

void sc_address_list_free(struct sc_address_list *list)
{
	if (!list)
		return;
	for (size_t i = 0; i < list->n; i++) {
		free(list->v[i].display);
		free(list->v[i].addr);
	}
	free(list->v);
	list->v = NULL;
	list->n = 0;
}

int sc_address_list_add_unique(struct sc_address_list *list, const struct sc_address *a)
{
	for (size_t i = 0; i < list->n; i++)
		if (ascii_caseeq(list->v[i].addr, strlen(list->v[i].addr), a->addr,
		                 strlen(a->addr)))
			return SC_OK;
	/* One element at a time: lists may come from elsewhere, so their
	 * allocation size is only known to be n. */
	struct sc_address *v = grow(list->v, list->n + 1, sizeof(*v));
	if (!v)
		return SC_ENOMEM;
	list->v = v;
	char *addr = strdup(a->addr);
	char *display = a->display ? strdup(a->display) : NULL;
	if (!addr || (a->display && !display)) {
		free(addr);
		free(display);
		return SC_ENOMEM;
	}
	list->v[list->n++] = (struct sc_address){display, addr};
	return SC_OK;
}

int sc_address_is_utf8(const struct sc_address *a)
{
	return sc_str_8bit(a->addr) || sc_str_8bit(a->display);
}
