/* The body digest of a MIME message as libcurl sends it.
 *
 * A signed message must carry the hash of its body in a header, so the
 * hash is needed before the first byte goes out; but a curl_mime tree is
 * serialised by libcurl at send time (CURLOPT_MIMEPOST) and libcurl has
 * no API that hands out those bytes. Rather than write a second MIME
 * serialiser and hope it matches libcurl's, libcurl itself sends the
 * message once to a peer inside this process: a Unix socket in the
 * abstract namespace (a socketpair cannot be used: libcurl 7.88 calls
 * connect() even on a socket its callback says is connected), answered
 * by a thread as a minimal SMTP server (220, 250, 354, 250, 221) that
 * un-stuffs dots and hashes the body as a receiver stores it.
 * The same tree, with the same boundaries and the same parts rewound,
 * is then sent to the real server. Attachments are read twice (once for
 * the hash, once for the wire), only when secret_key is set; memory stays
 * what one send needs. */
#define _GNU_SOURCE /* accept4, struct ucred */
#include "signature.h"
#include "../serve/data_reader.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct peer {
	int lfd;               /* the listening socket */
	int fd;                /* the accepted connection (libcurl's) */
	pthread_mutex_t mu;    /* fd, read by the caller to end the peer */
	struct sig_reader msg; /* what the "server" received */
	int in_data, done, failed, mails;
	struct serve_data_reader dr; /* the listener's own DATA reader */
	struct sc_buf out;           /* message bytes of one feed */
	char line[1024];             /* a command line */
	size_t llen;
};

static int say(struct peer *p, const char *s)
{
	size_t n = strlen(s), at = 0;
	while (at < n) {
		ssize_t k = send(p->fd, s + at, n - at, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		at += (size_t)k;
	}
	return 0;
}

static void command(struct peer *p)
{
	const char *l = p->line;
	if (!strncasecmp(l, "DATA", 4)) {
		p->in_data = 1;
		serve_data_init(&p->dr, 0, 0);
		say(p, "354 go ahead\r\n");
	} else if (!strncasecmp(l, "MAIL", 4) && p->mails++) {
		say(p, "550 the body was hashed; this transaction only rewinds the tree\r\n");
	} else if (!strncasecmp(l, "QUIT", 4)) {
		say(p, "221 bye\r\n");
	} else if (!strncasecmp(l, "EHLO", 4) || !strncasecmp(l, "HELO", 4) ||
	           !strncasecmp(l, "MAIL", 4) || !strncasecmp(l, "RCPT", 4) ||
	           !strncasecmp(l, "RSET", 4) || !strncasecmp(l, "NOOP", 4)) {
		say(p, "250 ok\r\n");
	} else {
		say(p, "502 not here\r\n");
	}
}

/* DATA as serve reads it (core/serve/data_reader.c: dot-unstuffing,
 * only <CRLF>.<CRLF> ends it); what it yields is hashed as it comes.
 * A bare CR or LF is fatal there, as it would be at a strict receiver:
 * libcurl is fed CRLF-canonical parts only, so one means a bug. */
static size_t data(struct peer *p, const char *in, size_t n)
{
	size_t used = 0;
	p->out.len = 0;
	enum serve_data_status st = serve_data_feed(&p->dr, in, n, &used, &p->out);
	sig_reader_feed(&p->msg, p->out.p, p->out.len);
	if (st == SD_END) {
		p->in_data = 0;
		p->done = 1;
		say(p, "250 ok\r\n");
	} else if (st != SD_MORE) {
		p->in_data = 0;
		p->failed = 1;
		say(p, "554 not CRLF-canonical\r\n");
		return n;
	}
	return used;
}

/* Only a connection from this process: the socket's name is in the
 * abstract namespace, which other local users can see and connect to. */
static int accept_own(struct peer *p)
{
	for (;;) {
		int fd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0 && errno == EINTR)
			continue;
		if (fd < 0)
			return -1; /* the caller shut the listener down */
		struct ucred cred;
		socklen_t len = sizeof cred;
		if (!getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) && cred.pid == getpid()) {
			pthread_mutex_lock(&p->mu);
			p->fd = fd;
			pthread_mutex_unlock(&p->mu);
			return 0;
		}
		close(fd);
	}
}

