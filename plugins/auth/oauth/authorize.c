/* `smtp-connector authorize`: the authorization-code grant with PKCE
 * (RFC 6749 §4.1, RFC 7636 S256, RFC 8252 loopback redirect).
 *
 * 1. Make a PKCE verifier and a random `state`; remember both in a
 *    pending file (0600, next to the token store) so that a later run
 *    can finish the flow from a pasted URL.
 * 2. Print the authorization URL on stderr, on a line of its own.
 * 3. Wait, bounded (5 minutes, SMTP_CONNECTOR_AUTHORIZE_TIMEOUT seconds
 *    to override), for either the browser's redirect on a loopback
 *    listener (redirect_uri from the asset when it is a loopback http
 *    URL, else http://127.0.0.1:<free port>/callback) or the redirected
 *    URL pasted on the terminal (/dev/tty: stdin carries the request).
 *    Without a terminal, SMTP_CONNECTOR_REDIRECT_URL=<url> on a second
 *    run finishes the pending flow.
 * 4. Reject a wrong `state`, exchange the code with the verifier, store
 *    the tokens, answer the browser with a small page.
 *
 * With oauth_grant_type client_credentials there is no browser: authorize
 * fetches and stores a token (a check of the client's credentials). */
#define _GNU_SOURCE /* accept4 */
#include "oauth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_WAIT 300
#define MAX_REQUEST (64 * 1024) /* a redirect's request head */
#define MAX_PASTE (64 * 1024)

struct flow {
	struct sc_ctx *ctx;
	struct oauth_config cfg;
	struct oauth_store st;
	char *state;    /* secret-ish: wiped */
	char *verifier; /* secret: wiped */
	char *redirect_uri;
	char *path; /* the redirect's path, for the listener */
	int listen_fd;
	const char *how; /* where the redirect came from, for the result */
	struct oauth_tokens tok;
};

/* ---------------------------------------------------------------- URLs */

/* Split "scheme://host[:port]/path?q" into a lower-case host, a port (0
 * when absent) and the path (default "/"). */
