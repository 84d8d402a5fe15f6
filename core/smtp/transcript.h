/* What libcurl's debug callback tells us about an SMTP conversation.
 * libcurl has no API for the EHLO capabilities or for which RCPT failed,
 * but every command and reply passes through CURLOPT_DEBUGFUNCTION. */
#ifndef SC_TRANSCRIPT_H
#define SC_TRANSCRIPT_H

#include "core.h"
#include <stddef.h>
#include <curl/curl.h>

enum core_stage {
	STAGE_CONNECT,
	STAGE_EHLO,
	STAGE_STARTTLS,
	STAGE_TLS,
	STAGE_AUTH,
	STAGE_COMMAND,
	STAGE_MAIL,
	STAGE_RCPT,
	STAGE_DATA,
	STAGE_BODY,
	STAGE_QUIT
};

struct core_rcpt_reply {
	char *addr;
	char *reply;
	int code;
};

struct core_transcript {
	enum core_stage stage; /* the last command sent */
	char *partial;         /* lines of a multi-line reply so far */
	char *last_reply;      /* last complete reply, lines joined by '\n' */
	int last_code;
	char *ehlo; /* latest EHLO reply (capabilities) */
	char *greeting;
	char *answer; /* the reply to the last command; NULL until complete */
	char *mail_reply, *data_reply, *auth_reply;
	char *pending_rcpt;
	struct core_rcpt_reply *rcpts;
	size_t nrcpts;
	int auth_sent; /* an AUTH command went out */
	int in_auth;   /* client lines are SASL secrets */
	int quitting;  /* QUIT sent: keep the failing stage and reply */
	int replies;   /* complete replies received on this transfer */
	size_t body_bytes;
	int connected; /* connected (or reusing a connection) this transfer */
	int verbose;
	/* QUIT after a failure: wait for its reply only when the server had
	 * answered the last command, and at most quit_wait_ms; otherwise
	 * shut the socket's read side so libcurl does not wait a whole
	 * timeout for a server that is stuck (session.c sets these). */
	curl_socket_t sock; /* the one open socket, or CURL_SOCKET_BAD */
	int nsock;          /* sockets open */
	int opened;         /* a socket was opened during this transfer */
	int in_transfer;    /* inside curl_easy_perform */
	long quit_wait_ms;
};

/* CURLOPT_DEBUGFUNCTION; CURLOPT_DEBUGDATA is the transcript. */
int core_transcript_cb(CURL *curl, curl_infotype type, char *data, size_t size, void *tr);
/* Forget per-transfer facts (replies, RCPT results); keep capabilities. */
void core_transcript_reset(struct core_transcript *tr);
void core_transcript_free(struct core_transcript *tr);
/* The server's EHLO listed `ext` (case-insensitive first word). */
int core_transcript_offers(const struct core_transcript *tr, const char *ext);
/* The words after "AUTH" in EHLO, or NULL. Allocated. */
char *core_transcript_auth_mechs(const struct core_transcript *tr);
/* The stage's name for messages: "greeting", "EHLO", ... "end of data". */
const char *core_stage_name(enum core_stage s);

#endif
