/* auth_passcmd: an example third-party auth plugin for smtp-connector.
 *
 * Like msmtp's `passwordeval`: the password is the first line a command
 * prints, so it can come from a password manager, a secrets vault CLI or
 * an OAuth helper instead of sitting in the asset:
 *
 *   "auth_type": "PassCmd",
 *   "username": "soar@corp.example",
 *   "password_command": "pass show mail/soar"
 *
 * The command is the asset owner's own configuration and runs through
 * /bin/sh -c exactly as written (nothing from a request or a server is
 * ever spliced into it). It gets no stdin, its stdout is read through a
 * pipe, bounded in time (the asset timeout) and size, and the buffer is
 * wiped once the password has been handed to the runtime.
 *
 * Build: see the Makefile and README.md next to this file.
 */
#define _GNU_SOURCE /* pipe2 */
#include <smtp-connector/plugin.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A password line is short; more output than this is not one. */
#define MAX_OUTPUT (64 * 1024)

/* The asset key this plugin adds (the runtime merges these properties
 * into the asset schema, so the key is validated and not "unknown"). */
static const char schema[] =
    "{\"type\": \"object\", \"properties\": {"
    "\"password_command\": {\"type\": \"string\", \"minLength\": 1, "
    "\"description\": \"PassCmd: shell command whose first output line is the password\"}}}";

static long ms_since(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

static int too_slow(long timeout_ms, struct sc_error *err)
{
	return sc_error_set(err, SC_EAUTH, "password_command did not finish within %.3g s",
	                    timeout_ms / 1000.0);
}

/* Collect the child's stdout until EOF, the size cap or the deadline. */
static int read_output(int fd, char *buf, size_t *len, const struct timespec *t0, long timeout_ms,
                       struct sc_error *err)
{
	*len = 0;
	for (;;) {
		long left = timeout_ms - ms_since(t0);
		if (left <= 0)
			return too_slow(timeout_ms, err);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return sc_error_set(err, SC_EAUTH, "password_command: poll: %s",
			                    strerror(errno));
		if (r == 0)
			continue; /* the deadline check above ends it */
		if (*len == MAX_OUTPUT)
			return sc_error_set(err, SC_EAUTH,
			                    "password_command printed more than %d bytes",
			                    MAX_OUTPUT);
		ssize_t n = read(fd, buf + *len, MAX_OUTPUT - *len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sc_error_set(err, SC_EAUTH, "password_command: read: %s",
			                    strerror(errno));
		if (n == 0)
			return SC_OK;
		*len += (size_t)n;
	}
}

/* Run `cmd` and return its first output line in *password (allocated). */
static int run_command(const char *cmd, long timeout_ms, char **password, struct sc_error *err)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC))
		return sc_error_set(err, SC_EAUTH, "password_command: pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return sc_error_set(err, SC_EAUTH, "password_command: fork: %s", strerror(errno));
	}
	if (pid == 0) {
		/* Child: own process group (so a timeout kills its children
		 * too), stdin from /dev/null, stdout into the pipe, stderr
		 * left to the connector's stderr for the command's own errors. */
		setpgid(0, 0);
		int null = open("/dev/null", O_RDONLY);
		if (null >= 0)
			dup2(null, STDIN_FILENO);
		dup2(fds[1], STDOUT_FILENO);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	setpgid(pid, pid); /* also here: no race with the kill below */
	close(fds[1]);
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	char *buf = malloc(MAX_OUTPUT);
	size_t len = 0;
	int rc = buf ? read_output(fds[0], buf, &len, &t0, timeout_ms, err)
	             : sc_error_set(err, SC_ENOMEM, "out of memory");
	close(fds[0]);
	if (rc)
		kill(-pid, SIGKILL);
	/* The command may close its stdout and go on running: the wait for
	 * its exit is bounded by the same deadline. */
	int status = 0;
	pid_t w;
	while ((w = waitpid(pid, &status, rc ? 0 : WNOHANG)) == 0 || (w < 0 && errno == EINTR)) {
		if (w == 0 && ms_since(&t0) >= timeout_ms) {
			rc = too_slow(timeout_ms, err);
			kill(-pid, SIGKILL);
		} else if (w == 0) {
			nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
		}
	}
	if (!rc && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		rc = sc_error_set(err, SC_EAUTH,
		                  "password_command failed (%s %d); its own messages are on stderr",
		                  WIFEXITED(status) ? "exit status" : "signal",
		                  WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	if (!rc) {
		size_t line = 0;
		while (line < len && buf[line] != '\n' && buf[line] != '\r')
			line++;
		if (line == 0)
			rc = sc_error_set(err, SC_EAUTH,
			                  "password_command printed an empty first line");
		else if (memchr(buf, '\0', line))
			rc = sc_error_set(err, SC_EAUTH, "password_command printed a NUL byte");
		else if (!(*password = strndup(buf, line)))
			rc = sc_error_set(err, SC_ENOMEM, "out of memory");
	}
	if (buf) {
		sc_secret_wipe(buf, MAX_OUTPUT);
		free(buf);
	}
	return rc;
}

static int passcmd_acquire(struct sc_ctx *ctx, struct sc_credentials *creds, void **priv,
                           struct sc_error *err)
{
	(void)priv;
	const char *user = sc_asset_string(ctx, "username");
	const char *cmd = sc_asset_string(ctx, "password_command");
	if (!user || !cmd)
		/* Not configured: Automatic moves on to the next method. */
		return sc_error_set(err, SC_ESKIP,
		                    "PassCmd needs username and password_command; missing: %s%s%s",
		                    user ? "" : "username", !user && !cmd ? ", " : "",
		                    cmd ? "" : "password_command");
	char *password = NULL;
	/* sc_asset_double: a timeout of 0.5 is half a second, not 0. */
	long timeout_ms = (long)(sc_asset_double(ctx, "timeout", 30) * 1000);
	sc_log(SC_LOG_DEBUG, "PassCmd: running password_command");
	int rc = run_command(cmd, timeout_ms > 0 ? timeout_ms : 30000, &password, err);
	if (rc)
		return rc;
	rc = sc_credentials_login(creds, user, password); /* copies both */
	sc_secret_free(password);
	return rc;
}

static const struct sc_auth_ops passcmd_ops = {
    .acquire = passcmd_acquire,
    /* No refused: running the command again would give the same password. */
};

const struct sc_plugin sc_plugin = {
    .abi = SC_PLUGIN_ABI,
    .kind = SC_PLUGIN_AUTH,
    .name = "PassCmd",
    .identifier = "passcmd",
    .version = "1.0",
    .description =
        "User name and a password printed by password_command (like msmtp's passwordeval)",
    .schema = schema,
    .auth = &passcmd_ops,
};
