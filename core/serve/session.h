/* One SMTP server session (RFC 5321, 3207 STARTTLS, 4954 AUTH): bytes in,
 * replies out. No sockets here: the listener feeds what arrives, writes
 * what comes out, and does what `want` asks (start TLS, run a delivery
 * or a password check on a worker, close). While `want` is set the
 * session takes no input, so pipelined commands wait their turn. */
#ifndef SC_SERVE_SESSION_H
#define SC_SERVE_SESSION_H

#include "data_reader.h"
#include "msgfile.h"
#include "serve.h"

enum serve_want { SW_NONE = 0, SW_STARTTLS, SW_DELIVER, SW_AUTH, SW_CLOSE };

enum serve_state {
	SS_FRESH = 0, /* before EHLO/HELO */
	SS_READY,     /* after EHLO/HELO, no transaction */
	SS_MAIL,      /* after MAIL */
	SS_RCPT,      /* at least one RCPT */
	SS_DATA,      /* reading the message */
	SS_AUTH_PLAIN,
	SS_AUTH_USER,
	SS_AUTH_PASS
};

struct serve_session {
	const struct serve_config *cfg;
	char id[17]; /* this transaction's id (logs, message id) */
	char client_addr[64];
	int client_port;
	int tls;
	char *tls_version;
	enum serve_state state;
	enum serve_want want;
	int esmtp;
	char *helo;
	char *auth_user; /* after a successful AUTH */
	/* transaction */
	char *mail_from;
	int smtputf8;
	char **rcpt;
	size_t nrcpt;
	/* DATA */
	struct serve_data_reader dr;
	struct sc_buf pending;     /* unstuffed bytes not yet written */
	struct serve_msgfile file; /* from DATA until the message is delivered or dropped */
	int accepted;              /* the sink took the message: path may be reused */
	unsigned long long size;
	long long received;
	long received_usec;
	/* command line being assembled, and a too-long one being skipped */
	struct sc_buf line;
	int skipping;
	size_t errors;
	/* AUTH in progress: the mechanism's user and password (wiped) */
	char *auth_name;
	char *auth_pass;
	size_t auth_pass_len;
	unsigned messages;
};

/* A session for a client that just connected (and, for implicit TLS,
 * finished its handshake). NULL when out of memory. */
struct serve_session *serve_session_new(const struct serve_config *cfg, const char *addr, int port,
                                        int tls, const char *tls_version);
/* Unlinks a message file still in the spool and frees everything. */
void serve_session_free(struct serve_session *s);

/* The 220 greeting. */
void serve_session_greet(struct serve_session *s, struct sc_buf *out);
/* Feed bytes; replies are appended to out. Returns how many bytes were
 * taken: all of them unless s->want was set on the way. */
size_t serve_session_input(struct serve_session *s, const char *in, size_t n, struct sc_buf *out);
/* The read timeout that applies now (ms), 0 for none (waiting on us). */
long serve_session_timeout(const struct serve_session *s);

/* SW_STARTTLS: the handshake is done; everything is reset (RFC 3207 §4.2). */
void serve_session_tls_started(struct serve_session *s, const char *version);
/* SW_AUTH: the result of the check the listener ran. */
void serve_session_auth_done(struct serve_session *s, int ok, struct sc_buf *out);
/* SW_DELIVER: the message as the sink sees it (valid while s lives and
 * nothing else is fed); rcpt array is the session's. */
void serve_session_inbound(const struct serve_session *s, struct sc_inbound *msg);
/* SW_DELIVER: the sink's verdict and optional reply text. */
void serve_session_delivered(struct serve_session *s, enum sc_sink_verdict v, const char *reply,
                             const char *reason, struct sc_buf *out);
/* SW_DELIVER under require_signature: the message has no valid signature
 * (`reason`); "550 5.7.1", nothing delivered. */
void serve_session_unsigned(struct serve_session *s, const char *reason, struct sc_buf *out);
/* Shutting down: say 421 and close when no transaction is running. 1 when
 * it did. */
int serve_session_shutdown(struct serve_session *s, struct sc_buf *out);

#endif
