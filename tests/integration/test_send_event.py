#!/usr/bin/python3
"""send event against aiosmtpd, read back with Python's email parser: the
machine format parses back to the event; the readable HTML holds every
leaf value, escaped, in nested tables with a text twin; subject templates
over nested events (LimaCharlie's {{ .routing.hostname }} form); the
event.json attachment; a batch over one connection; bad events refused
naming the field with nothing sent."""
import html.parser
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Aiosmtpd, asset, contains, eq, leaves, not_contains, run,  # noqa: E402
                     run_connector, tree, true)

DETECTION = {
    "cat": "Suspicious PowerShell",
    "detect": {"event": {"COMMAND_LINE": "powershell -enc <script>alert('x')</script> & \"q\"",
                         "FILE_PATH": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
                         "HASH": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                         "PROCESS_ID": 4242,
                         "PARENT": {"FILE_PATH": "/usr/bin/bash", "ARGS": ["-c", "id; whoami"]}},
               "routing": {"hostname": "ws-042.corp.example", "event_time": 1700000000123}},
    "routing": {"hostname": "ws-042.corp.example", "event_type": "NEW_PROCESS",
                "event_time": 1700000000123, "tags": ["vip", "finance"], "sid": None,
                "int": "é ünïcode ✓"},
    "priority": 3,
    "ok": True,
}


def leaves_of(v, path=""):
    if isinstance(v, dict):
        for k, x in v.items():
            yield from leaves_of(x, path + "." + k)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            yield from leaves_of(x, "%s[%d]" % (path, i))
    else:
        yield path, v


def send(srv, params, batch=None, **asset_kw):
    base = {"from": "lc@corp.example", "to": "soc@corp.example"}
    sets = [dict(base, **p) for p in (batch or [params])]
    req = {"action": "send event", "asset": asset(srv.port, **asset_kw), "parameters": sets}
    return run_connector(req)


def ok(r, n=1):
    eq(r.rc, 0, "exit status\n%s" % r)
    ars = r.result["action_results"]
    eq(len(ars), n, "action results")
    for ar in ars:
        eq(ar["message"], "Email sent", "message")
    return [ar["data"][0] for ar in ars]


