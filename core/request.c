/* Requests arrive on stdin as one JSON object or as JSON Lines. We read to
 * EOF first: a platform writes the whole request and closes the pipe, and
 * results must come out in order, one per request. */
#include "request.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(FILE *in, size_t *len, struct sc_error *err)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);
	if (!buf) {
		sc_error_set(err, SC_ENOMEM, "out of memory reading the request");
		return NULL;
	}
	for (;;) {
		if (cap - n < 4096) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				sc_error_set(err, SC_ENOMEM, "out of memory reading the request");
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
		size_t got = fread(buf + n, 1, cap - n - 1, in);
		n += got;
		if (got == 0) {
			if (ferror(in)) {
				free(buf);
				sc_error_set(err, SC_EIO, "cannot read the request from stdin: %s", strerror(errno));
				return NULL;
			}
			break;
		}
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

static void line_col(const char *start, const char *at, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (const char *p = start; p < at; p++) {
		if (*p == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

static int push(struct core_doc **docs, size_t *n, size_t *cap, struct core_doc d)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct core_doc *nd = realloc(*docs, nc * sizeof *nd);
		if (!nd)
			return -1;
		*docs = nd;
		*cap = nc;
	}
	(*docs)[(*n)++] = d;
	return 0;
}

static char *parse_error(const char *buf, const char *at, const char *end)
{
	int line, col;
	line_col(buf, at, &line, &col);
	size_t show = 0;
	while (at + show < end && show < 24 && at[show] != '\n')
		show++;
	if (at >= end)
		return core_asprintf("the request is not valid JSON: it ends too early (line %d); "
				     "send one JSON object, or one object per line", line);
	return core_asprintf("the request is not valid JSON at line %d, column %d, near \"%.*s\"; "
			     "send one JSON object, or one object per line",
			     line, col, (int)show, at);
}

int core_requests_read(FILE *in, struct core_doc **docs, size_t *n, struct sc_error *err)
{
	size_t len = 0, cap = 0;
	*docs = NULL;
	*n = 0;
	char *buf = slurp(in, &len, err);
	if (!buf)
		return err->code;
	const char *p = buf, *end = buf + len;
	int parsed_any = 0;
	while (p < end) {
		while (p < end && isspace((unsigned char)*p))
			p++;
		if (p >= end)
			break;
		const char *stop = NULL;
		cJSON *j = cJSON_ParseWithLengthOpts(p, (size_t)(end - p), &stop, 0);
		struct core_doc d = { j, NULL };
		if (!j) {
			const char *at = cJSON_GetErrorPtr();
			if (!at || at < p || at > end)
				at = p;
			d.error = parse_error(buf, at, end);
			/* JSON Lines: resume on the next line. A single broken
			 * document: one error is enough. */
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			p = (parsed_any && nl) ? nl + 1 : end;
		} else {
			parsed_any = 1;
			p = stop;
		}
		if (push(docs, n, &cap, d)) {
			cJSON_Delete(j);
			free(d.error);
			free(buf);
			return sc_error_set(err, SC_ENOMEM, "out of memory");
		}
	}
	free(buf);
	return SC_OK;
}

void core_requests_free(struct core_doc *docs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		cJSON_Delete(docs[i].json);
		free(docs[i].error);
	}
	free(docs);
}
