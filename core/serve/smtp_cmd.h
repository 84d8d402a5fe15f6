/* One SMTP command line (RFC 5321 §4.1) parsed into a verb, its argument
 * and, for MAIL and RCPT, the path and ESMTP parameters. Pure: no I/O, so
 * the fuzz target and unit tests drive it directly. */
#ifndef SC_SERVE_SMTP_CMD_H
#define SC_SERVE_SMTP_CMD_H

#include <stddef.h>

enum serve_verb {
	SV_UNKNOWN = 0,
	SV_HELO,
	SV_EHLO,
	SV_MAIL,
	SV_RCPT,
	SV_DATA,
	SV_RSET,
	SV_NOOP,
	SV_QUIT,
	SV_VRFY,
	SV_EXPN,
	SV_HELP,
	SV_STARTTLS,
	SV_AUTH,
	SV_BDAT
};

enum serve_body { SB_7BIT = 0, SB_8BITMIME };

struct serve_cmd {
	enum serve_verb verb;
	const char *arg; /* after the verb and its blank: points into the
	                    line given to serve_cmd_parse; "" when none */
	size_t arg_len;
	/* MAIL / RCPT only: */
	char *path; /* allocated: the address without <> (and
	               without a source route); "" for <> */
	int has_size;
	unsigned long long size; /* MAIL SIZE= */
	enum serve_body body;    /* MAIL BODY= */
	int smtputf8;            /* MAIL SMTPUTF8 */
	int non_ascii;           /* path holds bytes >= 0x80 */
};

/* The longest path RFC 5321 §4.5.3.1.3 allows, in octets with <>. */
#define SERVE_PATH_MAX 256

/* Parse one line (without its CRLF; may hold any bytes). Returns 0, or an
 * SMTP reply code (500, 501, 504, 555) with *why set to a static text
 * that follows the code in the reply (enhanced status included). On
 * success the caller owns cmd->path (serve_cmd_clear frees it). */
int serve_cmd_parse(const char *line, size_t len, struct serve_cmd *cmd, const char **why);
void serve_cmd_clear(struct serve_cmd *cmd);

#endif