static int split_url(const char *url, char **host, long *port, char **path)
{
	const char *p = strstr(url, "://");
	if (!p)
		return -1;
	p += 3;
	size_t n = strcspn(p, "/?#");
	const char *hend = p + n;
	const char *colon = NULL;
	if (*p == '[') {
		const char *rb = memchr(p, ']', n);
		if (!rb)
			return -1;
		colon = rb + 1 < hend && rb[1] == ':' ? rb + 1 : NULL;
		*host = strndup(p + 1, (size_t)(rb - p - 1));
	} else {
		colon = memchr(p, ':', n);
		*host = strndup(p, (size_t)((colon ? colon : hend) - p));
	}
	*port = colon ? strtol(colon + 1, NULL, 10) : 0;
	size_t pl = strcspn(hend, "?#");
	*path = pl ? strndup(hend, pl) : strdup("/");
	if (!*host || !*path) {
		free(*host);
		free(*path);
		*host = *path = NULL; /* the caller's (f->path) must not dangle */
		return -1;
	}
	for (char *c = *host; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	return 0;
}

/* Google hands out a refresh token only with access_type=offline and
 * prompt=consent; other servers do not need (or may reject) them. */
static int is_google(const char *auth_url)
{
	char *host = NULL, *path = NULL;
	long port;
	if (split_url(auth_url, &host, &port, &path))
		return 0;
	size_t n = strlen(host);
	int g = strcmp(host, "google.com") == 0 ||
	        (n > 11 && strcmp(host + n - 11, ".google.com") == 0);
	free(host);
	free(path);
	return g;
}

static char *auth_request_url(const struct flow *f)
{
	char *challenge = oauth_sha256_b64url(f->verifier);
	struct sc_buf b = {.wipe = 1}; /* may hold a secret */
	int rc = !challenge || sc_buf_str(&b, f->cfg.auth_url) ||
	         sc_buf_str(&b, strchr(f->cfg.auth_url, '?') ? "&" : "?") ||
	         oauth_buf_param(&b, "response_type", "code") ||
	         oauth_buf_param(&b, "client_id", f->cfg.client_id) ||
	         oauth_buf_param(&b, "redirect_uri", f->redirect_uri) ||
	         (f->cfg.scopes && oauth_buf_param(&b, "scope", f->cfg.scopes)) ||
	         oauth_buf_param(&b, "state", f->state) ||
	         oauth_buf_param(&b, "code_challenge", challenge) ||
	         oauth_buf_param(&b, "code_challenge_method", "S256") ||
	         (is_google(f->cfg.auth_url) && (oauth_buf_param(&b, "access_type", "offline") ||
	                                         oauth_buf_param(&b, "prompt", "consent")));
	free(challenge);
	if (rc) {
		sc_buf_wipe(&b);
		return NULL;
	}
	return sc_buf_take(&b);
}

/* ---------------------------------------------------------------- listener */

/* Listen where redirect_uri points when it is a loopback http URL; with
 * no redirect_uri, on 127.0.0.1 at a free port. A non-loopback
 * redirect_uri (a web handler) leaves only the paste. */
static int open_listener(struct flow *f, struct sc_error *err)
{
	char *host = NULL;
	long port = 0;
	f->listen_fd = -1;
	if (f->cfg.redirect_uri) {
		if (strncasecmp(f->cfg.redirect_uri, "http://", 7) != 0 ||
		    split_url(f->cfg.redirect_uri, &host, &port, &f->path))
			host = NULL;
		f->redirect_uri = strdup(f->cfg.redirect_uri);
		if (!f->redirect_uri)
			goto nomem;
		if (!host || (strcmp(host, "127.0.0.1") && strcmp(host, "localhost") &&
		              strcmp(host, "::1"))) {
			sc_log(SC_LOG_INFO,
			       "redirect_uri %s is not a loopback http address: paste the "
			       "redirected URL when the browser gets there",
			       f->cfg.redirect_uri);
			free(host);
			return SC_OK;
		}
		if (!port)
			port = 80;
		if (port < 1 || port > 65535) {
			free(host);
			return sc_error_set(err, SC_EINPUT,
			                    "redirect_uri %s has no valid port (1-65535)",
			                    f->cfg.redirect_uri);
		}
	} else {
		host = strdup("127.0.0.1");
		f->path = strdup("/callback");
		if (!host || !f->path)
			goto nomem;
	}
	int v6 = strcmp(host, "::1") == 0;
	free(host);
	host = NULL;
	int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a4 = {.sin_family = AF_INET,
	                         .sin_port = htons((unsigned short)port),
	                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6,
	                          .sin6_port = htons((unsigned short)port),
	                          .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	int one = 1;
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (fd < 0 ||
	    (v6 ? bind(fd, (struct sockaddr *)&a6, sizeof a6)
	        : bind(fd, (struct sockaddr *)&a4, sizeof a4)) ||
	    listen(fd, 8)) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return sc_error_set(
		    err, SC_EIO,
		    "cannot listen on the loopback port %ld for the OAuth redirect: %s%s", port,
		    strerror(e),
		    e == EADDRINUSE ? " (another program uses it: change redirect_uri)" : "");
	}
	f->listen_fd = fd;
	if (!f->redirect_uri) {
		socklen_t len = sizeof a4;
		getsockname(fd, (struct sockaddr *)&a4, &len);
		f->redirect_uri =
		    sc_asprintf("http://127.0.0.1:%u/callback", (unsigned)ntohs(a4.sin_port));
		if (!f->redirect_uri)
			goto nomem;
	}
	return SC_OK;
nomem:
	free(host);
	return sc_error_set(err, SC_ENOMEM, "out of memory");
}

static void html_escape(struct sc_buf *b, const char *s)
{
	for (; *s; s++) {
		const char *r = *s == '<'   ? "&lt;"
		                : *s == '>' ? "&gt;"
		                : *s == '&' ? "&amp;"
		                : *s == '"' ? "&quot;"
		                            : NULL;
		if (r)
			sc_buf_str(b, r);
		else
			sc_buf_add(b, s, 1);
	}
}

static void answer(int fd, int status, const char *title, const char *text)
{
	struct sc_buf body = {.wipe = 1}, out = {.wipe = 1};
	sc_buf_str(
	    &body,
	    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>smtp-connector</title>"
	    "</head><body style=\"font-family:sans-serif\"><h1>");
	html_escape(&body, title);
	sc_buf_str(&body, "</h1><p>");
	html_escape(&body, text);
	sc_buf_str(&body, "</p></body></html>\n");
	char *head = sc_asprintf(
	    "HTTP/1.1 %d %s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %zu\r\n"
	    "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
	    status,
	    status == 200   ? "OK"
	    : status == 404 ? "Not Found"
	                    : "Bad Request",
	    body.len);
	if (head && body.p) {
		sc_buf_str(&out, head);
		sc_buf_add(&out, body.p, body.len);
		for (size_t off = 0; out.p && off < out.len;) {
			ssize_t n = send(fd, out.p + off, out.len - off, MSG_NOSIGNAL);
			if (n <= 0)
				break;
			off += (size_t)n;
		}
	}
	free(head);
	sc_buf_wipe(&body);
	sc_buf_wipe(&out);
}

/* Read one request head (bounded in size and time); return the target
 * of its request line ("/callback?code=..."), allocated. */
static char *read_target(int fd)
{
	struct timeval tv = {10, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	struct sc_buf b = {.wipe = 1}; /* may hold a secret */
	char chunk[2048];
	while (!b.p || !strstr(b.p, "\r\n")) {
		ssize_t n = recv(fd, chunk, sizeof chunk, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || b.len + (size_t)n > MAX_REQUEST || sc_buf_add(&b, chunk, (size_t)n)) {
			sc_secret_wipe(chunk, sizeof chunk); /* may hold the code */
			sc_buf_wipe(&b);
			return NULL;
		}
	}
	sc_secret_wipe(chunk, sizeof chunk);
	char *target = NULL;
	if (strncmp(b.p, "GET ", 4) == 0) {
		size_t n = strcspn(b.p + 4, " \r\n");
		target = strndup(b.p + 4, n);
	}
	sc_buf_wipe(&b);
	return target;
}

/* ---------------------------------------------------------------- the redirect */

/* Check a redirect's query and exchange its code; store the tokens. */
static int finish(struct flow *f, const char *query, struct sc_error *err)
{
	char *error = oauth_query_get(query, "error");
	char *state = oauth_query_get(query, "state");
	char *code = oauth_query_get(query, "code");
	int rc;
	if (error) {
		char *d = oauth_query_get(query, "error_description");
		char *pe = oauth_printable(error, 100), *pd = d ? oauth_printable(d, 300) : NULL;
		rc = sc_error_set(
		    err, SC_EAUTH,
		    "the authorization server at %s refused: %s%s%s (consent denied, or "
		    "client_id, redirect_uri or scopes not registered for this client)",
		    f->cfg.auth_url, pe ? pe : "", pd ? ": " : "", pd ? pd : "");
		free(pe);
		free(pd);
		free(d);
	} else if (!state || strcmp(state, f->state) != 0) {
		rc = sc_error_set(err, SC_EAUTH,
		                  "the redirect's state does not match the one this authorization "
		                  "sent (a stale link, or a forged redirect): nothing was stored; "
		                  "run authorize again");
	} else if (!code || !*code) {
		rc = sc_error_set(err, SC_EAUTH, "the redirect carries no authorization code");
	} else {
		rc = oauth_fetch_code(f->ctx, &f->cfg, code, f->redirect_uri, f->verifier, &f->tok,
		                      err);
		if (!rc && !(rc = oauth_store_lock(&f->st, err))) {
			rc = oauth_store_save(&f->st, &f->cfg, &f->tok, err);
			oauth_store_unlock(&f->st);
		}
		if (!rc)
			oauth_pending_remove(&f->st);
	}
	free(error);
	sc_secret_free(state);
	sc_secret_free(code);
	return rc;
}

static int finish_url(struct flow *f, const char *url, struct sc_error *err)
{
	const char *q = strchr(url, '?');
	if (!q)
		return sc_error_set(err, SC_EINPUT,
		                    "the pasted address has no query (?code=...&state=...): paste "
		                    "the whole address the browser was redirected to");
	return finish(f, q + 1, err);
}

/* One connection on the listener; returns 1 when the flow ended (rc set). */
static int on_connection(struct flow *f, int *rc, struct sc_error *err)
{
	int c = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return 0;
	char *target = read_target(c);
	char *path = target ? strndup(target, strcspn(target, "?#")) : NULL;
	int done = 0;
	if (!path || strcmp(path, f->path) != 0) {
		/* favicon.ico and other strays: not ours, keep waiting */
		answer(c, 404, "Not found", "This is smtp-connector's OAuth redirect listener.");
	} else {
		const char *q = strchr(target, '?');
		f->how = "loopback listener";
		*rc = finish(f, q ? q + 1 : "", err);
		if (*rc)
			answer(c, 400, "Authorization failed", err->message);
		else
			answer(c, 200, "Authorization complete",
			       "smtp-connector stored the tokens. You can close this tab.");
		done = 1;
	}
	free(path);
	sc_secret_free(target);
	close(c);
	return done;
}

/* A line typed on the terminal; returns 1 when the flow ended. */
static int on_tty(struct flow *f, int tty, struct sc_buf *line, int *rc, struct sc_error *err)
{
	char chunk[1024];
	ssize_t n = read(tty, chunk, sizeof chunk);
	if (n <= 0)
		return -1; /* terminal gone: stop polling it */
	int full = line->len + (size_t)n > MAX_PASTE || sc_buf_add(line, chunk, (size_t)n);
	sc_secret_wipe(chunk, sizeof chunk); /* the pasted URL carries the code */
	if (full) {
		*rc = sc_error_set(err, SC_EINPUT, "the pasted line is too long");
		return 1;
	}
	char *nl = memchr(line->p, '\n', line->len);
	if (!nl)
		return 0;
	*nl = '\0';
	char *s = line->p;
	while (*s == ' ' || *s == '\t')
		s++;
	s[strcspn(s, " \t\r")] = '\0';
	if (!*s) {
		line->len = 0;
		return 0;
	}
	f->how = "terminal";
	*rc = finish_url(f, s, err);
	return 1;
}

static long wait_seconds(void)
{
	const char *e = getenv("SMTP_CONNECTOR_AUTHORIZE_TIMEOUT");
	char *end;
	long v = e ? strtol(e, &end, 10) : 0;
	return e && *e && !*end && v > 0 ? v : DEFAULT_WAIT;
}

static int wait_redirect(struct flow *f, struct sc_error *err)
{
	long wait_s = wait_seconds();
	int tty = open("/dev/tty", O_RDONLY | O_CLOEXEC | O_NOCTTY);
	char *url = auth_request_url(f);
	if (!url) {
		if (tty >= 0)
			close(tty);
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	/* The URL alone on its line, so that it can be copied or parsed. */
	fprintf(stderr, "To authorize smtp-connector for %s, open this address in a browser:\n%s\n",
	        f->cfg.username, url);
	fprintf(stderr, "Waiting up to %ld s for the redirect to %s%s.\n", wait_s, f->redirect_uri,
	        f->listen_fd < 0 ? " (not a loopback address: paste it)" : "");
	fprintf(
	    stderr, "If the browser cannot reach this machine, %s\n",
	    tty >= 0
	        ? "paste the address it was redirected to here and press Enter (or run again with "
	          "SMTP_CONNECTOR_REDIRECT_URL=<that address> within an hour)."
	        : "run `smtp-connector authorize` again with SMTP_CONNECTOR_REDIRECT_URL=<the "
	          "address it "
	          "was redirected to> within an hour.");
	fflush(stderr);
	free(url);
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	struct sc_buf line = {.wipe = 1}; /* may hold a secret */
	int rc = SC_OK, done = 0;
	while (!done) {
		struct pollfd p[2];
		nfds_t n = 0;
		if (f->listen_fd >= 0)
			p[n++] = (struct pollfd){.fd = f->listen_fd, .events = POLLIN};
		if (tty >= 0)
			p[n++] = (struct pollfd){.fd = tty, .events = POLLIN};
		clock_gettime(CLOCK_MONOTONIC, &now);
		long left_ms = wait_s * 1000 - ((now.tv_sec - start.tv_sec) * 1000 +
		                                (now.tv_nsec - start.tv_nsec) / 1000000);
		if (left_ms <= 0 || n == 0) {
			rc = sc_error_set(
			    err, SC_EAUTH,
			    "no redirect arrived within %ld s (SMTP_CONNECTOR_AUTHORIZE_TIMEOUT): "
			    "run authorize again, or finish with "
			    "SMTP_CONNECTOR_REDIRECT_URL=<redirected "
			    "address> within an hour",
			    wait_s);
			break;
		}
		int r = poll(p, n, (int)(left_ms > 1000000 ? 1000000 : left_ms));
		if (r < 0 && errno != EINTR) {
			rc = sc_error_set(err, SC_EIO, "waiting for the redirect failed: %s",
			                  strerror(errno));
			break;
		}
		for (nfds_t i = 0; r > 0 && i < n && !done; i++) {
			if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (p[i].fd == f->listen_fd) {
				done = on_connection(f, &rc, err);
			} else {
				int t = on_tty(f, tty, &line, &rc, err);
				if (t < 0) {
					close(tty);
					tty = -1;
				}
				done = t > 0;
			}
		}
	}
	sc_buf_wipe(&line);
	if (tty >= 0)
		close(tty);
	return rc;
}

/* ---------------------------------------------------------------- entry */

static void report(struct flow *f, cJSON *data, const char *how)
{
	cJSON_AddStringToObject(data, "grant", oauth_grant_name(f->cfg.grant));
	cJSON_AddStringToObject(data, "asset_key", sc_asset_key(f->ctx));
	cJSON_AddStringToObject(data, "token_store", f->st.path);
	if (how)
		cJSON_AddStringToObject(data, "redirect_received_via", how);
	if (f->tok.expires_at)
		cJSON_AddNumberToObject(data, "expires_in",
		                        (double)(f->tok.expires_at - (long long)time(NULL)));
	if (f->tok.scope)
		cJSON_AddStringToObject(data, "scope", f->tok.scope);
	cJSON_AddBoolToObject(data, "refresh_token", f->tok.refresh_token != NULL);
	if (!f->tok.refresh_token && f->cfg.grant == GRANT_AUTHORIZATION_CODE)
		sc_log(SC_LOG_WARN,
		       "the token endpoint issued no refresh token: actions will stop working when "
		       "the "
		       "access token expires (Microsoft needs the offline_access scope)");
}

int oauth_authorize(struct sc_ctx *ctx, cJSON *data, struct sc_error *err)
{
	struct flow f;
	memset(&f, 0, sizeof f);
	f.ctx = ctx;
	f.listen_fd = -1;
	f.st.lock_fd = -1;
	int rc = oauth_config_read(ctx, &f.cfg, 1, err);
	if (rc == SC_ESKIP)
		err->code = rc = SC_EINPUT; /* here a missing field is the user's to fix */
	if (rc)
		return rc;
	if (f.cfg.grant == GRANT_CLIENT_CREDENTIALS) {
		rc = oauth_get_token(ctx, &f.cfg, 1, NULL, &f.tok, err);
		if (!rc && !(rc = oauth_store_open(ctx, &f.st, err)))
			report(&f, data, NULL);
		goto out;
	}
	rc = oauth_store_open(ctx, &f.st, err);
	if (rc)
		goto out;
	const char *pasted = getenv("SMTP_CONNECTOR_REDIRECT_URL");
	if (pasted && *pasted) {
		/* Finish the flow an earlier run started. */
		rc = oauth_pending_load(&f.st, &f.state, &f.verifier, &f.redirect_uri, err);
		if (!rc)
			rc = finish_url(&f, pasted, err);
		if (!rc)
			report(&f, data, "SMTP_CONNECTOR_REDIRECT_URL");
		goto out;
	}
	f.verifier = oauth_random_b64url(48); /* 64 characters: RFC 7636 wants 43..128 */
	f.state = oauth_random_b64url(24);
	if (!f.verifier || !f.state) {
		rc = sc_error_set(err, SC_EINTERNAL, "cannot get random bytes for PKCE");
		goto out;
	}
	rc = open_listener(&f, err);
	if (!rc)
		rc = oauth_pending_save(&f.st, f.state, f.verifier, f.redirect_uri, err);
	if (!rc)
		rc = wait_redirect(&f, err);
	if (!rc)
		report(&f, data, f.how);
out:
	if (f.listen_fd >= 0)
		close(f.listen_fd);
	oauth_store_close(&f.st);
	oauth_tokens_clear(&f.tok);
	sc_secret_free(f.state);
	sc_secret_free(f.verifier);
	free(f.redirect_uri);
	free(f.path);
	return rc;
}
