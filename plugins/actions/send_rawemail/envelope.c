/* The envelope of a raw message from its header fields (rules in
 * envelope.h). */
#include "envelope.h"

#include <stdlib.h>
#include <string.h>

static const char *const plain_rcpt[] = {"To", "Cc", "Bcc", NULL};
static const char *const resent_rcpt[] = {"Resent-To", "Resent-Cc", "Resent-Bcc", NULL};

static int is_any(const struct sc_rawmsg *m, size_t i, const char *const *names)
{
	for (; *names; names++)
		if (sc_rawmsg_is(m, i, *names))
			return 1;
	return 0;
}

/* The addresses of field `i`; errors name its line and name. */
static int field_addresses(const struct sc_rawmsg *m, size_t i, struct sc_address_list *out,
                           struct sc_error *err)
{
	size_t len = 0;
	char *v = sc_rawmsg_value(m, i, &len);
	if (!v)
		return sc_error_set(err, SC_ENOMEM, "out of memory");
	int rc = sc_address_list_parse(v, len, out, err);
	free(v);
	if (rc)
		sc_error_prefix(err, "raw_email: line %zu (%.*s)", m->f[i].line,
		                (int)m->f[i].name_len, m->text + m->f[i].start);
	return rc;
}

static int recipients(const struct sc_rawmsg *m, const char *const *names,
                      struct sc_address_list *rcpt, struct sc_error *err)
{
	for (size_t i = 0; i < m->n; i++) {
		if (!is_any(m, i, names))
			continue;
		struct sc_address_list l = {NULL, 0};
		int rc = field_addresses(m, i, &l, err);
		for (size_t k = 0; !rc && k < l.n; k++)
			if (sc_address_list_add_unique(rcpt, &l.v[k]))
				rc = sc_error_set(err, SC_ENOMEM, "out of memory");
		sc_address_list_free(&l);
		if (rc)
			return rc;
	}
	return SC_OK;
}

/* The first sender field present among `names` (in that order of
 * preference), given once. SC_OK with nothing filled when none is. */
static int sender_field(const struct sc_rawmsg *m, const char *const *names, size_t *which,
                        const char **name, struct sc_error *err)
{
	for (; *names; names++) {
		size_t i = sc_rawmsg_find(m, *names, 0);
		if (i == m->n)
			continue;
		size_t j = sc_rawmsg_find(m, *names, i + 1);
		if (j < m->n)
			return sc_error_set(err, SC_EINPUT,
			                    "raw_email: %s is given twice (lines %zu "
			                    "and %zu); give it once, so the sender is not a guess",
			                    *names, m->f[i].line, m->f[j].line);
		*which = i;
		*name = *names;
		return SC_OK;
	}
	return SC_OK;
}

static int sender(const struct sc_rawmsg *m, int resent, struct sc_result *r,
                  struct raw_envelope *e, struct sc_error *err)
{
	static const char *const plain[] = {"Sender", "From", NULL};
	static const char *const with_resent[] = {"Resent-Sender", "Resent-From", "Sender", "From",
	                                          NULL};
	size_t i = m->n;
	const char *name = NULL;
	int rc = sender_field(m, resent ? with_resent : plain, &i, &name, err);
	if (!rc && i == m->n)
		return sc_error_set(
		    err, SC_EINPUT,
		    "raw_email: the message has no From header "
		    "field, so there is no sender; add one (\"From: soc@corp.example\"). "
		    "Nothing was sent");
	if (!rc)
		rc = field_addresses(m, i, &e->senders, err);
	if (rc)
		return rc;
	if (e->senders.n == 0)
		return sc_error_set(err, SC_EINPUT,
		                    "raw_email: line %zu (%s) has no address, so "
		                    "there is no sender. Nothing was sent",
		                    m->f[i].line, name);
	if (e->senders.n > 1 && strstr(name, "Sender"))
		return sc_error_set(err, SC_EINPUT,
		                    "raw_email: line %zu (%s) must hold one address, "
		                    "not %zu",
		                    m->f[i].line, name, e->senders.n);
	if (e->senders.n > 1)
		sc_result_warn(r,
		               "%s has %zu addresses and there is no Sender field; the envelope "
		               "sender is the first, %s",
		               name, e->senders.n, e->senders.v[0].addr);
	return SC_OK;
}

int raw_envelope_hidden(const struct sc_rawmsg *m, size_t i, void *arg)
{
	(void)arg;
	return sc_rawmsg_is(m, i, "Bcc") || sc_rawmsg_is(m, i, "Resent-Bcc");
}

/* UTF-8 in the header fields that are sent: a UTF-8 display name in a
 * Bcc field (removed before sending) must not demand SMTPUTF8. */
static int sent_headers_8bit(const struct sc_rawmsg *m)
{
	for (size_t i = 0; i < m->n; i++) {
		if (raw_envelope_hidden(m, i, NULL))
			continue;
		if (sc_has_8bit(m->text + m->f[i].start, m->f[i].end - m->f[i].start))
			return 1;
	}
	return 0;
}

int raw_envelope_get(const struct sc_rawmsg *m, struct sc_result *r, struct raw_envelope *e,
                     struct sc_error *err)
{
	memset(e, 0, sizeof *e);
	int resent = 0;
	for (size_t i = 0; i < m->n && !resent; i++)
		resent = is_any(m, i, resent_rcpt);
	int rc = sender(m, resent, r, e, err);
	if (!rc)
		rc = recipients(m, resent ? resent_rcpt : plain_rcpt, &e->rcpt, err);
	if (!rc && e->rcpt.n == 0)
		rc = sc_error_set(err, SC_EINPUT,
		                  "raw_email: the message has no recipient: no "
		                  "address in To, Cc or Bcc. Nothing was sent");
	if (rc)
		return rc;
	int headers = m->header_8bit && sent_headers_8bit(m);
	/* Only the addr-spec goes into MAIL FROM / RCPT TO; a UTF-8 display
	 * name counts through the header check. */
	e->smtputf8 = headers || sc_str_8bit(e->senders.v[0].addr);
	for (size_t i = 0; i < e->rcpt.n; i++)
		e->smtputf8 |= sc_str_8bit(e->rcpt.v[i].addr);
	e->eightbit = headers || m->body_8bit;
	return SC_OK;
}

void raw_envelope_free(struct raw_envelope *e)
{
	sc_address_list_free(&e->senders);
	sc_address_list_free(&e->rcpt);
}
