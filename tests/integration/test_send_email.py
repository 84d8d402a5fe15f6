#!/usr/bin/python3
"""Integration tests of the "send email" action (issue 3) against real peers.

Every message the server received is parsed with Python's email package
(policy=default) and checked for structure, headers, decoded content and the
envelope; every refusal is checked to have reached the server as nothing at
all (no connection, or at least no MAIL, where a connection is needed to
learn what the server offers)."""

import email.utils
import hashlib
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Aiosmtpd, SmtpSink, asset, contains, eq, make_ca, mkdtemp,  # noqa: E402
                     not_contains, run, run_connector, true, vault)

SENDER = "soar@corp.example"


# --------------------------------------------------------------------------
# helpers

def request(srv, params, asset_kw=None, **extra):
    """A send email request for this server (no TLS, no auth)."""
    a = asset(srv.port, sender_address=SENDER)
    a.update(asset_kw or {})
    req = {"action": "send email", "asset": a, "parameters": params}
    req.update(extra)
    return req


def send(srv, params, asset_kw=None, **extra):
    return run_connector(request(srv, params, asset_kw, **extra))


def ok(r, n=1):
    """The run succeeded with n parameter sets; returns the result."""
    eq(r.rc, 0, "exit status\n%s" % r)
    res = r.result
    eq(res["status"], "success", "status\n%s" % r)
    eq(res["summary"], {"total_objects": n, "total_objects_successful": n}, "summary")
    eq(len(res["action_results"]), n, "action results")
    for ar in res["action_results"]:
        eq(ar["status"], "success", "action result status")
    return res


def failed(r, *needles):
    """The run failed with exit 1; its (first) action result message names
    every needle.  Returns that message."""
    eq(r.rc, 1, "exit status\n%s" % r)
    res = r.result
    eq(res["status"], "failed", "status")
    msg = res["action_results"][0]["message"]
    for n in needles:
        contains(msg, n, "failure message")
    not_contains(msg, "Traceback", "failure message")
    return msg


def nothing_sent(srv, allow_connect=False):
    """The server received no message; unless allow_connect, not even a
    connection (every check runs before the connection is opened)."""
    cmds = srv.commands()
    for c in cmds:
        for verb in ("MAIL", "RCPT", "DATA", "BDAT"):
            true(not c.startswith(verb), "no %s sent (got %r)" % (verb, cmds))
    if not allow_connect:
        eq([line for line in srv.log_lines() if line.startswith("CONNECT")], [],
           "connections opened by a request that must fail before connecting")
    eq(srv.messages(), [], "messages received")


def connects(srv):
    return sum(1 for line in srv.log_lines() if line in ("CONNECT", "CONNECT-TLS"))


def header_block(raw):
    end = raw.find(b"\r\n\r\n")
    true(end >= 0, "message has a CRLF CRLF header/body separator")
    return raw[:end]


def header_fields(raw):
    """Top-level header fields as received: [(name, unfolded value bytes)]."""
    fields = []
    for line in header_block(raw).split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] = (fields[-1][0], fields[-1][1] + line)
        else:
            name, _, value = line.partition(b":")
            fields.append((name.decode("ascii", "replace"), value.strip()))
    return fields


def count_header(raw, name):
    return sum(1 for n, _ in header_fields(raw) if n.lower() == name.lower())


def check_wire(raw, ascii_headers=True):
    """Rules for every message on the wire: CRLF only, no line over 998
    octets, pure ASCII top-level headers (unless SMTPUTF8 is in use)."""
    eq(raw.count(b"\n"), raw.count(b"\r\n"), "bare LF on the wire")
    eq(raw.replace(b"\r\n", b"").count(b"\r"), 0, "bare CR on the wire")
    for i, line in enumerate(raw.split(b"\r\n")):
        true(len(line) <= 998, "line %d is %d octets (> 998): %r..." % (i, len(line), line[:60]))
    if ascii_headers:
        hb = header_block(raw)
        true(all(b < 0x80 for b in hb), "top-level headers are pure ASCII:\n%s"
             % hb.decode("utf-8", "replace"))


def one(srv):
    msgs = srv.wait_messages(1)
    eq(len(msgs), 1, "messages received")
    m = msgs[0]
    check_wire(m["raw"], ascii_headers=not m["smtputf8"])
    return m


def decoded_header(raw, name):
    """The top-level header's value decoded by email.header (RFC 2047 to
    the letter: whitespace between adjacent encoded words is dropped)."""
    import email.header
    values = [v for n, v in header_fields(raw) if n.lower() == name.lower()]
    eq(len(values), 1, "%s header lines" % name)
    return str(email.header.make_header(email.header.decode_header(values[0].decode("ascii"))))


def parse_utf8(raw):
    """A message with raw UTF-8 headers (SMTPUTF8), parsed as text so that
    Python gives str values instead of surrogate escapes."""
    import email.policy
    return email.message_from_string(raw.decode("utf-8").replace("\r\n", "\n"),
                                     policy=email.policy.default)


def addrs(header):
    """[(display_name, addr_spec)] of a parsed address header."""
    return [(a.display_name, a.addr_spec) for a in header.addresses]


def nl(s):
    return s.replace("\r\n", "\n")


def sha1(b):
    return hashlib.sha1(b).hexdigest()


# --------------------------------------------------------------------------
# addresses

def test_addresses_display_names_quotes_comments_semicolons():
    with Aiosmtpd() as srv:
        to = ('SOC <soc@corp.example>, "Doe, Jane" <jane@corp.example>; '
              'bob@corp.example (Bob Smith);carol@corp.example')
        r = send(srv, {"to": to, "body": "hi", "subject": "s"})
        ok(r)
        m = one(srv)
        eq(addrs(m["msg"]["To"]), [("SOC", "soc@corp.example"), ("Doe, Jane", "jane@corp.example"),
                                   ("Bob Smith", "bob@corp.example"), ("", "carol@corp.example")],
           "To as parsed by Python")
        eq(m["rcpt_tos"], ["soc@corp.example", "jane@corp.example", "bob@corp.example",
                           "carol@corp.example"], "envelope recipients")
        eq(m["mail_from"], SENDER, "MAIL FROM")
        eq(count_header(m["raw"], "To"), 1, "To header lines")


