/* The maildir sink: shared between the writer (maildir.c) and the index
 * line (index.c). */
#ifndef SC_SINK_MAILDIR_H
#define SC_SINK_MAILDIR_H

#include <smtp-connector/sink.h>

/* The index.jsonl line for a message written as `file` (relative to the
 * Maildir), ending in "\n"; allocated. */
char *maildir_index_line(const struct sc_inbound *m, const char *file);

#endif
