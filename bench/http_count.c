/* bench/http_count.c: the lightest HTTP endpoint at hand for
 * bench/serve_http.sh, so that the figures are serve's and not the Python
 * test endpoint's (which takes ~0.5 ms of CPU per request on the same
 * cores). libevent's evhttp on 127.0.0.1, port 0; prints the port on
 * stdout; answers every request 200 and writes "<Idempotency-Key>
 * <Unix time>\n" per request to the log file (one write() each, so a
 * reader sees complete lines). Exits on SIGTERM or after 900 s.
 *
 *   cc -O2 -o http_count http_count.c $(pkg-config --cflags --libs libevent)
 *   http_count LOGFILE
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static int log_fd = -1;

static void on_request(struct evhttp_request *req, void *arg)
{
	(void)arg;
	const char *key =
	    evhttp_find_header(evhttp_request_get_input_headers(req), "Idempotency-Key");
	struct timeval tv;
	gettimeofday(&tv, NULL);
	char line[256];
	int n = snprintf(line, sizeof line, "%.60s %ld.%06ld\n", key ? key : "-", (long)tv.tv_sec,
	                 (long)tv.tv_usec);
	if (n > 0 && write(log_fd, line, (size_t)n) < 0)
		perror("http_count: log");
	evhttp_send_reply(req, 200, "OK", NULL);
}

static void on_stop(evutil_socket_t fd, short what, void *base)
{
	(void)fd, (void)what;
	event_base_loopexit(base, NULL);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: http_count LOGFILE\n");
		return 2;
	}
	log_fd = open(argv[1], O_WRONLY | O_CREAT | O_APPEND | O_TRUNC, 0644);
	struct event_base *base = event_base_new();
	struct evhttp *http = base ? evhttp_new(base) : NULL;
	struct evhttp_bound_socket *s =
	    http ? evhttp_bind_socket_with_handle(http, "127.0.0.1", 0) : NULL;
	if (log_fd < 0 || !s) {
		fprintf(stderr, "http_count: cannot start\n");
		return 1;
	}
	evhttp_set_gencb(http, on_request, NULL);
	struct sockaddr_in sin;
	socklen_t len = sizeof sin;
	getsockname(evhttp_bound_socket_get_fd(s), (struct sockaddr *)&sin, &len);
	printf("%d\n", ntohs(sin.sin_port));
	fflush(stdout);
	struct event *term = evsignal_new(base, SIGTERM, on_stop, base);
	struct timeval life = {900, 0};
	event_add(term, NULL);
	event_base_loopexit(base, &life);
	event_base_dispatch(base);
	event_free(term);
	evhttp_free(http);
	event_base_free(base);
	close(log_fd);
	return 0;
}