def test_addresses_group_and_mailto_form():
    with Aiosmtpd() as srv:
        r = send(srv, {"to": "Team: a@corp.example, b@corp.example;, c@corp.example",
                       "cc": "John Doe<mailto:john@corp.example>",
                       "from": "Alerts Bot <mailto:alerts@corp.example>", "body": "x"})
        res = ok(r)
        m = one(srv)
        eq(addrs(m["msg"]["To"]), [("", "a@corp.example"), ("", "b@corp.example"),
                                   ("", "c@corp.example")], "To (group members)")
        eq(addrs(m["msg"]["Cc"]), [("John Doe", "john@corp.example")], "Cc from the mailto form")
        eq(addrs(m["msg"]["From"]), [("Alerts Bot", "alerts@corp.example")], "From from the mailto form")
        not_contains(m["raw"], b"mailto:", "raw message")
        eq(m["mail_from"], "alerts@corp.example", "MAIL FROM is the bare address")
        eq(m["rcpt_tos"], ["a@corp.example", "b@corp.example", "c@corp.example",
                           "john@corp.example"], "envelope")
        eq(res["action_results"][0]["parameter"]["from"], "Alerts Bot <alerts@corp.example>",
           "parameter.from")


def test_envelope_dedup_and_bcc_hidden():
    with Aiosmtpd() as srv:
        r = send(srv, {"to": "Ann <Ann@Corp.example>, bob@corp.example",
                       "cc": "ann@corp.example, Carl <carl@corp.example>",
                       "bcc": "BOB@corp.example, hidden@corp.example, Hidden@CORP.EXAMPLE",
                       "body": "x"})
        res = ok(r)
        m = one(srv)
        eq(m["rcpt_tos"], ["Ann@Corp.example", "bob@corp.example", "carl@corp.example",
                           "hidden@corp.example"], "envelope = to+cc+bcc de-duplicated, in order")
        eq(sorted(res["action_results"][0]["data"][0]["accepted"]),
           sorted(m["rcpt_tos"]), "data.accepted")
        eq(addrs(m["msg"]["Cc"]), [("", "ann@corp.example"), ("Carl", "carl@corp.example")],
           "Cc as given")
        eq(count_header(m["raw"], "Bcc"), 0, "Bcc header lines")
        not_contains(m["raw"].lower(), b"hidden@", "Bcc address anywhere in the message")
        eq(m["msg"]["Bcc"], None, "Bcc header")


def test_bcc_only_recipient_with_to():
    with Aiosmtpd() as srv:
        ok(send(srv, {"to": "a@corp.example", "bcc": "secret@corp.example", "body": "x"}))
        m = one(srv)
        eq(m["rcpt_tos"], ["a@corp.example", "secret@corp.example"], "envelope")
        not_contains(m["raw"], b"secret", "raw message")


def test_malformed_address_fails_before_connecting():
    cases = [
        ("to", "not an address"),
        ("to", "a@corp.example, b@@corp.example"),
        ("cc", "Jane <jane@corp.example"),
        ("bcc", "ok@corp.example; @corp.example"),
        ("from", "nobody-at-all"),
        ("to", '"unterminated <x@corp.example>'),
    ]
    with Aiosmtpd() as srv:
        for param, value in cases:
            p = {"to": "good@corp.example", "body": "x"}
            p[param] = value
            r = send(srv, p)
            msg = failed(r, param + ":")
            bad = value.split(",")[-1].split(";")[-1].strip() if param in ("to", "bcc") else value
            true(bad in msg or bad.strip('"<') in msg,
                 "message names the bad address %r: %r" % (bad, msg))
        nothing_sent(srv)


def test_crlf_in_address_is_refused():
    with Aiosmtpd() as srv:
        for param, value in [("to", "a@corp.example\r\nRCPT TO:<evil@corp.example>"),
                             ("cc", "Eve <eve@corp.example>\nBcc: x@corp.example"),
                             ("bcc", "a@corp.example\r\nDATA"),
                             ("from", "x@corp.example\r\nRCPT TO:<evil@corp.example>")]:
            p = {"to": "good@corp.example", "body": "x"}
            p[param] = value
            msg = failed(send(srv, p), param + ":")
            contains(msg.lower(), "line break", "message says why")
        nothing_sent(srv)


def test_no_recipient_is_an_error():
    with Aiosmtpd() as srv:
        failed(send(srv, {"to": " , ; ", "body": "x"}), "to:")
        nothing_sent(srv)


# --------------------------------------------------------------------------
# sender

def test_sender_precedence():
    full = {"username": "user@corp.example", "sender_address": "Asset <sa@corp.example>"}
    plat = {"email_from": "Platform <plat@corp.example>"}
    cases = [
        # (param from, platform, asset keys, expected From, expected MAIL FROM)
        ("Param <param@corp.example>", plat, full, ("Param", "param@corp.example")),
        (None, plat, full, ("Platform", "plat@corp.example")),
        (None, None, full, ("Asset", "sa@corp.example")),
        (None, None, {"username": "user@corp.example"}, ("", "user@corp.example")),
        # an empty value falls through (the SOAR quirk of an empty
        # sender_address that blocks username is fixed, soar-smtp.md 4.1)
        ("", {"email_from": ""}, {"username": "user@corp.example", "sender_address": ""},
         ("", "user@corp.example")),
    ]
    with Aiosmtpd() as srv:
        for n, (frm, platform, akw, (name, addr)) in enumerate(cases, 1):
            a = asset(srv.port)
            a.update(akw)
            p = {"to": "rcpt@corp.example", "body": "case %d" % n}
            if frm is not None:
                p["from"] = frm
            req = {"action": "send email", "asset": a, "parameters": p}
            if platform is not None:
                req["platform"] = platform
            r = run_connector(req)
            eq(r.rc, 0, "case %d exit status\n%s" % (n, r))
            m = srv.wait_messages(n)[n - 1]
            eq(addrs(m["msg"]["From"]), [(name, addr)], "case %d: From" % n)
            eq(count_header(m["raw"], "From"), 1, "case %d: From header lines" % n)
            eq(m["mail_from"], addr, "case %d: MAIL FROM (bare address)" % n)
            pf = r.result["action_results"][0]["parameter"]["from"]
            eq(email.utils.parseaddr(pf), (name, addr), "case %d: parameter.from %r" % (n, pf))