class Cells(html.parser.HTMLParser):
    """Collects text, tags and the data of every <td>/<th>/<li>."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.text, self.attrs = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [a for a, _ in attrs]

    def handle_data(self, data):
        self.text.append(data)


def test_machine_format_parses_back_to_the_event():
    with Aiosmtpd() as srv:
        ok(send(srv, {"event": DETECTION}))
        m = srv.wait_messages(1)[0]["msg"]
        eq(m.get_content_type(), "text/plain", "single text part")
        eq(json.loads(m.get_content()), DETECTION, "decoded body parses back to the event")
        eq(m["Subject"], "Suspicious PowerShell (ws-042.corp.example)", "default subject")
        raw = srv.messages()[0]["raw"]
        true(all(len(line) <= 998 for line in raw.split(b"\r\n")), "no line over 998")


def test_event_as_a_string_and_long_values():
    ev = dict(DETECTION, blob="x" * 5000)
    with Aiosmtpd() as srv:
        ok(send(srv, {"event": json.dumps(ev), "attach_json": True}))
        m = srv.wait_messages(1)[0]["msg"]
        eq(tree(m), ("multipart/mixed", ["text/plain", "application/json"]), "tree")
        body, att = leaves(m)
        eq(json.loads(body.get_content()), ev, "body")
        eq(att.get_filename(), "event.json", "attachment name")
        eq(json.loads(att.get_payload(decode=True)), ev, "event.json")
        raw = srv.messages()[0]["raw"]
        true(all(len(line) <= 998 for line in raw.split(b"\r\n")), "no line over 998")


def test_readable_holds_every_leaf_escaped():
    with Aiosmtpd() as srv:
        data = ok(send(srv, {"event": DETECTION, "readable": True}))[0]
        eq(data["format"], "readable", "data.format")
        m = srv.wait_messages(1)[0]["msg"]
        eq(tree(m), ("multipart/mixed", [("multipart/alternative", ["text/plain", "text/html"]),
                                         "application/json"]), "tree (attach_json defaults on)")
        text, page, att = leaves(m)
        h = page.get_content()
        eq(json.loads(att.get_payload(decode=True)), DETECTION, "event.json")
        p = Cells()
        p.feed(h)
        alltext = "".join(p.text)
        for path, v in leaves_of(DETECTION):
            s = {True: "true", False: "false", None: "null"}.get(v, str(v)) \
                if not isinstance(v, str) else v
            contains(alltext, s, "HTML text of %s" % path)
            contains(text.get_content(), s, "text part, %s" % path)
        not_contains(h, "<script>", "the command line's markup is escaped")
        contains(h, "&lt;script&gt;", "escaped markup")
        for bad in ("script", "img", "link", "iframe", "style"):
            true(bad not in p.tags, "no <%s> element" % bad)
        true("src" not in p.attrs and "href" not in p.attrs, "no remote content")
        true("table" in p.tags and "ol" in p.tags, "tables and lists")
        contains(alltext, "2023-11-14 22:13:20.123 UTC", "epoch ms shown as a UTC date")
        contains(h, "<code", "hashes and paths in monospace")
        contains(text.get_content(), "  hostname: ws-042.corp.example", "indented key: value")


def test_readable_without_attachment_and_body_template():
    tmpl = "<p>Host <b>{{ .routing.hostname }}</b> ran {{detect.event.COMMAND_LINE}}</p>"
    with Aiosmtpd() as srv:
        ok(send(srv, {"event": DETECTION, "readable": True, "attach_json": False,
                      "template": tmpl}))
        m = srv.wait_messages(1)[0]["msg"]
        eq(tree(m), ("multipart/alternative", ["text/plain", "text/html"]), "tree")
        h = leaves(m)[1].get_content()
        contains(h, "<b>ws-042.corp.example</b>", "template rendered")
        contains(h, "&lt;script&gt;", "values HTML-escaped in a readable template")
        contains(leaves(m)[0].get_content(), "ws-042.corp.example", "text alternative")


def test_subject_templates():
    cases = [
        ("{{ .routing.hostname }}: {{cat}}", "ws-042.corp.example: Suspicious PowerShell"),
        ("[{{priority}}] {{#routing.tags}}{{.}} {{/routing.tags}}", "[3] vip finance "),
        ("{{detect.event.COMMAND_LINE}}", DETECTION["detect"]["event"]["COMMAND_LINE"]),
        ("{{routing.int}} \u2014 {{missing.key}}end", "é ünïcode ✓ \u2014 end"),
    ]
    with Aiosmtpd() as srv:
        ok(send(srv, None, batch=[{"event": DETECTION, "subject": t} for t, _ in cases]),
           len(cases))
        msgs = srv.wait_messages(len(cases))
        eq(sorted(m["msg"]["Subject"] for m in msgs), sorted(e for _, e in cases),
           "subjects (no HTML escaping; RFC 2047 round trip)")
        eq(len({m["connection"] for m in msgs}), 1, "one connection for the batch")


def test_default_subjects():
    cases = [({"routing": {"event_type": "DNS_REQUEST", "hostname": "h1"}}, "DNS_REQUEST (h1)"),
             ({"category": "malware", "name": "EICAR"}, "malware: EICAR"),
             ({"x": 1}, "Event"),
             ({"cat": "a\r\nBcc: evil@x.test"}, "a  Bcc: evil@x.test")]
    with Aiosmtpd() as srv:
        ok(send(srv, None, batch=[{"event": e} for e, _ in cases]), len(cases))
        msgs = srv.wait_messages(len(cases))
        eq([m["msg"]["Subject"] for m in msgs], [s for _, s in cases], "default subjects")
        for m in msgs:
            eq(m["rcpt_tos"], ["soc@corp.example"], "no recipient injected through a value")


def test_bad_events_refused_before_connecting():
    bad = [(42, "event"), ("not json", "event: the string is not JSON"),
           ("[1,2]", "not an object"), ('{"a": 1} trailing', "event: the string is not JSON")]
    with Aiosmtpd() as srv:
        for ev, needle in bad:
            r = send(srv, {"event": ev})
            true(r.rc != 0, "exit status for %r" % (ev,), r)
            ars = r.result.get("action_results") or [r.result]
            contains(ars[0]["message"], needle, "message for %r" % (ev,))
        r = send(srv, {"event": DETECTION, "subject": "{{#open}}"})
        eq(r.rc, 1, "bad template")
        contains(r.result["action_results"][0]["message"], "subject", "names the subject")
        eq(srv.messages(), [], "nothing sent")
        eq([c for c in srv.commands() if c.startswith("MAIL")], [], "no MAIL FROM")


if __name__ == "__main__":
    run(globals())
