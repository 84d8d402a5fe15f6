/* Reading the serve configuration (--config FILE, schemas/serve.json). */
#ifndef SC_SERVE_CONFIG_H
#define SC_SERVE_CONFIG_H

#include "serve.h"

void serve_config_defaults(struct serve_config *c);
/* Read, validate (messages name the key: "config.limits.recipients: ...")
 * and apply FILE over what c holds. SC_EINPUT, SC_EIO (users file). */
int serve_config_load(struct serve_config *c, const char *path, struct sc_error *err);
/* Apply an already validated document. */
int serve_config_apply(struct serve_config *c, const cJSON *doc, struct sc_error *err);

#endif