def test_no_sender_is_an_error():
    with Aiosmtpd() as srv:
        r = run_connector({"action": "send email", "asset": asset(srv.port),
                           "parameters": {"to": "a@corp.example", "body": "x"}})
        failed(r, "from")
        nothing_sent(srv)


def test_from_in_headers_is_the_effective_from():
    """headers JSON wins; parameter.from must report the From that was sent."""
    with Aiosmtpd() as srv:
        r = send(srv, {"to": "a@corp.example", "body": "x",
                       "headers": {"From": "Hdr <hdr@corp.example>"}})
        res = ok(r)
        m = one(srv)
        eq(count_header(m["raw"], "From"), 1, "From header lines")
        eq(addrs(m["msg"]["From"]), [("Hdr", "hdr@corp.example")], "From")
        eq(email.utils.parseaddr(res["action_results"][0]["parameter"]["from"]),
           ("Hdr", "hdr@corp.example"), "parameter.from = the effective From")


# --------------------------------------------------------------------------
# headers

def test_standard_headers():
    with Aiosmtpd() as srv:
        before = time.time()
        r = send(srv, {"to": "SOC <soc@corp.example>", "cc": "Ops <ops@corp.example>, x@corp.example",
                       "from": "Alerts <alerts@Mail.Corp.example>", "subject": "Case 42", "body": "x"})
        res = ok(r)
        m = one(srv)
        msg, raw = m["msg"], m["raw"]
        for h in ("From", "To", "Cc", "Subject", "Date", "Message-ID", "MIME-Version"):
            eq(count_header(raw, h), 1, "%s header lines" % h)
        eq(msg["MIME-Version"], "1.0", "MIME-Version")
        eq(msg["Subject"], "Case 42", "Subject")
        eq(addrs(msg["Cc"]), [("Ops", "ops@corp.example"), ("", "x@corp.example")], "Cc")
        d = email.utils.parsedate_to_datetime(str(msg["Date"]))
        true(d.tzinfo is not None, "Date has a zone")
        true(abs(d.timestamp() - before) < 120, "Date is now (%s)" % msg["Date"])
        mid = str(msg["Message-ID"]).strip()
        true(re.fullmatch(r"<[A-Za-z0-9._%+=-]+@mail\.corp\.example>", mid, re.I),
             "Message-ID <...@sender-domain>: %r" % mid)
        data = res["action_results"][0]["data"][0]
        eq(data["message_id"], mid, "data.message_id")


def test_message_ids_are_unique():
    with Aiosmtpd() as srv:
        ok(send(srv, [{"to": "a@corp.example", "body": str(i)} for i in range(3)]), 3)
        ids = [str(m["msg"]["Message-ID"]) for m in srv.wait_messages(3)]
        eq(len(set(ids)), 3, "distinct Message-IDs %r" % ids)


def test_headers_as_object_and_as_json_string():
    hdrs = {"Reply-To": "SOC Desk <desk@corp.example>", "X-Case-Id": "CASE-42",
            "In-Reply-To": "<abc@corp.example>"}
    with Aiosmtpd() as srv:
        ok(send(srv, [{"to": "a@corp.example", "body": "x", "headers": hdrs},
                      {"to": "a@corp.example", "body": "x", "headers": json.dumps(hdrs)}]), 2)
        for m in srv.wait_messages(2):
            check_wire(m["raw"])
            eq(addrs(m["msg"]["Reply-To"]), [("SOC Desk", "desk@corp.example")], "Reply-To")
            eq(m["msg"]["X-Case-Id"], "CASE-42", "X-Case-Id")
            eq(m["msg"]["In-Reply-To"], "<abc@corp.example>", "In-Reply-To")
            for h in hdrs:
                eq(count_header(m["raw"], h), 1, "%s header lines" % h)


def test_headers_json_wins_and_replaces():
    with Aiosmtpd() as srv:
        ok(send(srv, {"to": "a@corp.example", "cc": "c@corp.example", "subject": "from the parameter",
                      "body": "x",
                      "headers": {"Subject": "from headers", "cc": "Other <other@corp.example>",
                                  "To": "Display <a@corp.example>"}}))
        m = one(srv)
        for h in ("Subject", "To", "Cc", "From"):
            eq(count_header(m["raw"], h), 1, "%s header lines" % h)
        eq(m["msg"]["Subject"], "from headers", "Subject (headers JSON beats subject)")
        not_contains(m["raw"], b"from the parameter", "raw message")
        eq(addrs(m["msg"]["Cc"]), [("Other", "other@corp.example")], "Cc from headers")
        eq(addrs(m["msg"]["To"]), [("Display", "a@corp.example")], "To from headers")


def test_bad_headers_are_refused_before_connecting():
    cases = [
        ({"Bad Name": "x"}, "Bad Name"),
        ({"X:Colon": "x"}, "X:Colon"),
        ({"X-Ümlaut": "x"}, "X-Ümlaut"),
        ({"X-Num": 42}, "X-Num"),
        ({"X-List": ["a", "b"]}, "X-List"),
        ({"X-Null": None}, "X-Null"),
        ({"X-Inject": "a\r\nBcc: evil@corp.example"}, "X-Inject"),
        ({"X-Lf": "a\nb"}, "X-Lf"),
        ({"Bcc": "evil@corp.example"}, "Bcc"),
        ({"bcc": "evil@corp.example"}, "Bcc"),
        ({"Reply-To": "not an address"}, "Reply-To"),
    ]
    with Aiosmtpd() as srv:
        for hdrs, name in cases:
            for form in (hdrs, json.dumps(hdrs)):
                r = send(srv, {"to": "a@corp.example", "body": "x", "headers": form})
                msg = failed(r, "headers")
                contains(msg, name, "message names the header")
        nothing_sent(srv)