/* One SMTP session on p->fd, until the client closes it. */
static void session(struct peer *p, char *buf)
{
	if (say(p, "220 smtp-connector body hash\r\n"))
		return;
	p->llen = 0;
	for (;;) {
		ssize_t n = recv(p->fd, buf, 65536, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		size_t at = 0;
		while (at < (size_t)n) {
			if (p->in_data) {
				at += data(p, buf + at, (size_t)n - at);
				continue;
			}
			char c = buf[at++];
			if (c == '\n') {
				p->line[p->llen] = '\0';
				command(p);
				p->llen = 0;
			} else if (p->llen + 1 < sizeof p->line) {
				p->line[p->llen++] = c;
			}
		}
	}
}

/* Sessions one after the other (the hash, then the rewind), until the
 * caller shuts the listener down. */
static void *peer_main(void *arg)
{
	struct peer *p = arg;
	char *buf = malloc(65536);
	if (!buf) {
		p->failed = 1;
		return NULL;
	}
	while (!accept_own(p)) {
		session(p, buf);
		pthread_mutex_lock(&p->mu);
		close(p->fd);
		p->fd = -1;
		pthread_mutex_unlock(&p->mu);
	}
	free(buf);
	return NULL;
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

/* A listening socket at a fresh abstract name ("\0smtp-connector-...");
 * the name (without the NUL) into name[]. */
static int listen_abstract(char *name, size_t cap)
{
	unsigned char rnd[12];
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		return -1;
	int w = snprintf(name, cap, "smtp-connector-hash-");
	for (size_t i = 0; i < sizeof rnd; i++)
		w += snprintf(name + w, cap - (size_t)w, "%02x", rnd[i]);
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path + 1, name, (size_t)w);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sa,
	         (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)w)) ||
	    listen(fd, 4)) {
		close(fd);
		return -1;
	}
	return fd;
}

int core_mime_body_hash(curl_mime *mime, struct curl_slist *headers, unsigned char bh[32],
                        curl_off_t *uploaded, struct sc_error *err)
{
	struct peer p;
	char name[64];
	memset(&p, 0, sizeof p);
	p.fd = -1;
	if (sig_reader_init(&p.msg))
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	p.lfd = listen_abstract(name, sizeof name);
	if (p.lfd < 0) {
		sig_reader_free(&p.msg);
		return sc_error_set(err, SC_EIO, "cannot sign the message: no local socket: %s",
		                    strerror(errno));
	}
	pthread_mutex_init(&p.mu, NULL);
	pthread_t th;
	if (pthread_create(&th, NULL, peer_main, &p)) {
		close(p.lfd);
		pthread_mutex_destroy(&p.mu);
		sig_reader_free(&p.msg);
		return sc_error_set(err, SC_EIO, "cannot sign the message: no thread");
	}
	struct curl_slist *rcpt = curl_slist_append(NULL, "<hash@localhost>");
	char errbuf[CURL_ERROR_SIZE] = "";
	CURL *c = rcpt ? curl_easy_init() : NULL;
	CURLcode cr = CURLE_OUT_OF_MEMORY;
	if (c) {
		/* a numeric host: no resolver; no proxy from the environment */
		curl_easy_setopt(c, CURLOPT_URL, "smtp://127.0.0.1/");
		curl_easy_setopt(c, CURLOPT_ABSTRACT_UNIX_SOCKET, name);
		curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp");
		curl_easy_setopt(c, CURLOPT_PROXY, "");
		curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		/* a connection each: libcurl 7.88 does not reuse a Unix socket
		 * one ("still name resolving") */
		curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
		curl_easy_setopt(c, CURLOPT_SERVER_RESPONSE_TIMEOUT, 60L);
		curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
		curl_easy_setopt(c, CURLOPT_MAIL_FROM, "<hash@localhost>");
		curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
		curl_easy_setopt(c, CURLOPT_UPLOAD, 0L);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
		curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
		cr = curl_easy_perform(c);
		*uploaded = 0;
		curl_easy_getinfo(c, CURLINFO_SIZE_UPLOAD_T, uploaded);
		/* Rewind the tree for the real send. libcurl rewinds a MIME body
		 * when a transaction starts (before MAIL FROM), but only from the
		 * handle's own state: a handle that never sent it finds nothing
		 * to rewind, and sent the parts from where this pass left them,
		 * i.e. an empty body. So this handle starts a second transaction,
		 * whose MAIL FROM the peer refuses. Tested end to end by
		 * tests/integration/test_signatures.py for every action. */
		if (cr == CURLE_OK)
			curl_easy_perform(c);
		/* unbind the tree (the real send attaches it to its own handle) */
		curl_easy_setopt(c, CURLOPT_MIMEPOST, NULL);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
		curl_easy_cleanup(c);
	}
	/* the peer is done either way: wake it in accept() or recv() */
	shutdown(p.lfd, SHUT_RDWR);
	pthread_mutex_lock(&p.mu);
	if (p.fd >= 0)
		shutdown(p.fd, SHUT_RDWR);
	pthread_mutex_unlock(&p.mu);
	pthread_join(th, NULL);
	close(p.lfd);
	pthread_mutex_destroy(&p.mu);
	curl_slist_free_all(rcpt);
	int rc = SC_OK;
	if (cr != CURLE_OK || !p.done || p.failed)
		rc = sc_error_set(err, SC_EIO, "cannot read the message to sign it: %s",
		                  *errbuf ? errbuf : curl_easy_strerror(cr));
	else if (sig_body_final(&p.msg.body, bh))
		rc = sc_error_set(err, SC_EINTERNAL, "cannot hash the message body");
	sig_reader_free(&p.msg);
	sc_buf_free(&p.out);
	return rc;
}
