/*
 * The SMTP envelope of a raw message, from its header fields.
 *
 * Recipients: every address of every To, Cc and Bcc field (all of them,
 * not only the first of each as the SOAR app did), parsed with the RFC
 * 5322 address parser (quoted commas, groups, comments), de-duplicated
 * (ASCII case-insensitive), in order of appearance.
 *
 * Resent messages (RFC 5322 §3.6.6): when the message has Resent-To,
 * Resent-Cc or Resent-Bcc fields, it is being re-sent to those addresses,
 * and only to them: the original To/Cc/Bcc received it already, and
 * sending them another copy is what `sendmail -t` in Postfix and
 * Sendmail avoids as well. The sender is then Resent-Sender, else
 * Resent-From, else as below.
 *
 * Sender (MAIL FROM): the Sender field's one address, else the first
 * address of From (a From with several addresses and no Sender gets a
 * warning: RFC 5322 wants a Sender then). A sender field given twice is an
 * error (which one was meant?), as is a message with no sender at all or
 * no recipient: nothing is sent.
 *
 * Errors name the line and the field: "raw_email: line 3 (To): ...".
 */
#ifndef SC_RAW_ENVELOPE_H
#define SC_RAW_ENVELOPE_H

#include <smtp-connector/message.h>

struct raw_envelope {
	struct sc_address_list senders; /* the sender field's addresses; the
	                                   envelope sender is senders.v[0] */
	struct sc_address_list rcpt;
	int smtputf8; /* UTF-8 in an address or a header field */
	int eightbit; /* 8-bit bytes anywhere in the message */
};

/* Fill `e` from the fields of `m` (see above). `r` takes warnings. `e` is
 * initialised first, so raw_envelope_free() is always safe. */
int raw_envelope_get(const struct sc_rawmsg *m, struct sc_result *r, struct raw_envelope *e,
                     struct sc_error *err);
void raw_envelope_free(struct raw_envelope *e);

/* True for the fields that must not reach the recipients: Bcc and
 * Resent-Bcc. A sc_rawmsg_without() predicate. */
int raw_envelope_hidden(const struct sc_rawmsg *m, size_t i, void *arg);

#endif