def test_headers_not_an_object_is_refused():
    with Aiosmtpd() as srv:
        for h in ("[1, 2]", "not json {", '"a string"', "42"):
            failed(send(srv, {"to": "a@corp.example", "body": "x", "headers": h}), "headers:")
        nothing_sent(srv)


def test_crlf_in_subject_is_refused():
    with Aiosmtpd() as srv:
        for s in ("Hello\r\nBcc: evil@corp.example", "Hello\nX-Evil: 1", "Hello\rthere"):
            failed(send(srv, {"to": "a@corp.example", "body": "x", "subject": s}), "subject:")
        nothing_sent(srv)


# --------------------------------------------------------------------------
# encodings

LONG_SUBJECT = ("Прывітанне, свет — Überprüfung der Vorfälle №42: 安全警报 🚨 "
                "niveau élevé, très urgent, veuillez vérifier immédiatement")


def test_non_ascii_subject_and_display_names_rfc2047():
    with Aiosmtpd() as srv:
        to = ('Jürgen Müller <jm@corp.example>, "Ünïcödé, Näme" <u@corp.example>, '
              'Сяргей Іваноў-Доўгапрозвішчны <s@corp.example>, 王小明 <w@corp.example>')
        ok(send(srv, {"to": to, "from": "Sécurité SOC <soc@corp.example>",
                      "subject": LONG_SUBJECT, "body": "x"}))
        m = one(srv)
        eq(m["mail_options"].count("SMTPUTF8"), 0, "SMTPUTF8 for an ASCII envelope")
        hb = header_block(m["raw"])
        for line in hb.split(b"\r\n"):
            true(len(line) <= 78, "header line over 78 columns (%d): %r" % (len(line), line))
        contains(hb, b"=?", "encoded words in the headers")
        eq(m["msg"]["Subject"], LONG_SUBJECT, "decoded Subject")
        want = [("Jürgen Müller", "jm@corp.example"), ("Ünïcödé, Näme", "u@corp.example"),
                ("Сяргей Іваноў-Доўгапрозвішчны", "s@corp.example"), ("王小明", "w@corp.example")]
        eq([a for _, a in addrs(m["msg"]["To"])], [a for _, a in want], "To addresses")
        # Python's address parser keeps the white space between two encoded
        # words of one phrase (RFC 2047 6.2 says to drop it), so compare the
        # display names as email.header decodes them, and without blanks.
        eq([n.replace(" ", "") for n, _ in addrs(m["msg"]["To"])],
           [n.replace(" ", "") for n, _ in want], "To display names (blanks ignored)")
        text = decoded_header(m["raw"], "To")
        for name, _ in want:
            contains(text, name, "To decoded by email.header")
        eq(addrs(m["msg"]["From"]), [("Sécurité SOC", "soc@corp.example")], "decoded From")
        for n in ("To", "From", "Subject"):
            eq(count_header(m["raw"], n), 1, "%s header lines" % n)


def test_non_ascii_custom_header_value_encoded():
    with Aiosmtpd() as srv:
        ok(send(srv, {"to": "a@corp.example", "body": "x",
                      "headers": {"X-Note": "Überprüfung nötig — " * 5,
                                  "Reply-To": "Ünïcödé Desk <desk@corp.example>"}}))
        m = one(srv)
        for line in header_block(m["raw"]).split(b"\r\n"):
            true(len(line) <= 78, "header line over 78 columns: %r" % line)
        eq(str(m["msg"]["X-Note"]).strip(), ("Überprüfung nötig — " * 5).strip(), "X-Note")
        eq(addrs(m["msg"]["Reply-To"]), [("Ünïcödé Desk", "desk@corp.example")], "Reply-To")


def test_utf8_body_and_long_lines():
    body = ("Grüße aus Minsk: прывітанне\n" + "A" * 5000 + "\n" + "ü" * 3000 + "\n"
            ".leading dot\n.\n..two dots\nend\n")
    with Aiosmtpd() as srv:
        ok(send(srv, [{"to": "a@corp.example", "body": body},
                      {"to": "a@corp.example", "body": "B" * 5000}]), 2)
        msgs = srv.wait_messages(2)
        for m, want in zip(msgs, (body, "B" * 5000)):
            check_wire(m["raw"])
            msg = m["msg"]
            eq(msg.get_content_type(), "text/plain", "content type")
            eq(msg.get_content_charset(), "utf-8", "charset")
            contains(("quoted-printable", "base64"), msg["Content-Transfer-Encoding"].lower(),
                     "transfer encoding for a long line")
            eq(nl(msg.get_content()).rstrip("\n"), want.rstrip("\n"), "decoded body")


def test_html_long_line_within_998():
    html = ("<!DOCTYPE html><html><body><p>" + "word " * 1500 + "</p><p>" + "x" * 4000
            + "</p></body></html>")
    with Aiosmtpd() as srv:
        ok(send(srv, {"to": "a@corp.example", "body": html}))
        m = one(srv)
        msg = m["msg"]
        eq(msg.get_content_type(), "multipart/alternative", "root type")
        plain, rich = msg.get_payload()
        eq(nl(rich.get_content()), html, "HTML part as given")
        eq(rich.get_content_charset(), "utf-8", "HTML charset")
        eq(plain.get_content_charset(), "utf-8", "text charset")
        contains(plain.get_content(), "word word", "plain text")


