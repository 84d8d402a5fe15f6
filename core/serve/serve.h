/* smtp-connector serve: the inbound SMTP listener. Internal header of
 * core/serve/: the configuration every part reads, the users file, the
 * client network list and the delivery worker pool. */
#ifndef SC_SERVE_H
#define SC_SERVE_H

#include "core.h"

#include <sys/socket.h>

struct serve_listen {
	char *host;       /* "127.0.0.1", "::1", "0.0.0.0" */
	char *port;       /* "1025" */
	int implicit_tls; /* TLS from the first byte (port 465 style) */
};

struct serve_net {  /* one allowed client network (CIDR) */
	int family; /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned prefix;
};

struct serve_user { /* one line of the users file */
	char *name;
	unsigned long iterations;
	unsigned char *salt;
	size_t salt_len;
	unsigned char hash[32];
};

/* Everything the listener was told, from --config and the flags. Owned
 * by cli.c; read-only once the listener runs. Times in milliseconds. */
struct serve_config {
	struct serve_listen *listen;
	size_t nlisten;
	char *domain;
	char *tls_cert, *tls_key; /* both or neither */
	int require_tls;
	struct serve_user *users; /* from auth.users_file; AUTH only when set */
	size_t nusers;
	int auth_required; /* MAIL refused until AUTH (default with users) */
	int allow_plaintext_auth;
	struct serve_net *nets; /* NULL: any client */
	size_t nnets;
	unsigned long long max_size;
	size_t max_rcpt, max_conn, line_length, max_errors;
	long t_command, t_data, greet_delay, shutdown_grace;
	int workers;
	char *spool_dir; /* message files while they arrive */
	char *plugin;    /* delivery plugin identifier */
	/* require_signature: every message must carry a valid
	 * X-SMTP-Connector-Signature under this key (doc/signatures.md) */
	int require_signature;
	char *secret_key_file; /* NULL: SMTP_CONNECTOR_SECRET_KEY */
	char *secret_key;      /* loaded by cli.c; wiped when freed */
	cJSON *settings;       /* its settings (delivery less "plugin") */
};

void serve_config_free(struct serve_config *c);

/* users.c: users file lines are
 *   name:pbkdf2-sha256:<iterations>:<salt, base64>:<hash, base64>
 * (PBKDF2-HMAC-SHA256, 32-byte hash); '#' lines and blank lines ignored. */
#define SERVE_PBKDF2_ITERATIONS 210000UL
int serve_users_load(const char *path, struct serve_user **out, size_t *n, struct sc_error *err);
void serve_users_free(struct serve_user *u, size_t n);
/* 1 when name/password match a line; constant-time compare. Slow on
 * purpose (PBKDF2): called on a worker thread, never on the event loop. */
int serve_users_verify(const struct serve_user *u, size_t n, const char *name, const char *password,
                       size_t password_len);
/* A users file line for name/password with a fresh salt (allocated). */
char *serve_users_hash_line(const char *name, const char *password, size_t len,
                            unsigned long iterations);
/* Base64 decode (OpenSSL); allocated, NUL-terminated; NULL when invalid. */
unsigned char *serve_b64_decode(const char *in, size_t n, size_t *outlen);
char *serve_b64_encode(const unsigned char *in, size_t n);

/* netacl.c: "192.0.2.0/24", "2001:db8::/32", "127.0.0.1". */
int serve_net_parse(const char *text, struct serve_net *out);
int serve_net_allowed(const struct serve_net *nets, size_t n, const struct sockaddr *sa);

/* A random id of 16 lower-case hex digits (17 bytes with the NUL). */
void serve_new_id(char out[17]);

/* One event line on stderr: "<id>: <text>" (smtp-pigeon's format). Never
 * give it a password or message content. */
void serve_log(const char *id, const char *fmt, ...) SC_PRINTF(2, 3);

/* cli.c */
int core_serve_main(int argc, char **argv);

#endif
