/* The asset, parsed once into struct core_asset (asset.h), so the core
 * reads typed fields instead of looking the same keys up again in every
 * layer. The defaults are those of schemas/asset.json. */
#include "asset.h"

#include <string.h>
#include <strings.h>

static const char *str(const cJSON *asset, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(asset, key);
	return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

static double num(const cJSON *asset, const char *key, double dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(asset, key);
	return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static int flag(const cJSON *asset, const char *key, int dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(asset, key);
	return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

void core_asset_parse(const cJSON *asset, struct core_asset *out)
{
	memset(out, 0, sizeof *out);
	if (!cJSON_IsObject(asset))
		asset = NULL;
	out->server = str(asset, "server");
	out->ssl_config = str(asset, "ssl_config");
	if (!out->ssl_config)
		out->ssl_config = "StartTLS";
	out->username = str(asset, "username");
	out->auth_type = str(asset, "auth_type");
	if (out->auth_type && strcasecmp(out->auth_type, "Automatic") == 0)
		out->auth_type = NULL;
	out->auth_mechanism = str(asset, "auth_mechanism");
	const cJSON *order = cJSON_GetObjectItemCaseSensitive(asset, "auth_order");
	out->auth_order = cJSON_IsArray(order) ? order : NULL;
	out->sender_address = str(asset, "sender_address");
	out->ca_file = str(asset, "ca_file");
	out->ca_pem = str(asset, "ca_pem");
	const cJSON *dirs = cJSON_GetObjectItemCaseSensitive(asset, "attachment_dirs");
	out->attachment_dirs = cJSON_IsArray(dirs) ? dirs : NULL;
	out->ehlo_name = str(asset, "ehlo_name");
	out->secret_key = str(asset, "secret_key");
	out->port = (long)num(asset, "port", 0);
	out->timeout = num(asset, "timeout", 30);
	out->throttle_period = num(asset, "throttle_period", 0);
	const char *mode = str(asset, "throttle_mode");
	out->throttle_max_wait =
	    mode && strcmp(mode, "drop") == 0 ? 0 : num(asset, "throttle_max_wait", -1);
	out->verify_server_cert = flag(asset, "verify_server_cert", 1);
	out->allow_smtputf8 = flag(asset, "allow_smtputf8", 1);
	out->max_connections = (long)num(asset, "max_connections", 1);
}