def test_encoding_false_rejects_non_ascii_body():
    with Aiosmtpd() as srv:
        r = send(srv, {"to": "a@corp.example", "body": "Grüße"}, {"encoding": False})
        msg = failed(r, "body:", "encoding")
        nothing_sent(srv)
        r = send(srv, {"to": "a@corp.example", "body": "plain ascii"}, {"encoding": False})
        ok(r)
        m = one(srv)
        eq(nl(m["msg"].get_content()).rstrip("\n"), "plain ascii", "ASCII body with encoding false")
        not_contains(msg, "..", "message wording (SOAR's double period)")


def test_non_ascii_attachment_name_rfc2231():
    name = "Bericht über Q3 — 2024 (final).pdf"
    content = b"%PDF-1.4\n" + bytes(range(256)) * 4
    vd = vault({"rep": (content, {"name": name, "content_type": "application/pdf"})})
    with Aiosmtpd() as srv:
        ok(send(srv, {"to": "a@corp.example", "body": "see attached", "attachments": "rep"},
                vault_dir=vd))
        m = one(srv)
        parts = m["msg"].get_payload()
        att = parts[1]
        eq(att.get_filename(), name, "decoded filename")
        eq(att.get_content_type(), "application/pdf", "type")
        eq(att.get_payload(decode=True), content, "bytes")
        disp = [line for line in m["raw"].split(b"\r\n") if b"filename" in line.lower()]
        true(any(b"filename*" in line for line in disp),
             "RFC 2231 filename* in %r" % disp)
        true(disp and all(b < 0x80 for line in disp for b in line),
             "filename parameters are ASCII: %r" % disp)


# --------------------------------------------------------------------------
# HTML detection

HTML_DOC = ('<html><head><title>T</title><style>p {color: red}</style></head><body>'
            '<h1>Alert</h1><p>First paragraph</p><div>Second block</div>'
            '<ul><li>item one</li><li>item two</li></ul>line<br>break '
            '<a href="https://soc.corp.example/case/42">open the case</a></body></html>')


def check_alternative(m, html):
    msg = m["msg"]
    eq(msg.get_content_type(), "multipart/alternative", "root type")
    parts = msg.get_payload()
    eq([p.get_content_type() for p in parts], ["text/plain", "text/html"], "alternative parts")
    plain, rich = parts
    eq(rich.get_content_charset(), "utf-8", "html charset")
    got = nl(rich.get_content())
    true(got == html or got == html.lstrip("\ufeff"), "HTML part as given: %r" % got[:200])
    return nl(plain.get_content())


def test_html_detection_variants():
    variants = [
        "<!DOCTYPE html>" + HTML_DOC,
        HTML_DOC,
        "  \n\t" + HTML_DOC,
        "\ufeff" + HTML_DOC,
        "<!doctype HTML>\n" + HTML_DOC.upper().replace("HTTPS://SOC.CORP.EXAMPLE/CASE/42",
                                                        "https://soc.corp.example/case/42"),
        HTML_DOC.replace("<html>", "<HTML lang=\"en\">"),
    ]
    with Aiosmtpd() as srv:
        ok(send(srv, [{"to": "a@corp.example", "body": v} for v in variants]), len(variants))
        msgs = srv.wait_messages(len(variants))
        for i, (m, v) in enumerate(zip(msgs, variants)):
            check_wire(m["raw"])
            text = check_alternative(m, v)
            contains(text, "https://soc.corp.example/case/42", "variant %d: link URL kept" % i)
            lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
            low = [ln.lower() for ln in lines]
            for block in ("alert", "first paragraph", "second block", "item one", "item two"):
                true(any(ln.startswith(block) or ln.endswith(block) or ln == block
                         or ln.lstrip("*-• ").startswith(block) for ln in low),
                     "variant %d: %r on a line of its own in %r" % (i, block, lines))
            true(not any("first paragraph" in ln and "second block" in ln for ln in low),
                 "variant %d: block elements become line breaks: %r" % (i, lines))
            true(not any(ln.startswith("line") and "break" in ln for ln in low),
                 "variant %d: <br> becomes a line break: %r" % (i, lines))
            not_contains(text, "<p>", "variant %d: no tags in the plain text" % i)
            not_contains(text, "color: red", "variant %d: no style content" % i)


def test_not_html_stays_plain():
    for body in ("<p>Hello <b>there</b></p>", "Text first <html><body>x</body></html>",
                 "<div>x</div>"):
        with Aiosmtpd() as srv:
            ok(send(srv, {"to": "a@corp.example", "body": body}))
            m = one(srv)
            eq(m["msg"].get_content_type(), "text/plain", "type for %r" % body)
            eq(nl(m["msg"].get_content()).rstrip("\n"), body, "body with tags visible")


# --------------------------------------------------------------------------
# attachments

def test_attachments_from_vault():
    blob = bytes(range(256)) * 40 + b"\x00\r\n.\r\n\n\r"
    sid = sha1(blob)
    pdf = b"%PDF-1.7\n" + os.urandom(3000)
    txt = "Zeile 1: größer\nline 2\n".encode()
    weird = os.urandom(500)
    vd = vault({sid: blob,
                "rep-1": (pdf, {"name": "Q3 report.pdf", "content_type": "application/pdf"}),
                "notes.txt": txt,
                "blob.weirdext": weird,
                "named": (b"a,b\n1,2\n", {"name": "data.csv"})})
    with Aiosmtpd() as srv:
        r = send(srv, {"to": "a@corp.example", "body": "See attached\nthanks",
                       "attachments": " %s, rep-1 ,notes.txt,blob.weirdext,named" % sid},
                 vault_dir=vd)
        ok(r)
        m = one(srv)
        msg = m["msg"]
        eq(msg.get_content_type(), "multipart/mixed", "root type")
        parts = msg.get_payload()
        eq(len(parts), 6, "parts")
        eq(parts[0].get_content_type(), "text/plain", "body part first")
        eq(parts[0].get_content_disposition(), None, "body part disposition")
        eq(nl(parts[0].get_content()).rstrip("\n"), "See attached\nthanks", "body")
        want = [(sid, "application/octet-stream", blob),
                ("Q3 report.pdf", "application/pdf", pdf),
                ("notes.txt", "text/plain", txt),
                ("blob.weirdext", "application/octet-stream", weird),
                ("data.csv", "text/csv", b"a,b\n1,2\n")]
        for i, (p, (name, ctype, content)) in enumerate(zip(parts[1:], want), 1):
            eq(p.get_content_disposition(), "attachment", "part %d disposition" % i)
            eq(p.get_filename(), name, "part %d filename" % i)
            eq(p.get_content_type(), ctype, "part %d type" % i)
            eq(p.get_payload(decode=True), content, "part %d bytes" % i)


