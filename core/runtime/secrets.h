/* Named secrets (Velociraptor's `secret`): a request's "secret": "NAME"
 * loads asset keys from <secrets dir>/NAME.json, so cron jobs and shell
 * users keep passwords out of requests and process lists. */
#ifndef SC_SECRETS_H
#define SC_SECRETS_H

#include "core.h"
#include "private_file.h"

/* When `req` has "secret", merge that secret's keys into req's "asset"
 * (created when absent). The file must be a regular file (no symlink)
 * owned by the effective user, mode 0600 or stricter, holding a JSON
 * object; a key set both there and in the request's asset is an error.
 * Values are never quoted in messages. SC_OK (also when there is no
 * "secret"), SC_EINPUT (bad name, file, mode, JSON or a conflict),
 * SC_ENOMEM. */
int core_secrets_apply(const char *dir_opt, cJSON *req, struct sc_error *err);

#endif
