/* The body digest of a MIME message as libcurl sends it.
 *
 * A signed message must carry the hash of its body in a header, so the
 * hash is needed before the first byte goes out; but a curl_mime tree is
 * serialised by libcurl at send time (CURLOPT_MIMEPOST) and libcurl has
 * no API that hands out those bytes. Rather than write a second MIME
 * serialiser and hope it matches libcurl's, libcurl itself sends the
 * message once to a peer inside this process: a socketpair, whose other
 * end a thread answers as a minimal SMTP server (220, 250, 354, 250,
 * 221), un-stuffing dots and hashing the body as a receiver stores it.
 * The same tree, with the same boundaries and the same parts rewound,
 * is then sent to the real server. Attachments are read twice (once for
 * the hash, once for the wire), only when secret_key is set; memory stays
 * what one send needs. */
#include "signature.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

enum dstate { D_BOL, D_DOT, D_DOT_CR, D_MID, D_CR };

struct peer {
	int fd;
	struct sig_reader msg; /* what the "server" received */
	int in_data, done, failed;
	enum dstate ds;
	char line[1024]; /* a command line */
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
		p->ds = D_BOL;
		say(p, "354 go ahead\r\n");
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

/* DATA as a server reads it: a line "." ends it, a leading dot of any
 * other line is removed (RFC 5321 §4.5.2); the CRLF before the final
 * "." is the message's own last line end. */
static size_t data(struct peer *p, const char *in, size_t n)
{
	size_t i = 0, from = 0;
	for (; i < n; i++) {
		char c = in[i];
		switch (p->ds) {
		case D_BOL:
			if (c == '.') {
				sig_reader_feed(&p->msg, in + from, i - from);
				from = i + 1; /* drop the dot (for now) */
				p->ds = D_DOT;
				continue;
			}
			break;
		case D_DOT:
			if (c == '\r') {
				p->ds = D_DOT_CR;
				from = i + 1;
				continue;
			}
			break; /* a stuffed dot: it stays dropped */
		case D_DOT_CR:
			if (c == '\n') {
				p->in_data = 0;
				p->done = 1;
				say(p, "250 ok\r\n");
				return i + 1;
			}
			sig_reader_feed(&p->msg, "\r", 1);
			from = i;
			break;
		default:
			break;
		}
		p->ds = c == '\r' ? D_CR : (c == '\n' && p->ds == D_CR) ? D_BOL : D_MID;
	}
	sig_reader_feed(&p->msg, in + from, i - from);
	return i;
}

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	char *buf = malloc(65536);
	if (!buf || say(p, "220 smtp-connector body hash\r\n")) {
		p->failed = 1;
		free(buf);
		return NULL;
	}
	for (;;) {
		ssize_t n = recv(p->fd, buf, 65536, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
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
	free(buf);
	return NULL;
}

struct sock {
	int fd; /* libcurl's end, handed out once */
};

static curl_socket_t open_sock(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
	(void)purpose;
	(void)addr;
	struct sock *s = arg;
	int fd = s->fd;
	s->fd = -1;
	return fd >= 0 ? fd : CURL_SOCKET_BAD;
}

static int sock_opt(void *arg, curl_socket_t fd, curlsocktype purpose)
{
	(void)arg;
	(void)fd;
	(void)purpose;
	return CURL_SOCKOPT_ALREADY_CONNECTED;
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

int core_mime_body_hash(curl_mime *mime, struct curl_slist *headers, unsigned char bh[32],
                        struct sc_error *err)
{
	int fds[2];
	struct peer p;
	memset(&p, 0, sizeof p);
	if (sig_reader_init(&p.msg))
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds)) {
		sig_reader_free(&p.msg);
		return sc_error_set(err, SC_EIO, "cannot sign the message: socketpair: %s",
		                    strerror(errno));
	}
	p.fd = fds[1];
	pthread_t th;
	if (pthread_create(&th, NULL, peer_main, &p)) {
		close(fds[0]);
		close(fds[1]);
		sig_reader_free(&p.msg);
		return sc_error_set(err, SC_EIO, "cannot sign the message: no thread");
	}
	struct sock s = {fds[0]};
	struct curl_slist *rcpt = curl_slist_append(NULL, "<hash@localhost>");
	char errbuf[CURL_ERROR_SIZE] = "";
	CURL *c = rcpt ? curl_easy_init() : NULL;
	CURLcode cr = CURLE_OUT_OF_MEMORY;
	if (c) {
		/* a numeric host: no resolver; no proxy from the environment */
		curl_easy_setopt(c, CURLOPT_URL, "smtp://127.0.0.1:25/");
		curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp");
		curl_easy_setopt(c, CURLOPT_PROXY, "");
		curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(c, CURLOPT_SERVER_RESPONSE_TIMEOUT, 60L);
		curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
		curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_sock);
		curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &s);
		curl_easy_setopt(c, CURLOPT_SOCKOPTFUNCTION, sock_opt);
		curl_easy_setopt(c, CURLOPT_MAIL_FROM, "<hash@localhost>");
		curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
		curl_easy_setopt(c, CURLOPT_UPLOAD, 0L);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
		curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
		cr = curl_easy_perform(c);
		/* unbind the tree (the real send attaches it to its own handle) */
		curl_easy_setopt(c, CURLOPT_MIMEPOST, NULL);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
		curl_easy_cleanup(c); /* QUIT; libcurl closes its end */
	}
	if (s.fd >= 0)
		close(s.fd);         /* never handed to libcurl */
	shutdown(fds[1], SHUT_RDWR); /* the peer is done either way */
	pthread_join(th, NULL);
	close(fds[1]);
	curl_slist_free_all(rcpt);
	int rc = SC_OK;
	if (cr != CURLE_OK || !p.done || p.failed)
		rc = sc_error_set(err, SC_EIO, "cannot read the message to sign it: %s",
		                  *errbuf ? errbuf : curl_easy_strerror(cr));
	else if (sig_body_final(&p.msg.body, bh))
		rc = sc_error_set(err, SC_EINTERNAL, "cannot hash the message body");
	sig_reader_free(&p.msg);
	return rc;
}
