/* The SMTP command-line parser (RFC 5321 §4.1, RFC 1870 SIZE, RFC 6152
 * 8BITMIME, RFC 6531 SMTPUTF8). It decides only what a line says; what
 * is allowed when is the session's business (session.c). */
#include "smtp_cmd.h"
#include "utf8.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	enum serve_verb verb;
} verbs[] = {
    {"HELO", SV_HELO}, {"EHLO", SV_EHLO}, {"MAIL", SV_MAIL}, {"RCPT", SV_RCPT},
    {"DATA", SV_DATA}, {"RSET", SV_RSET}, {"NOOP", SV_NOOP}, {"QUIT", SV_QUIT},
    {"VRFY", SV_VRFY}, {"EXPN", SV_EXPN}, {"HELP", SV_HELP}, {"STARTTLS", SV_STARTTLS},
    {"AUTH", SV_AUTH}, {"BDAT", SV_BDAT},
};

void serve_cmd_clear(struct serve_cmd *cmd)
{
	free(cmd->path);
	memset(cmd, 0, sizeof *cmd);
}

static int fail(const char **why, int code, const char *text)
{
	*why = text;
	return code;
}

static int is_alnum(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* The <path> at s[0..n): sets cmd->path; *used = bytes taken. */
static int parse_path(const char *s, size_t n, int is_mail, struct serve_cmd *cmd, size_t *used,
                      const char **why)
{
	if (n == 0 || s[0] != '<')
		return fail(why, 501, "5.5.4 Syntax error: the address must be in <>");
	size_t i = 1, start = 1;
	int quoted = 0, at = 0;
	if (i < n && s[i] == '@') { /* source route <@a,@b:user@d>: ignored (§4.1.2) */
		while (i < n && s[i] != ':' && s[i] != '>')
			i++;
		if (i >= n || s[i] != ':')
			return fail(why, 501,
			            "5.1.3 Syntax error: bad source route in the address");
		start = ++i;
	}
	for (; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (quoted) {
			if (c == '\\' && i + 1 < n && s[i + 1] != '\0')
				i++;
			else if (c == '"')
				quoted = 0;
			else if (c < 0x20 || c == 0x7f)
				return fail(why, 501,
				            "5.1.3 Syntax error: control character in the address");
			continue;
		}
		if (c == '>')
			break;
		if (c == '"')
			quoted = 1;
		else if (c <= 0x20 || c == 0x7f || c == '<')
			return fail(
			    why, 501,
			    "5.1.3 Syntax error: space or control character in the address");
		else if (c == '@')
			at = (int)(i - start) + 1;
		if (c >= 0x80)
			cmd->non_ascii = 1;
	}
	if (i >= n)
		return fail(why, 501, "5.5.4 Syntax error: the address has no closing >");
	size_t alen = i - start;
	if (i + 1 > SERVE_PATH_MAX)
		return fail(why, 501, "5.1.3 The address is longer than 256 octets");
	if (alen == 0 && !is_mail)
		return fail(why, 501, "5.1.3 An empty recipient <> is not allowed");
	/* SMTPUTF8 (RFC 6531) allows UTF-8, not any octet: sinks put the
	 * address into JSON and index lines, which must stay valid UTF-8 */
	if (cmd->non_ascii && !core_utf8_valid(s + start, alen, NULL))
		return fail(why, 553, "5.6.7 The address is not valid UTF-8");
	if (alen && !(at > 1 && (size_t)at < alen) &&
	    !(!is_mail && alen == 10 && strncasecmp(s + start, "postmaster", 10) == 0))
		return fail(why, 501, "5.1.3 The address must be local-part@domain");
	cmd->path = malloc(alen + 1);
	if (!cmd->path)
		return fail(why, 451, "4.3.0 Out of memory");
	memcpy(cmd->path, s + start, alen);
	cmd->path[alen] = '\0';
	*used = i + 1;
	return 0;
}

/* One "KEYWORD[=value]" of MAIL FROM. */
static int mail_param(const char *k, size_t klen, const char *v, size_t vlen, int has_v,
                      struct serve_cmd *cmd, const char **why)
{
	if (klen == 4 && strncasecmp(k, "SIZE", 4) == 0) {
		if (!has_v || vlen == 0 || vlen > 20)
			return fail(why, 501, "5.5.4 Syntax error: SIZE=<digits>");
		unsigned long long x = 0;
		for (size_t i = 0; i < vlen; i++) {
			if (v[i] < '0' || v[i] > '9')
				return fail(why, 501, "5.5.4 Syntax error: SIZE=<digits>");
			unsigned d = (unsigned)(v[i] - '0');
			x = x > (~0ULL - d) / 10 ? ~0ULL : x * 10 + d;
		}
		cmd->has_size = 1;
		cmd->size = x;
		return 0;
	}
	if (klen == 4 && strncasecmp(k, "BODY", 4) == 0) {
		if (has_v && vlen == 4 && strncasecmp(v, "7BIT", 4) == 0)
			cmd->body = SB_7BIT;
		else if (has_v && vlen == 8 && strncasecmp(v, "8BITMIME", 8) == 0)
			cmd->body = SB_8BITMIME;
		else
			return fail(why, 555,
			            "5.5.4 Unsupported BODY type (7BIT and 8BITMIME are)");
		return 0;
	}
	if (klen == 8 && strncasecmp(k, "SMTPUTF8", 8) == 0) {
		if (has_v)
			return fail(why, 501, "5.5.4 Syntax error: SMTPUTF8 takes no value");
		cmd->smtputf8 = 1;
		return 0;
	}
	if (klen == 4 && strncasecmp(k, "AUTH", 4) == 0 && has_v)
		return 0; /* RFC 4954 §5: a relay's claim; nothing to do with it here */
	return fail(why, 555, "5.5.4 Unsupported MAIL parameter");
}

static int parse_params(const char *s, size_t n, int is_mail, struct serve_cmd *cmd,
                        const char **why)
{
	size_t i = 0;
	while (i < n) {
		if (s[i] != ' ')
			return fail(why, 501, "5.5.4 Syntax error after the address");
		while (i < n && s[i] == ' ')
			i++;
		if (i == n)
			break;
		size_t k = i;
		while (i < n && (is_alnum((unsigned char)s[i]) || (i > k && s[i] == '-')))
			i++;
		size_t klen = i - k, v = i, vlen = 0;
		int has_v = i < n && s[i] == '=';
		if (has_v) {
			v = ++i;
			while (i < n && (unsigned char)s[i] > 0x20 && (unsigned char)s[i] < 0x7f &&
			       s[i] != '=')
				i++;
			vlen = i - v;
		}
		if (klen == 0 || (i < n && s[i] != ' '))
			return fail(why, 501, "5.5.4 Syntax error in a parameter");
		if (!is_mail)
			return fail(why, 555, "5.5.4 Unsupported RCPT parameter");
		int rc = mail_param(s + k, klen, s + v, vlen, has_v, cmd, why);
		if (rc)
			return rc;
	}
	return 0;
}

static int parse_mail_rcpt(struct serve_cmd *cmd, const char **why)
{
	int is_mail = cmd->verb == SV_MAIL;
	const char *kw = is_mail ? "FROM:" : "TO:";
	size_t kwl = strlen(kw);
	const char *s = cmd->arg;
	size_t n = cmd->arg_len;
	if (n < kwl || strncasecmp(s, kw, kwl) != 0)
		return fail(why, 501,
		            is_mail ? "5.5.4 Syntax: MAIL FROM:<address>"
		                    : "5.5.4 Syntax: RCPT TO:<address>");
	s += kwl;
	n -= kwl;
	while (n && *s == ' ') { /* "MAIL FROM: <a>": common, harmless */
		s++;
		n--;
	}
	size_t used = 0;
	int rc = parse_path(s, n, is_mail, cmd, &used, why);
	if (!rc)
		rc = parse_params(s + used, n - used, is_mail, cmd, why);
	return rc;
}

int serve_cmd_parse(const char *line, size_t len, struct serve_cmd *cmd, const char **why)
{
	memset(cmd, 0, sizeof *cmd);
	cmd->arg = "";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return fail(why, 500,
			            "5.5.2 Syntax error: control character in the command");
	}
	size_t v = 0;
	while (v < len && line[v] != ' ')
		v++;
	for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
		if (strlen(verbs[i].name) == v && strncasecmp(line, verbs[i].name, v) == 0)
			cmd->verb = verbs[i].verb;
	if (cmd->verb == SV_UNKNOWN)
		return fail(why, 500, "5.5.2 Command not recognised");
	if (v < len) {
		cmd->arg = line + v + 1;
		cmd->arg_len = len - v - 1;
	}
	while (cmd->arg_len && cmd->arg[cmd->arg_len - 1] == ' ')
		cmd->arg_len--; /* trailing blanks: lenient, as Postfix is */
	switch (cmd->verb) {
	case SV_HELO:
	case SV_EHLO:
		if (!cmd->arg_len)
			return fail(why, 501, "5.5.4 Syntax: EHLO domain");
		return 0;
	case SV_MAIL:
	case SV_RCPT: {
		int rc = parse_mail_rcpt(cmd, why);
		if (rc) {
			free(cmd->path);
			cmd->path = NULL;
		}
		return rc;
	}
	case SV_DATA:
	case SV_RSET:
	case SV_QUIT:
	case SV_STARTTLS:
		return cmd->arg_len ? fail(why, 501, "5.5.4 Syntax error: no parameters allowed")
		                    : 0;
	case SV_VRFY:
	case SV_EXPN:
	case SV_AUTH:
		return cmd->arg_len ? 0 : fail(why, 501, "5.5.4 Syntax error: argument required");
	default:
		return 0;
	}
}
