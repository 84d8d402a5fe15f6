/* struct sc_buf (core/runtime/buf.c), the host API's one growable
 * buffer, and its `wipe` mode for buffers that hold secrets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void fill(struct sc_buf *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		assert_int_equal(sc_buf_add(b, "0123456789" + i % 10, 1), SC_OK);
}

static void test_growth_keeps_the_bytes(void **state)
{
	(void)state;
	struct sc_buf plain = {0}, secret = {.wipe = 1};
	fill(&plain, 5000);
	fill(&secret, 5000);
	assert_int_equal(plain.len, 5000);
	assert_int_equal(secret.len, 5000);
	assert_memory_equal(plain.p, secret.p, 5001);
	assert_int_equal(secret.p[5000], '\0');
	sc_buf_free(&plain);
	sc_buf_wipe(&secret);
	assert_null(secret.p);
	assert_int_equal(secret.len, 0);
}

static void test_wipe_mode_moves_to_a_new_block_on_growth(void **state)
{
	(void)state;
	/* realloc may grow in place or move without wiping; wipe mode always
	 * copies to a new block (and wipes the old one before freeing it) */
	struct sc_buf b = {.wipe = 1};
	assert_int_equal(sc_buf_str(&b, "secret"), SC_OK);
	size_t cap = b.cap;
	char *before = b.p;
	char *pad = calloc(1, cap + 1);
	memset(pad, 'x', cap);
	assert_int_equal(sc_buf_str(&b, pad), SC_OK);
	assert_true(b.cap > cap);
	assert_ptr_not_equal(b.p, before);
	assert_memory_equal(b.p, "secret", 6);
	free(pad);
	sc_buf_wipe(&b);
}

static void test_take_and_printf(void **state)
{
	(void)state;
	struct sc_buf b = {0};
	char *empty = sc_buf_take(&b);
	assert_string_equal(empty, "");
	free(empty);
	assert_int_equal(sc_buf_printf(&b, "%s=%d", "n", 42), SC_OK);
	char *s = sc_buf_take(&b);
	assert_string_equal(s, "n=42");
	assert_null(b.p);
	free(s);
	/* either side of the first pass's 256-byte stack buffer: whole */
	for (size_t n = 250; n <= 262; n++) {
		char *t = sc_asprintf("%0*d|", (int)n - 1, 7);
		assert_non_null(t);
		assert_int_equal(strlen(t), n);
		assert_int_equal(t[n - 2], '7');
		assert_int_equal(t[n - 1], '|');
		free(t);
	}
	char *big = sc_asprintf("%5000s", "x");
	assert_int_equal(strlen(big), 5000);
	free(big);
}

/* A temporary file holding n bytes of a pattern, opened for reading. */
static int file_of(size_t n, char *path)
{
	strcpy(path, "/tmp/test_buf.XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(write(fd, "abcdefghij" + i % 10, 1), 1);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

static void test_read_fd_whole_file_and_limit(void **state)
{
	(void)state;
	char path[64];
	/* larger than the read chunk, exactly the limit: read whole */
	int fd = file_of(20000, path);
	struct sc_buf b = {0};
	assert_int_equal(sc_buf_read_fd(&b, fd, 20000), SC_OK);
	assert_int_equal(b.len, 20000);
	assert_int_equal(b.p[19999], "abcdefghij"[19999 % 10]);
	assert_int_equal(b.p[20000], '\0');
	sc_buf_free(&b);
	/* one byte over: refused as too big */
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(sc_buf_read_fd(&b, fd, 19999), SC_EINPUT);
	assert_int_equal(b.len, 19999); /* the first max bytes kept */
	assert_int_equal(b.p[19999], '\0');
	sc_buf_free(&b);
	close(fd);
	unlink(path);
	/* empty file: "" rather than NULL */
	fd = file_of(0, path);
	assert_int_equal(sc_buf_read_fd(&b, fd, 10), SC_OK);
	assert_non_null(b.p);
	assert_string_equal(b.p, "");
	sc_buf_free(&b);
	close(fd);
	unlink(path);
	/* the limit counts what this call read, not what b held before */
	fd = file_of(5, path);
	struct sc_buf w = {.wipe = 1};
	assert_int_equal(sc_buf_str(&w, "0123456789"), SC_OK);
	assert_int_equal(sc_buf_read_fd(&w, fd, 5), SC_OK);
	assert_string_equal(w.p, "0123456789abcde");
	sc_buf_wipe(&w);
	close(fd);
	unlink(path);
	/* a read error is SC_EIO with errno */
	assert_int_equal(sc_buf_read_fd(&b, -1, 10), SC_EIO);
	assert_int_equal(errno, EBADF);
	sc_buf_free(&b);
}

static void test_dir_make(void **state)
{
	(void)state;
	char dir[] = "/tmp/test_dir.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char sub[64], file[64], link[64];
	snprintf(sub, sizeof sub, "%s/d", dir);
	snprintf(file, sizeof file, "%s/f", dir);
	snprintf(link, sizeof link, "%s/l", dir);
	/* created 0700, then found again */
	assert_int_equal(sc_dir_make(sub), SC_OK);
	struct stat st;
	assert_int_equal(stat(sub, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	/* an existing directory keeps its mode */
	assert_int_equal(chmod(sub, 0750), 0);
	assert_int_equal(sc_dir_make(sub), SC_OK);
	assert_int_equal(stat(sub, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0750);
	/* a file in the way is ENOTDIR; a missing parent is SC_EIO too */
	int fd = open(file, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(sc_dir_make(file), SC_EIO);
	assert_int_equal(errno, ENOTDIR);
	snprintf(file, sizeof file, "%s/missing/x", dir);
	assert_int_equal(sc_dir_make(file), SC_EIO);
	assert_int_equal(errno, ENOENT);
	/* a symbolic link to a directory is accepted (a --maildir path may be one) */
	assert_int_equal(symlink(sub, link), 0);
	assert_int_equal(sc_dir_make(link), SC_OK);
	unlink(link);
	snprintf(file, sizeof file, "%s/f", dir);
	unlink(file);
	rmdir(sub);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_growth_keeps_the_bytes),
	    cmocka_unit_test(test_wipe_mode_moves_to_a_new_block_on_growth),
	    cmocka_unit_test(test_take_and_printf),
	    cmocka_unit_test(test_read_fd_whole_file_and_limit),
	    cmocka_unit_test(test_dir_make),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
