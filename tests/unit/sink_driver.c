/* sink_driver: run a delivery plugin without the listener, through the
 * real loader, as `serve` does: load sink_<id>, validate its settings
 * against its own schema, start, deliver messages, stop. The tests of
 * a sink use it to reach start/deliver/stop directly (crash recovery,
 * stop's grace) and it lets a sink author try a plugin before a listener
 * exists.
 *
 *   sink_driver ID SETTINGS.json STATE_DIR < commands
 *
 * Commands, one a line, words separated by spaces:
 *   deliver MSGID FILE FROM [RCPT...]  deliver a copy of FILE (the copy is
 *                                      removed afterwards, as serve does);
 *                                      prints "MSGID accept|defer|reject REPLY"
 *   sleep MS
 *   stop GRACE_MS                      stop and exit (EOF: stop 5000)
 * Exit 0, or 2 with a message when the plugin cannot be loaded/started. */
#include "loader.h"
#include "schema.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct sc_buf b = {0};
	char chunk[4096];
	size_t n;
	if (!f)
		return NULL;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		if (sc_buf_add(&b, chunk, n))
			break;
	fclose(f);
	return sc_buf_take(&b);
}

static int copy_file(const char *from, const char *to, size_t *size)
{
	FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
	char chunk[65536];
	size_t n;
	*size = 0;
	if (!out) {
		if (in)
			fclose(in);
		return -1;
	}
	while ((n = fread(chunk, 1, sizeof chunk, in)) > 0) {
		fwrite(chunk, 1, n, out);
		*size += n;
	}
	fclose(in);
	return fclose(out);
}

static const char *verdict_name(enum sc_sink_verdict v)
{
	return v == SC_SINK_ACCEPT ? "accept" : v == SC_SINK_DEFER ? "defer" : "reject";
}

static void deliver(const struct sc_sink_ops *ops, void *priv, const char *state, char *args)
{
	char *save = NULL, *id = strtok_r(args, " \n", &save), *file = strtok_r(NULL, " \n", &save),
	     *from = strtok_r(NULL, " \n", &save);
	const char *rcpt[64];
	size_t nrcpt = 0;
	for (char *r; nrcpt < 64 && (r = strtok_r(NULL, " \n", &save));)
		rcpt[nrcpt++] = r;
	if (!id || !file || !from) {
		printf("? usage: deliver MSGID FILE FROM [RCPT...]\n");
		return;
	}
	char *copy = sc_asprintf("%s/incoming-%s", state, id);
	struct sc_inbound m = {0};
	if (!copy || copy_file(file, copy, &m.size)) {
		printf("%s error cannot copy %s: %s\n", id, file, strerror(errno));
		free(copy);
		return;
	}
	struct timeval tv;
	gettimeofday(&tv, NULL);
	m.id = id, m.path = copy, m.mail_from = strcmp(from, "<>") ? from : "";
	m.rcpt = rcpt, m.nrcpt = nrcpt, m.client_addr = "127.0.0.1", m.client_port = 25;
	m.helo = "driver.test", m.received = tv.tv_sec, m.received_usec = tv.tv_usec;
	char *reply = NULL;
	struct sc_error err = SC_ERROR_INIT;
	enum sc_sink_verdict v = ops->deliver(priv, &m, &reply, &err);
	printf("%s %s %s%s%s\n", id, verdict_name(v), reply ? reply : "", err.message ? " | " : "",
	       err.message ? err.message : "");
	fflush(stdout);
	unlink(copy);
	free(copy), free(reply);
	sc_error_clear(&err);
}

static int fail(struct sc_error *err)
{
	fprintf(stderr, "sink_driver: %s\n", err->message ? err->message : "failed");
	sc_error_clear(err);
	return 2;
}

static void run(const struct sc_sink_ops *ops, void *priv, const char *state)
{
	char *line = NULL;
	size_t cap = 0;
	long grace = 5000;
	while (getline(&line, &cap, stdin) > 0) {
		if (strncmp(line, "deliver ", 8) == 0) {
			deliver(ops, priv, state, line + 8);
		} else if (strncmp(line, "sleep ", 6) == 0) {
			long ms = strtol(line + 6, NULL, 10);
			struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
			nanosleep(&ts, NULL);
		} else if (strncmp(line, "stop", 4) == 0) {
			grace = line[4] ? strtol(line + 5, NULL, 10) : grace;
			break;
		}
	}
	free(line);
	if (ops->stop)
		ops->stop(priv, grace);
	printf("stopped\n");
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: sink_driver ID SETTINGS.json STATE_DIR < commands\n");
		return 2;
	}
	struct core_loader l;
	struct sc_error err = SC_ERROR_INIT;
	const struct core_plugin *p = NULL;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (core_loader_init(&l, NULL, 0, &err) || core_loader_sink(&l, argv[1], &p, &err))
		return fail(&err);
	char *text = slurp(argv[2]);
	cJSON *settings = text ? cJSON_Parse(text) : NULL;
	free(text);
	int rc = settings ? SC_OK : sc_error_set(&err, SC_EINPUT, "%s: not JSON", argv[2]);
	if (!rc && p->schema)
		rc = core_schema_validate(p->schema, settings, "delivery", NULL, NULL, &err);
	struct sc_sink_host host = {"driver.test", argv[3], 0};
	void *priv = NULL;
	if (!rc)
		rc = p->desc->sink->start(settings, &host, &priv, &err);
	cJSON_Delete(settings);
	if (rc) {
		core_loader_release(&l);
		return fail(&err);
	}
	printf("started\n");
	fflush(stdout);
	run(p->desc->sink, priv, argv[3]);
	core_loader_release(&l);
	curl_global_cleanup();
	return 0;
}
