#!/usr/bin/python3
"""send rawemail against real SMTP peers: the envelope comes from the
headers (RFC 5322 parsing, de-duplicated), Bcc fields never reach the
recipients, every other byte arrives as given (CRLF line ends), 8-bit and
UTF-8 content goes only where the server can carry it, and the `\\n` rule."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Aiosmtpd, SmtpSink, asset, contains, eq, not_contains, run,  # noqa: E402
                     run_connector, true)


def send(srv, raw, **asset_kw):
    return run_connector({"action": "send rawemail", "asset": asset(srv.port, **asset_kw),
                          "parameters": {"raw_email": raw}})


def ok(r):
    eq(r.rc, 0, "exit status\n%s" % r)
    eq(r.result["status"], "success", "status")
    ar = r.result["action_results"][0]
    eq(ar["message"], "Email sent", "message")
    return ar["data"][0]


def failed(r, srv, *needles):
    """Exit 1, a failed result whose message holds every needle, and
    nothing delivered."""
    eq(r.rc, 1, "exit status\n%s" % r)
    msg = r.result["action_results"][0]["message"]
    for n in needles:
        contains(msg, n, "result message")
    eq(len(srv.messages()), 0, "messages delivered")
    return msg


def crlf(text):
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


def body_of(raw):
    return raw.split(b"\r\n\r\n", 1)[1]


IDS = "Date: Mon, 2 Nov 2026 10:00:00 +0000\nMessage-ID: <given.1@corp.example>\n"


def test_quoted_commas_groups_and_dedup():
    raw = ("From: \"Ops, Night\" <ops@corp.example>\n"
           "To: \"Doe, Jane\" <jane@corp.example>, soc@corp.example\n"
           "Cc: Team: a@corp.example, \"Smith, J\" <j@corp.example>;, SOC@corp.example\n"
           "Subject: hi\n" + IDS + "\nbody\n")
    with Aiosmtpd() as srv:
        d = ok(send(srv, raw))
        m = srv.wait_messages(1)[0]
        eq(m["mail_from"], "ops@corp.example", "MAIL FROM")
        eq(m["rcpt_tos"], ["jane@corp.example", "soc@corp.example", "a@corp.example",
                           "j@corp.example"], "RCPT TO, de-duplicated")
        eq(m["raw"], crlf(raw), "bytes as given")
        eq(d["accepted"], m["rcpt_tos"], "accepted")
        eq(d["refused"], [], "refused")
        eq(d["message_id"], "<given.1@corp.example>", "message_id")
        eq(d["added_headers"], [], "added_headers")
        contains(d["smtp_reply"], "250", "smtp_reply")


def test_bcc_removed_adjacent_and_folded():
    head = ("From: ops@corp.example\nTo: soc@corp.example\n")
    bccs = ("Bcc: hidden1@corp.example\n"
            "BCC: hidden2@corp.example\n"
            "Subject: folded bcc follows\n"
            "bcc: \"Hidden, Three\"\n <hidden3@corp.example>,\n\thidden4@corp.example\n")
    tail = IDS + "\nsee Bcc: not-a-header@corp.example\n"
    with Aiosmtpd() as srv:
        ok(send(srv, head + bccs + tail))
        m = srv.wait_messages(1)[0]
        eq(m["rcpt_tos"], ["soc@corp.example", "hidden1@corp.example", "hidden2@corp.example",
                           "hidden3@corp.example", "hidden4@corp.example"], "RCPT TO")
        eq(m["raw"], crlf(head + "Subject: folded bcc follows\n" + tail), "Bcc fields gone")
        not_contains(m["raw"].split(b"\r\n\r\n")[0].lower(), b"hidden", "headers")
        eq(m["msg"].get_all("Bcc"), None, "Bcc in the parsed message")


def test_bcc_only_recipients():
    raw = "From: ops@corp.example\nBcc: only@corp.example\nSubject: x\n" + IDS + "\nhi\n"
    with Aiosmtpd() as srv:
        ok(send(srv, raw))
        m = srv.wait_messages(1)[0]
        eq(m["rcpt_tos"], ["only@corp.example"], "RCPT TO")
        not_contains(m["raw"], b"only@", "message")


def test_resent_fields_replace_the_original_recipients():
    raw = ("Resent-From: fwd@corp.example\n"
           "Resent-To: \"Desk, IR\" <ir@corp.example>\n"
           "Resent-Bcc: audit@corp.example\n"
           "From: origin@corp.example\nTo: original@corp.example\nBcc: old-hidden@corp.example\n"
           + IDS + "\noriginal text\n")
    with Aiosmtpd() as srv:
        ok(send(srv, raw))
        m = srv.wait_messages(1)[0]
        eq(m["mail_from"], "fwd@corp.example", "MAIL FROM (Resent-From)")
        eq(m["rcpt_tos"], ["ir@corp.example", "audit@corp.example"], "RCPT TO (Resent-* only)")
        not_contains(m["raw"], b"audit@", "Resent-Bcc removed")
        not_contains(m["raw"], b"old-hidden@", "Bcc removed")
        contains(m["raw"], b"To: original@corp.example\r\n", "original To kept")


def test_sender_field_is_the_envelope_sender():
    raw = ("From: Boss <boss@corp.example>, Aide <aide@corp.example>\n"
           "Sender: aide@corp.example\nTo: soc@corp.example\n" + IDS + "\nx\n")
    with Aiosmtpd() as srv:
        ok(send(srv, raw))
        eq(srv.wait_messages(1)[0]["mail_from"], "aide@corp.example", "MAIL FROM")


def test_date_and_message_id_added_only_when_absent():
    raw = "From: ops@corp.example\nTo: soc@corp.example\nSubject: ids\n\nhello\n"
    with Aiosmtpd() as srv:
        d = ok(send(srv, raw))
        m = srv.wait_messages(1)[0]
        eq(sorted(d["added_headers"]), ["Date", "Message-ID"], "added_headers")
        eq(m["msg"]["Message-ID"], d["message_id"], "Message-ID reported")
        true(d["message_id"].endswith("@corp.example>"), "Message-ID domain is the sender's")
        true(m["msg"]["Date"].datetime is not None, "Date parses")
        true(m["raw"].endswith(crlf(raw)), "the given bytes follow the added fields")
    raw2 = "Message-ID: <mine@x.example>\nFrom: ops@corp.example\nTo: soc@corp.example\n\nhi\n"
    with Aiosmtpd() as srv:
        d = ok(send(srv, raw2))
        m = srv.wait_messages(1)[0]
        eq(d["added_headers"], ["Date"], "only Date added")
        eq(d["message_id"], "<mine@x.example>", "message_id as given")
        eq(m["msg"].get_all("Message-ID"), ["<mine@x.example>"], "one Message-ID")


def test_existing_ids_are_found_in_any_layout():
    # bare CR line ends, and the obsolete "Name :" form (RFC 5322 4.5.3)
    for raw in ["From: ops@corp.example\rTo: soc@corp.example\r" + IDS.replace("\n", "\r") + "\rhi\r",
                "From: ops@corp.example\nTo: soc@corp.example\nDate : Mon, 2 Nov 2026 10:00:00 +0000\n"
                "Message-ID\t: <given.1@corp.example>\n\nhi\n"]:
        with Aiosmtpd() as srv:
            d = ok(send(srv, raw))
            m = srv.wait_messages(1)[0]
            eq(d["added_headers"], [], "added_headers")
            eq(m["raw"], crlf(raw.replace("\r", "\n")), "bytes as given, nothing added")


def test_utf8_body_goes_as_8bit():
    raw = ("From: ops@corp.example\nTo: soc@corp.example\nSubject: plain ascii\n" + IDS +
           "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
           "Content-Transfer-Encoding: 8bit\n\nGrüße, üñîçøðé — 東京\n")
    with Aiosmtpd() as srv:
        ok(send(srv, raw))
        m = srv.wait_messages(1)[0]
        eq(m["raw"], crlf(raw), "8-bit bytes as given")
        eq(m["msg"].get_content(), "Grüße, üñîçøðé — 東京\n", "decoded body")


def test_utf8_body_refused_without_8bitmime():
    if not SmtpSink.available():
        from harness import skip
        skip("postfix smtp-sink not installed")
    raw = "From: ops@corp.example\nTo: soc@corp.example\n" + IDS + "\nGrüße\n"
    with SmtpSink(["-8"]) as srv:  # -8: offers neither 8BITMIME nor SMTPUTF8
        r = send(srv, raw)
        failed(r, srv, "8BITMIME", "nothing was sent")


def test_utf8_header_needs_smtputf8():
    raw = "From: Jürgen <ops@corp.example>\nTo: soc@corp.example\nSubject: Grüße\n" + IDS + "\nx\n"
    with Aiosmtpd(smtputf8=False) as srv:
        r = send(srv, raw)
        failed(r, srv, "SMTPUTF8", "nothing was sent")
        true(not any(c.startswith("MAIL") for c in srv.commands()), "no MAIL FROM sent")
    with Aiosmtpd() as srv:
        ok(send(srv, raw))
        m = srv.wait_messages(1)[0]
        eq(m["raw"], crlf(raw), "UTF-8 header bytes as given")
        eq(str(m["msg"]["Subject"]), "Grüße", "Subject")


def test_utf8_only_in_a_removed_bcc_needs_nothing():
    raw = "From: ops@corp.example\nTo: soc@corp.example\nBcc: Jürgen <j@corp.example>\n" + IDS + "\nx\n"
    with Aiosmtpd(smtputf8=False) as srv:
        ok(send(srv, raw))
        m = srv.wait_messages(1)[0]
        eq(m["rcpt_tos"], ["soc@corp.example", "j@corp.example"], "RCPT TO")
        not_contains(m["raw"], "Jürgen".encode(), "Bcc removed")


def test_utf8_envelope_address_uses_smtputf8():
    raw = "From: ops@corp.example\nTo: Jörg <jörg@corp.example>\n" + IDS + "\nx\n"
    with Aiosmtpd() as srv:
        ok(send(srv, raw))
        m = srv.wait_messages(1)[0]
        eq(m["rcpt_tos"], ["jörg@corp.example"], "RCPT TO")
        true(m["smtputf8"], "SMTPUTF8 on MAIL FROM")
    with Aiosmtpd(smtputf8=False) as srv:
        failed(send(srv, raw), srv, "jörg@corp.example", "SMTPUTF8")


def test_backslash_n_in_a_one_line_message():
    one_line = ("From: ops@corp.example\\nTo: soc@corp.example\\nSubject: typed\\n" +
                IDS.replace("\n", "\\n") + "\\nline one\\nline two")
    with Aiosmtpd() as srv:
        ok(send(srv, one_line))
        m = srv.wait_messages(1)[0]
        eq(m["msg"]["Subject"], "typed", "Subject")
        eq(body_of(m["raw"]), b"line one\r\nline two\r\n", "body lines")


def test_real_multiline_message_keeps_backslash_n():
    raw = ("From: ops@corp.example\nTo: soc@corp.example\nSubject: paths\n" + IDS +
           "\nsaved to C:\\new\\notes.txt\nliteral \\n stays\n")
    with Aiosmtpd() as srv:
        ok(send(srv, raw))
        m = srv.wait_messages(1)[0]
        eq(body_of(m["raw"]), b"saved to C:\\new\\notes.txt\r\nliteral \\n stays\r\n", "body")


def test_line_endings_and_leading_dots():
    raw = ("From: ops@corp.example\r\nTo: soc@corp.example\n" + IDS +
           "\n.leading dot\n..two dots\n.\nafter a lone dot\n")
    with Aiosmtpd() as srv:
        ok(send(srv, raw))
        m = srv.wait_messages(1)[0]
        eq(m["raw"], crlf(raw), "dots survive, CRLF everywhere")


def test_missing_from():
    raw = "To: soc@corp.example\nSubject: no sender\n\nhi\n"
    with Aiosmtpd() as srv:
        failed(send(srv, raw), srv, "no From")
        eq(srv.commands(), [], "no connection used")
    with Aiosmtpd() as srv:
        failed(send(srv, "From: undisclosed:;\nTo: soc@corp.example\n\nhi\n"), srv,
               "line 1 (From)", "no address")


def test_missing_recipients():
    with Aiosmtpd() as srv:
        failed(send(srv, "From: ops@corp.example\nSubject: nobody\n\nhi\n"), srv,
               "no recipient")
        failed(send(srv, "From: ops@corp.example\nTo: undisclosed-recipients:;\n\nhi\n"), srv,
               "no recipient")
        eq(srv.commands(), [], "no connection used")


def test_errors_name_the_line():
    with Aiosmtpd() as srv:
        msg = failed(send(srv, "From: ops@corp.example\nTo: soc@corp.example\nnot a header\n"
                          "\nbody\n"), srv, "line 3", "not a header")
        contains(msg, "not a header", "quoted line")
        failed(send(srv, "From: ops@corp.example\nTo: \"Doe, Jane <jane@corp.example>\n\nx\n"),
               srv, "line 2 (To)")
        failed(send(srv, " From: ops@corp.example\nTo: soc@corp.example\n\nx\n"), srv,
               "line 1", "continuation")
        failed(send(srv, "From: a@corp.example\nFrom: b@corp.example\nTo: s@corp.example\n\nx\n"),
               srv, "From is given twice", "lines 1 and 2")
        eq(srv.commands(), [], "no connection used")


def test_partial_refusal_is_reported():
    raw = "From: ops@corp.example\nTo: soc@corp.example, bad@corp.example\n" + IDS + "\nx\n"
    with Aiosmtpd(refuse_rcpt="^bad@") as srv:
        r = send(srv, raw)
        eq(r.rc, 0, "exit status\n%s" % r)
        ar = r.result["action_results"][0]
        contains(ar["message"], "Email sent to 1 of 2 recipients", "message")
        eq(ar["data"][0]["accepted"], ["soc@corp.example"], "accepted")
        eq(ar["data"][0]["refused"][0]["address"], "bad@corp.example", "refused")
        eq(srv.wait_messages(1)[0]["rcpt_tos"], ["soc@corp.example"], "RCPT TO")


if __name__ == "__main__":
    run(globals())