def test_html_with_attachment_is_mixed_with_alternative_first():
    content = b"log line\n" * 50
    vd = vault({"evidence.log": content})
    with Aiosmtpd() as srv:
        ok(send(srv, {"to": "a@corp.example", "body": HTML_DOC, "attachments": "evidence.log"},
                vault_dir=vd))
        m = one(srv)
        msg = m["msg"]
        eq(msg.get_content_type(), "multipart/mixed", "root type")
        parts = msg.get_payload()
        eq([p.get_content_type() for p in parts], ["multipart/alternative", "text/plain"], "parts")
        eq([p.get_content_type() for p in parts[0].get_payload()], ["text/plain", "text/html"],
           "alternative parts")
        eq(nl(parts[0].get_payload()[1].get_content()), HTML_DOC, "html part")
        eq(parts[1].get_filename(), "evidence.log", "attachment name")
        eq(parts[1].get_payload(decode=True), content, "attachment bytes")


def test_sha1_mismatch_fails_naming_the_id():
    content = b"the real content"
    wrong = sha1(b"something else")
    vd = vault({"good.txt": b"ok", wrong: content})
    with Aiosmtpd() as srv:
        failed(send(srv, {"to": "a@corp.example", "body": "x", "attachments": "good.txt, " + wrong},
                    vault_dir=vd), wrong)
        nothing_sent(srv)
        # upper-case hex of the right SHA-1 is the same id
        right = sha1(content)
        vd2 = vault({right.upper(): content})
        ok(send(srv, {"to": "a@corp.example", "body": "x", "attachments": right.upper()},
                vault_dir=vd2))
        eq(one(srv)["msg"].get_payload()[1].get_payload(decode=True), content, "bytes")


def test_missing_or_unreadable_attachment_fails_naming_the_id():
    vd = vault({"good.txt": b"ok", "meta-broken": (b"x", None), "dirmeta": b"content"})
    os.mkdir(os.path.join(vd, "dirmeta.json"))        # unreadable metadata (works as root)
    os.mkdir(os.path.join(vd, "adir"))                # not a regular file
    with open(os.path.join(vd, "meta-broken.json"), "w") as f:
        f.write("{not json")
    cases = ["missing-id", "adir", "dirmeta", "meta-broken", "../etc/passwd"]
    if os.geteuid() != 0:
        with open(os.path.join(vd, "noperm"), "wb") as f:
            f.write(b"x")
        os.chmod(os.path.join(vd, "noperm"), 0)
        cases.append("noperm")
    with Aiosmtpd() as srv:
        for vid in cases:
            failed(send(srv, {"to": "a@corp.example", "body": "x",
                              "attachments": "good.txt," + vid}, vault_dir=vd),
                   "attachments", vid)
        failed(send(srv, {"to": "a@corp.example", "body": "x", "attachments": "good.txt"}),
               "vault_dir")
        nothing_sent(srv)


def test_oversize_attachment_metadata_is_refused_as_such():
    # a metadata file over 64 KiB was cut at the bound and then reported as
    # "not a JSON object"; the error now says what is wrong with it
    vd = vault({"big": b"content"})
    with open(os.path.join(vd, "big.json"), "w") as f:
        f.write('{"name": "report.pdf", "pad": "%s"}' % ("x" * 70000))
    with Aiosmtpd() as srv:
        msg = failed(send(srv, {"to": "a@corp.example", "body": "x", "attachments": "big"},
                          vault_dir=vd), "attachments", "big.json", "larger than 65536 bytes")
        not_contains(msg, "not a JSON object", "message")
        nothing_sent(srv)


# --------------------------------------------------------------------------
# delivery

def test_partial_refusal_reports_refused():
    with Aiosmtpd(refuse_rcpt=r"^bad") as srv:
        r = send(srv, {"to": "good@corp.example, bad@corp.example", "cc": "bad2@corp.example",
                       "bcc": "ok@corp.example", "body": "x"})
        res = ok(r)
        m = one(srv)
        eq(m["rcpt_tos"], ["good@corp.example", "ok@corp.example"], "delivered to")
        ar = res["action_results"][0]
        data = ar["data"][0]
        eq(data["accepted"], ["good@corp.example", "ok@corp.example"], "data.accepted")
        eq([x["address"] for x in data["refused"]], ["bad@corp.example", "bad2@corp.example"],
           "data.refused addresses")
        for x in data["refused"]:
            eq(x["reply"], "550 5.1.1 <%s>: Recipient address rejected: User unknown" % x["address"],
               "refused reply verbatim")
            eq(x.get("temporary"), False, "a 5xx is not temporary")
        contains(ar["message"], "bad@corp.example", "message names the refused")
        contains(ar["message"], "bad2@corp.example", "message names the refused")
        eq(data["smtp_reply"], "250 2.0.0 Ok: queued as %s" % m["queue_id"], "smtp_reply")


def test_all_refused_fails_with_replies():
    with Aiosmtpd(refuse_rcpt=r"^bad") as srv:
        r = send(srv, {"to": "bad1@corp.example", "cc": "bad2@corp.example", "body": "x"})
        msg = failed(r, "bad1@corp.example", "bad2@corp.example", "550 5.1.1")
        not_contains(msg, "{'", "message (no Python dict repr)")
        contains(msg, "550 5.1.1 <bad1@corp.example>: Recipient address rejected: User unknown",
                 "server reply verbatim")
        eq(srv.messages(), [], "messages delivered")
        true(not any(c.startswith("DATA") for c in srv.commands()), "no DATA after every RCPT failed")


