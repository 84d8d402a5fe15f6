/* The event loop of `serve` (libevent 2.1): listen sockets, one
 * bufferevent per client (OpenSSL bufferevents for STARTTLS and implicit
 * TLS), and a pool of delivery threads so that no sink call and no
 * password hash ever runs on the loop. */
#ifndef SC_SERVE_LISTENER_H
#define SC_SERVE_LISTENER_H

#include "serve.h"

/* Listen on every cfg->listen address and serve until SIGTERM/SIGINT;
 * then stop accepting, let sessions in flight finish within
 * cfg->shutdown_grace and return SC_OK. The sink is started and stopped
 * by the caller; `priv` is its state. SC_EIO when an address cannot be
 * bound, SC_ETLS when the certificate or key cannot be used. */
int serve_run(const struct serve_config *cfg, const struct sc_sink_ops *sink, void *priv,
              struct sc_error *err);

#endif
