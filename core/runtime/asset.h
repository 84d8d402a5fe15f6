/* The asset as the core reads it: parsed once, after the request passed
 * the asset schema (schemas/asset.json), into typed fields with the
 * schema's defaults applied. Plugins read their own keys through the
 * sc_asset_* host API instead (plugin.h). */
#ifndef SC_ASSET_H
#define SC_ASSET_H

#include "core.h"

struct core_asset {
	/* Strings are borrowed from the request's JSON (valid while the
	 * request is); NULL when absent or empty. */
	const char *server;     /* host, host:port, [v6] or [v6]:port */
	const char *ssl_config; /* "None", "SSL" or "StartTLS" (default) */
	const char *username;
	const char *auth_type;      /* NULL: Automatic */
	const char *auth_mechanism; /* forced SASL mechanism, or NULL */
	const cJSON *auth_order;    /* array of auth plugin names, or NULL */
	const char *sender_address;
	const char *ca_file;
	const char *ca_pem;           /* PEM text of extra CAs: never quoted */
	const cJSON *attachment_dirs; /* array of directories for "files", or NULL */
	const char *ehlo_name;
	const char *secret_key;   /* a secret: never logged */
	long port;                /* 0: the ssl_config's default port */
	double timeout;           /* seconds (default 30) */
	double throttle_period;   /* seconds between sends; 0: none */
	double throttle_max_wait; /* longest wait; 0: throttle_mode drop; <0: no bound */
	int verify_server_cert;   /* default 1 */
	int allow_smtputf8;       /* default 1 */
	long max_connections;     /* parallel SMTP sessions, 1..32 (default 1) */
};

/* Fill `out` from `asset` (a validated asset object; NULL or not an
 * object gives the defaults). Never fails: the schema has checked the
 * types, and a field of another type counts as absent. */
void core_asset_parse(const cJSON *asset, struct core_asset *out);

#endif