def test_mail_and_data_refusal_carry_the_server_reply():
    with Aiosmtpd(refuse_mail=r"^blocked") as srv:
        msg = failed(send(srv, {"to": "a@corp.example", "from": "blocked@corp.example", "body": "x"}),
                     "550 5.7.1 <blocked@corp.example>: Sender address rejected")
        not_contains(msg, "QUIT", "failure message (the stage that failed is MAIL)")
        eq(srv.messages(), [], "messages delivered")
    with Aiosmtpd(refuse_data=True) as srv:
        msg = failed(send(srv, {"to": "a@corp.example", "body": "x"}), "554 5.6.0 Message rejected")
        eq(srv.messages(), [], "messages delivered")


def test_tempfail_is_reported_as_temporary():
    with Aiosmtpd(tempfail_rcpt=r"^later") as srv:
        r = send(srv, {"to": "now@corp.example, later@corp.example", "body": "x"})
        res = ok(r)
        eq(one(srv)["rcpt_tos"], ["now@corp.example"], "delivered to")
        data = res["action_results"][0]["data"][0]
        eq(len(data["refused"]), 1, "refused")
        ref = data["refused"][0]
        eq(ref["address"], "later@corp.example", "refused address")
        true(ref["reply"].startswith("450 4.2.0"), "reply verbatim: %r" % ref["reply"])
        eq(ref["temporary"], True, "temporary")
        # every recipient temporarily refused: failed, with the reply, as temporary
        r = send(srv, {"to": "later@corp.example", "body": "x"})
        msg = failed(r, "later@corp.example", "450")
        true(re.search(r"temporar|try again|retry", msg, re.I), "message says temporary: %r" % msg)


def test_result_data_fields():
    with Aiosmtpd(auth="soar:pw") as srv:
        r = send(srv, {"to": "a@corp.example", "body": "x"}, {"username": "soar", "password": "pw"})
        res = ok(r)
        m = one(srv)
        ar = res["action_results"][0]
        eq(ar["message"], "Email sent", "message (SOAR wording)")
        data = ar["data"][0]
        eq(data["message_id"], str(m["msg"]["Message-ID"]), "message_id")
        eq(data["accepted"], ["a@corp.example"], "accepted")
        eq(data["refused"], [], "refused")
        eq(data["smtp_reply"], "250 2.0.0 Ok: queued as %s" % m["queue_id"], "smtp_reply")
        eq(data["auth"], "Basic", "auth")
        eq(m["auth_login"], "soar", "server saw the login")
        eq(res["message"], "1 of 1 action succeeded", "top message")


# --------------------------------------------------------------------------
# SMTPUTF8

def test_smtputf8_used_for_non_ascii_address():
    with Aiosmtpd() as srv:
        r = send(srv, {"to": "Jürgen <jürgen@corp.example>, ascii@corp.example", "body": "Grüße",
                       "subject": "Überprüfung"})
        res = ok(r)
        m = one(srv)
        contains(m["mail_options"], "SMTPUTF8", "MAIL FROM options")
        true(m["smtputf8"], "server saw SMTPUTF8")
        eq(m["rcpt_tos"], ["jürgen@corp.example", "ascii@corp.example"], "envelope")
        msg = parse_utf8(m["raw"])
        eq(addrs(msg["To"]), [("Jürgen", "jürgen@corp.example"), ("", "ascii@corp.example")], "To")
        eq(msg["Subject"], "Überprüfung", "Subject")
        eq(nl(msg.get_content()).rstrip("\n"), "Grüße", "body")
        eq(res["action_results"][0]["data"][0]["accepted"],
           ["jürgen@corp.example", "ascii@corp.example"], "accepted")


def test_smtputf8_non_ascii_sender():
    with Aiosmtpd() as srv:
        ok(send(srv, {"to": "a@corp.example", "from": "Ops <opérations@corp.example>", "body": "x"}))
        m = one(srv)
        contains(m["mail_options"], "SMTPUTF8", "MAIL FROM options")
        eq(m["mail_from"], "opérations@corp.example", "MAIL FROM")


def test_smtputf8_not_offered_is_a_clear_error():
    with Aiosmtpd(smtputf8=False) as srv:
        msg = failed(send(srv, {"to": "ok@corp.example, jürgen@corp.example", "body": "x"}),
                     "jürgen@corp.example", "SMTPUTF8")
        nothing_sent(srv, allow_connect=True)
        not_contains(msg, "SMTPUT8", "message (SOAR's misspelling)")


def test_allow_smtputf8_false_is_a_clear_error():
    with Aiosmtpd() as srv:
        failed(send(srv, {"to": "jürgen@corp.example", "body": "x"}, {"allow_smtputf8": False}),
               "jürgen@corp.example", "allow_smtputf8")
        nothing_sent(srv, allow_connect=True)


def test_ascii_mail_never_sends_smtputf8():
    with Aiosmtpd(smtputf8=False) as srv2, Aiosmtpd() as srv:
        p = {"to": "Jürgen Müller <jm@corp.example>", "from": "Sécurité <soc@corp.example>",
             "subject": "Überprüfung", "body": "Grüße", "headers": {"X-Note": "naïve"}}
        for s in (srv, srv2):
            ok(send(s, p))
            m = one(s)
            eq(m["mail_options"].count("SMTPUTF8"), 0, "SMTPUTF8 option")
            eq(m["smtputf8"], False, "server saw SMTPUTF8")
            for c in s.commands():
                not_contains(c.upper(), "SMTPUTF8", "command line")
            eq(m["msg"]["Subject"], "Überprüfung", "Subject")


# --------------------------------------------------------------------------
# batches and connection reuse

