#!/usr/bin/python3
"""SMTP smuggling (CVE-2023-51764 and kin) against `smtp-connector serve`:
every end-of-data marker other than <CRLF>.<CRLF>, and bare LF, bare CR
or NUL anywhere in DATA, is refused with a 5xx and the connection is
closed, so the bytes after it can never become a second message. Also
dot-unstuffing and an end marker split across TCP segments."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import contains, eq, run, true  # noqa: E402
from servelib import Client, Serve, envelope_ok  # noqa: E402

SMUGGLED = (b"MAIL FROM:<admin@bank.example>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\n"
            b"From: admin@bank.example\r\nSubject: smuggled\r\n\r\npay now\r\n.\r\n")

MARKERS = {
    "<LF>.<LF>": b"\n.\n",
    "<CR>.<CR>": b"\r.\r",
    "<LF>.<CRLF>": b"\n.\r\n",
    "<CRLF>.<LF>": b"\r\n.\n",
    "<CR>.<LF>": b"\r.\n",
    "<CRLF>.<CR>": b"\r\n.\r",
    "<CR><CR>.<CR><LF>": b"\r\r.\r\n",
}


def refused_and_closed(srv, payload, what):
    c = Client(srv.port)
    envelope_ok(c)
    c.send(payload)
    code, lines = c.reply()
    true(500 <= code < 600, "%s: a 5xx reply, got %s" % (what, lines))
    true(c.closed(), "%s: the connection is closed" % what)
    return lines[0]


def test_every_other_end_marker_is_refused_never_split():
    with Serve() as srv:
        for name, marker in MARKERS.items():
            payload = (b"From: a@example.com\r\nSubject: first\r\n\r\nhello" + marker + SMUGGLED +
                       b"\r\n.\r\n")
            refused_and_closed(srv, payload, name)
        time.sleep(0.3)
        eq(srv.index(), [], "no message stored at all: neither the first nor a smuggled one")
        eq(len(os.listdir(os.path.join(srv.maildir, "new"))), 0, "Maildir new/ empty")
        eq(os.listdir(os.path.join(srv.dir, "state", "serve-spool")), [], "spool empty")
        contains(srv.log(), "DATA refused", "logged")


def test_bare_lf_bare_cr_and_nul_in_data_refused():
    with Serve() as srv:
        cases = {"bare LF": (b"Subject: x\r\n\r\nline one\nline two\r\n.\r\n", "bare <LF>"),
                 "bare CR": (b"Subject: x\r\n\r\nline one\rline two\r\n.\r\n", "bare <CR>"),
                 "NUL": (b"Subject: x\r\n\r\nnul \0 here\r\n.\r\n", "NUL"),
                 "bare LF in the header": (b"Subject: x\nBcc: y@example.com\r\n\r\nb\r\n.\r\n",
                                           "bare <LF>")}
        for name, (payload, needle) in cases.items():
            line = refused_and_closed(srv, payload, name)
            contains(line, needle, "the reply names the problem")
        eq(srv.index(), [], "nothing stored")


def test_smuggling_attempt_in_separate_writes():
    """The marker and the smuggled commands in their own TCP segments."""
    with Serve() as srv:
        c = Client(srv.port)
        envelope_ok(c)
        c.send(b"Subject: first\r\n\r\nhello")
        time.sleep(0.1)
        c.send(b"\n.\n")
        code, lines = c.reply()
        eq(code // 100, 5, "refused at the bare LF: %s" % lines)
        true(c.closed(), "closed")
        eq(srv.index(), [], "nothing stored")


def test_dot_unstuffing_and_marker_split_byte_by_byte():
    body = b"Subject: dots\r\n\r\n..one dot\r\n...two dots\r\n.\tdot tab\r\nend\r\n"
    with Serve() as srv:
        c = Client(srv.port)
        envelope_ok(c)
        for b in body + b".\r\n":  # one byte a segment: the end marker spans reads
            c.send(bytes([b]))
        eq(c.reply()[0], 250, "accepted")
        eq(c.cmd("QUIT")[0], 221, "QUIT")
        srv.wait_messages(1)
        got = srv.raw_files()[0].split(b"Delivered-To: b@example.com\r\n", 1)[1]
        eq(got, b"Subject: dots\r\n\r\n.one dot\r\n..two dots\r\n\tdot tab\r\nend\r\n",
           "unstuffed (RFC 5321 4.5.2), nothing else changed")


def test_empty_message_and_pipelined_second_message_are_two_messages():
    """The legitimate case: two messages, each ended by <CRLF>.<CRLF>."""
    with Serve() as srv:
        c = Client(srv.port)
        envelope_ok(c)
        c.send(b"Subject: one\r\n\r\nfirst\r\n.\r\n" + b"MAIL FROM:<a@example.com>\r\n"
               b"RCPT TO:<b@example.com>\r\nDATA\r\nSubject: two\r\n\r\nsecond\r\n.\r\n")
        eq([c.reply()[0] for _ in range(5)], [250, 250, 250, 354, 250], "replies")
        c.cmd("MAIL FROM:<a@example.com>")
        c.cmd("RCPT TO:<b@example.com>")
        c.cmd("DATA")
        c.send(b".\r\n")
        eq(c.reply()[0], 250, "empty message")
        srv.wait_messages(3)
        eq([i["subject"] for i in srv.index()], ["one", "two", ""], "three messages")
        eq(srv.index()[2]["size"], 0, "the empty one is empty")


def test_long_lines_and_commands():
    with Serve(config={"limits": {"line_length": 1000}}) as srv:
        c = Client(srv.port)
        envelope_ok(c)
        c.send(b"Subject: long\r\n\r\n" + b"y" * 1200 + b"\r\n.\r\n")
        code, lines = c.reply()
        eq(code, 500, "a line over line_length: %s" % lines)
        eq(c.cmd("NOOP")[0], 250, "the session goes on")
        c.send(b"NOOP " + b"z" * 20000 + b"\r\n")
        eq(c.reply()[0], 500, "a command line over the limit")
        eq(c.cmd("NOOP")[0], 250, "and then a normal one")
        eq(srv.index(), [], "nothing stored")


run(globals())
