/* DATA: dot-unstuffing and the one end marker (see data_reader.h). */
#include "data_reader.h"

#include <string.h>

/* Where we are in the byte stream. The CRLF of the DATA command counts as
 * the line end before the first line, so ".\r\n" at once is an empty
 * message. */
enum { ST_BOL, ST_DOT, ST_DOT_CR, ST_TEXT, ST_CR };

void serve_data_init(struct serve_data_reader *r, unsigned long long max_size, size_t max_line)
{
	memset(r, 0, sizeof *r);
	r->state = ST_BOL;
	r->max_size = max_size;
	r->max_line = max_line;
}

const char *serve_data_error_reply(enum serve_data_error e)
{
	switch (e) {
	case SD_TOO_BIG:
		return "552 5.3.4 Message too big: over the SIZE this server announced";
	case SD_LINE_LONG:
		return "500 5.5.2 Message refused: a line is longer than this server allows";
	case SD_BARE_LF:
		return "550 5.5.2 Message refused: bare <LF> in DATA; lines must end with <CR><LF>";
	case SD_BARE_CR:
		return "550 5.5.2 Message refused: bare <CR> in DATA; lines must end with <CR><LF>";
	case SD_NUL:
		return "550 5.6.0 Message refused: NUL byte in DATA";
	default:
		return "250 2.0.0 OK";
	}
}

static void soft(struct serve_data_reader *r, enum serve_data_error e)
{
	if (r->error == SD_OK)
		r->error = e;
}

/* Count n message bytes (and the line length), then keep them unless an
 * error already condemned the message. */
static int emit(struct serve_data_reader *r, const char *p, size_t n, struct sc_buf *out)
{
	r->line_len += n;
	if (r->max_line && r->line_len > r->max_line)
		soft(r, SD_LINE_LONG);
	if (r->max_size && n > r->max_size - (r->size < r->max_size ? r->size : r->max_size))
		soft(r, SD_TOO_BIG);
	r->size += n;
	if (r->error != SD_OK)
		return 0;
	return sc_buf_add(out, p, n) == SC_OK ? 0 : -1;
}

static enum serve_data_status fatal(struct serve_data_reader *r, enum serve_data_error e, size_t at,
                                    size_t *used)
{
	r->error = e;
	*used = at;
	return SD_FATAL;
}

enum serve_data_status serve_data_feed(struct serve_data_reader *r, const char *in, size_t n,
                                       size_t *used, struct sc_buf *out)
{
	size_t i = 0;
	while (i < n) {
		char c = in[i];
		switch (r->state) {
		case ST_BOL:
			r->line_len = 0;
			if (c == '.') {
				r->state = ST_DOT;
				i++;
				r->line_len = 1;
				continue;
			}
			r->state = ST_TEXT;
			continue; /* the same byte, as text */
		case ST_DOT:
			if (c == '\r') {
				r->state = ST_DOT_CR;
				i++;
				continue;
			}
			r->state = ST_TEXT; /* "..x" -> ".x": the stuffed dot is dropped */
			continue;
		case ST_DOT_CR:
			if (c != '\n')
				return fatal(r, SD_BARE_CR, i, used);
			*used = i + 1;
			r->state = ST_BOL;
			return SD_END;
		case ST_CR:
			if (c != '\n')
				return fatal(r, SD_BARE_CR, i, used);
			if (emit(r, "\r\n", 2, out))
				return SD_NOMEM;
			r->state = ST_BOL;
			i++;
			continue;
		default: { /* ST_TEXT: take the run up to the next special byte */
			size_t j = i;
			while (j < n && in[j] != '\r' && in[j] != '\n' && in[j] != '\0')
				j++;
			if (j > i && emit(r, in + i, j - i, out))
				return SD_NOMEM;
			if (j == n) {
				i = j;
				continue;
			}
			if (in[j] == '\n')
				return fatal(r, SD_BARE_LF, j, used);
			if (in[j] == '\0')
				return fatal(r, SD_NUL, j, used);
			r->state = ST_CR;
			i = j + 1;
		}
		}
	}
	*used = n;
	return SD_MORE;
}