def test_parameter_sets_share_one_connection():
    with Aiosmtpd() as srv:
        r = send(srv, [{"to": "r%d@corp.example" % i, "body": "message %d" % i,
                        "subject": "n%d" % i} for i in range(4)])
        res = ok(r, 4)
        eq(len(res["action_results"]), 4, "action results")
        msgs = srv.wait_messages(4)
        eq([m["msg"]["Subject"] for m in msgs], ["n0", "n1", "n2", "n3"], "order")
        eq([m["rcpt_tos"] for m in msgs], [["r%d@corp.example" % i] for i in range(4)], "envelopes")
        eq(connects(srv), 1, "connections (log: %r)" % srv.log_lines())
        eq(len({m["connection"] for m in msgs}), 1, "server-side connection numbers")


def test_json_lines_share_one_connection():
    with Aiosmtpd() as srv:
        reqs = [request(srv, {"to": "r%d@corp.example" % i, "body": "line %d" % i}) for i in range(3)]
        r = run_connector(reqs)
        eq(r.rc, 0, "exit status\n%s" % r)
        eq(len(r.results), 3, "one result line per request\n%s" % r)
        for res in r.results:
            eq(res["status"], "success", "status")
            eq(res["summary"], {"total_objects": 1, "total_objects_successful": 1}, "summary")
        srv.wait_messages(3)
        eq(connects(srv), 1, "connections (log: %r)" % srv.log_lines())


def test_one_bad_set_fails_only_that_set():
    with Aiosmtpd(refuse_rcpt=r"^refused") as srv:
        r = send(srv, [{"to": "one@corp.example", "body": "1"},
                       {"to": "broken address", "body": "2"},
                       {"to": "two@corp.example", "body": "3"},
                       {"to": "refused@corp.example", "body": "4"},
                       {"to": "three@corp.example", "body": "5"}])
        eq(r.rc, 1, "exit status\n%s" % r)
        res = r.result
        eq(res["status"], "failed", "status")
        eq(res["summary"], {"total_objects": 5, "total_objects_successful": 3}, "summary")
        eq([a["status"] for a in res["action_results"]],
           ["success", "failed", "success", "failed", "success"], "per-set status")
        contains(res["action_results"][1]["message"], "broken address", "set 2 message")
        contains(res["action_results"][3]["message"], "refused@corp.example", "set 4 message")
        msgs = srv.wait_messages(3)
        eq([m["rcpt_tos"] for m in msgs],
           [["one@corp.example"], ["two@corp.example"], ["three@corp.example"]], "delivered")
        eq([nl(m["msg"].get_content()).strip() for m in msgs], ["1", "3", "5"], "bodies")


def test_server_closing_connection_reconnects_transparently():
    with Aiosmtpd(close_after=1) as srv:
        r = send(srv, [{"to": "r%d@corp.example" % i, "body": str(i)} for i in range(3)])
        ok(r, 3)
        msgs = srv.wait_messages(3)
        eq([m["rcpt_tos"] for m in msgs], [["r%d@corp.example" % i] for i in range(3)], "delivered")
        eq(connects(srv), 3, "connections (one per message, the server closes each)")
        # and over JSON Lines as well
        reqs = [request(srv, {"to": "j%d@corp.example" % i, "body": str(i)}) for i in range(2)]
        r = run_connector(reqs)
        eq(r.rc, 0, "exit status\n%s" % r)
        eq([x["status"] for x in r.results], ["success", "success"], "statuses")
        srv.wait_messages(5)


def test_batch_over_starttls_with_basic_auth_reuses_connection():
    ca = make_ca(mkdtemp("ca"), "send")
    with Aiosmtpd(starttls=ca, require_starttls=True, auth="soar:pw", auth_required=True) as srv:
        a = {"ssl_config": "StartTLS", "ca_file": ca.ca_cert, "username": "soar", "password": "pw"}
        reqs = [request(srv, [{"to": "a%d@corp.example" % i, "body": str(i)} for i in range(2)], a),
                request(srv, {"to": "b@corp.example", "body": "jsonl"}, a)]
        r = run_connector(reqs)
        eq(r.rc, 0, "exit status\n%s" % r)
        eq([x["status"] for x in r.results], ["success", "success"], "statuses\n%s" % r)
        eq(r.results[0]["summary"], {"total_objects": 2, "total_objects_successful": 2}, "summary")
        msgs = srv.wait_messages(3)
        for m in msgs:
            true(m["tls"], "delivered over TLS")
            eq(m["auth_login"], "soar", "authenticated")
        eq([x["action_results"][0]["data"][0]["auth"] for x in r.results], ["Basic", "Basic"], "auth")
        auths = sum(1 for c in srv.commands() if c.startswith("AUTH"))
        eq((connects(srv), auths), (1, 1), "(connections, AUTH commands) for 3 messages over "
                                           "StartTLS; log: %r" % srv.log_lines())


def test_volume_200_json_lines_to_smtp_sink():
    with SmtpSink() as sink:
        a = asset(sink.port, sender_address=SENDER)
        reqs = [{"action": "send email", "asset": a,
                 "parameters": {"to": "rcpt%03d@corp.example" % i, "subject": "msg %03d" % i,
                                "body": "body %03d" % i}} for i in range(200)]
        started = time.monotonic()
        r = run_connector(reqs, args=["-v"], timeout=60)
        took = time.monotonic() - started
        eq(r.rc, 0, "exit status (stdout truncated)\n%s" % str(r)[:3000])
        eq(len(r.results), 200, "result lines")
        eq(sum(1 for x in r.results if x["status"] == "success"), 200, "successes")
        # one TCP connection: libcurl's transcript on stderr says "Connected to" per connection
        eq(len(re.findall(r"\bConnected to 127\.0\.0\.1\b", r.stderr)), 1,
           "connections made by the connector")
        dumps = sink.wait_dumps(200, timeout=20)
        eq(len(dumps), 200, "messages captured by smtp-sink")
        subjects = sorted(str(d["msg"]["Subject"]) for d in dumps)
        eq(subjects, ["msg %03d" % i for i in range(200)], "all subjects arrived")
        sys.stdout.write("# 200 messages in %.2f s\n" % took)


if __name__ == "__main__":
    run(globals())
