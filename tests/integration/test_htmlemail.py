#!/usr/bin/python3
"""send htmlemail against aiosmtpd: the MIME tree for every combination of
inline parts and attachments, Content-IDs, exact bytes of every file, the
sanitiser (and never un-escaping), should_sanitize_template false, and
errors that name the parameter with nothing sent."""
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (Aiosmtpd, asset, contains, eq, leaves, not_contains, run,  # noqa: E402
                     run_connector, tree, true)

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00"
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"

HTML = ("<html><body><h1>Alert</h1><p>See <img src=\"cid:logo@corp.example\" alt=\"logo\"></p>"
        "<table><tr><td style=\"color:red\">high</td></tr></table></body></html>")


def vault(files):
    """files: {key: (bytes, name)} -> (vault dir, {key: vault id}); a key
    starting with "sha1" gets the SHA-1 of the content as its id."""
    ids = {k: hashlib.sha1(data).hexdigest() if k.startswith("sha1") else k
           for k, (data, _) in files.items()}
    return harness.vault({ids[k]: (data, {"name": name})
                          for k, (data, name) in files.items()}), ids


def send(srv, params, vault_dir=None, **asset_kw):
    req = {"action": "send htmlemail", "asset": asset(srv.port, **asset_kw),
           "parameters": dict({"from": "soc@corp.example", "to": "ir@corp.example"}, **params)}
    if vault_dir:
        req["vault_dir"] = vault_dir
    return run_connector(req)


def ok(r):
    eq(r.rc, 0, "exit status\n%s" % r)
    ar = r.result["action_results"][0]
    eq(ar["message"], "Email sent", "message")
    return ar["data"][0]


def failed(r, srv, *needles):
    eq(r.rc, 1, "exit status\n%s" % r)
    msg = r.result["action_results"][0]["message"]
    for n in needles:
        contains(msg, n, "result message")
    eq(len(srv.messages()), 0, "messages delivered")
    eq([c for c in srv.commands() if c.startswith("MAIL")], [], "MAIL FROM sent")
    return msg


def by_type(msg, ctype):
    return [p for p in leaves(msg) if p.get_content_type() == ctype]


def html_of(msg):
    return by_type(msg, "text/html")[0].get_content()


ALT = ("multipart/alternative", ["text/plain", "text/html"])


def test_neither_inline_nor_attachments():
    with Aiosmtpd() as srv:
        ok(send(srv, {"subject": "plain", "html_body": "<p>Hello <b>SOC</b></p>"}))
        m = srv.wait_messages(1)[0]["msg"]
        eq(tree(m), ALT, "tree")
        eq(by_type(m, "text/plain")[0].get_content().strip(), "Hello SOC", "rendered text")
        contains(html_of(m), "<b>SOC</b>", "html")


def test_inline_only():
    d, ids = vault({"sha1logo": (PNG, "logo.png"), "chart": (GIF, "chart.gif")})
    with Aiosmtpd() as srv:
        data = ok(send(srv, {"html_body": HTML.replace("</p>", "<img src='cid:chart'></p>"),
                             "attachment_json": json.dumps([
                                 {"vault_id": ids["sha1logo"], "content_id": " <logo@corp.example> "}]),
                             "attachment1": "chart", "content_id1": "chart"}, d))
        eq(data.get("warnings", []), [], "warnings")
        rec = srv.wait_messages(1)[0]
        m = rec["msg"]
        eq(tree(m), ("multipart/related", [ALT, "image/png", "image/gif"]), "tree")
        eq(m.get_param("type"), "multipart/alternative", "related's type parameter")
        png, gif = leaves(m)[2:]
        eq(png["Content-ID"], "<logo@corp.example>", "Content-ID trimmed of blanks and <>")
        eq(gif["Content-ID"], "<chart>", "Content-ID")
        eq(png.get_content_disposition(), "inline", "disposition")
        eq(png.get_content(), PNG, "PNG bytes")
        eq(gif.get_content(), GIF, "GIF bytes")
        eq(png.get_filename(), "logo.png", "filename")


def test_attachments_only():
    d, ids = vault({"report": (PDF, "report.pdf"), "notes": (b"a\r\nb\n", "notes.txt")})
    with Aiosmtpd() as srv:
        ok(send(srv, {"html_body": "<p>see attached</p>", "attachment1": "report",
                      "attachment_json": [{"vault_id": "notes"}]}, d))
        m = srv.wait_messages(1)[0]["msg"]
        eq(tree(m), ("multipart/mixed", [ALT, "text/plain", "application/pdf"]), "tree")
        notes, pdf = leaves(m)[2:]
        eq(pdf.get_content_disposition(), "attachment", "disposition")
        eq(pdf.get_filename(), "report.pdf", "filename")
        eq(pdf.get_content(), PDF, "PDF bytes")
        eq(pdf["Content-ID"], None, "no Content-ID")
        eq(notes.get_payload(decode=True), b"a\r\nb\n", "text attachment bytes")


def test_inline_and_attachments():
    d, ids = vault({"sha1logo": (PNG, "logo.png"), "report": (PDF, "report.pdf")})
    with Aiosmtpd() as srv:
        ok(send(srv, {"html_body": HTML, "attachment1": "report",
                      "attachment2": ids["sha1logo"], "content_id2": "logo@corp.example"}, d))
        m = srv.wait_messages(1)[0]["msg"]
        eq(tree(m), ("multipart/mixed", [("multipart/related", [ALT, "image/png"]),
                                         "application/pdf"]), "tree")
        png, pdf = leaves(m)[2:]
        eq(png["Content-ID"], "<logo@corp.example>", "Content-ID")
        eq(png.get_content(), PNG, "PNG bytes")
        eq(pdf.get_content(), PDF, "PDF bytes")


def test_text_body_is_the_plain_part():
    with Aiosmtpd() as srv:
        ok(send(srv, {"html_body": "<p>html version</p>", "text_body": "text version\nline 2",
                      "bcc": "hidden@corp.example", "subject": "Grüße"}))
        rec = srv.wait_messages(1)[0]
        m = rec["msg"]
        eq(by_type(m, "text/plain")[0].get_content(), "text version\nline 2", "plain part")
        eq(rec["rcpt_tos"], ["ir@corp.example", "hidden@corp.example"], "RCPT TO")
        eq(m["Bcc"], None, "no Bcc header")
        eq(str(m["Subject"]), "Grüße", "Subject")


SANITISER_CASES = [
    # (html_body, must be in the sent HTML, must not be in it)
    ("<p>a</p><script>alert(1)</script><p>b</p>", ["<p>a</p>", "<p>b</p>"], ["<script", "alert(1)"]),
    ("<a href=\"https://corp.example/\" onclick=\"steal()\">x</a>",
     ["href=\"https://corp.example/\""], ["onclick", "steal"]),
    ("<a href=\"javascript:alert(1)\">x</a><a href=\" JaVaScRiPt:alert(2)\">y</a>",
     [">x</a>", ">y</a>"], ["javascript", "JaVaScRiPt", "alert"]),
    ("<div><table><tr><td><b><i>deep<script>bad()</script></i></b></td></tr></table></div>",
     ["<b><i>deep</i></b>", "<td>"], ["bad()"]),
    ("<p>unclosed <b>bold <img src=x onerror=alert(1)> <iframe src=//evil.example></p>",
     ["unclosed", "<b>"], ["onerror", "iframe", "evil.example"]),
    ("<p>&lt;script&gt;alert(1)&lt;/script&gt; &amp;amp; 5 &lt; 6</p>",
     ["&lt;script&gt;alert(1)&lt;/script&gt;", "&amp;amp;", "5 &lt; 6"], ["<script"]),
    ("<p style=\"color: red\">red</p><img src=\"cid:logo\" alt=\"l\"><a href=\"mailto:soc@corp.example\">m</a>",
     ["style=\"color: red\"", "src=\"cid:logo\"", "href=\"mailto:soc@corp.example\""], []),
    ("<form action=\"https://evil.example\"><input name=p></form><object data=x></object>",
     [], ["<form", "<input", "<object"]),
]


def test_sanitiser_cases():
    with Aiosmtpd() as srv:
        for i, (html, keep, drop) in enumerate(SANITISER_CASES):
            ok(send(srv, {"html_body": html}))
            sent = html_of(srv.wait_messages(i + 1)[i]["msg"])
            for k in keep:
                contains(sent, k, "case %d keeps" % i)
            for k in drop:
                not_contains(sent, k, "case %d drops" % i)


def test_escaped_text_stays_escaped_in_the_plain_part_too():
    with Aiosmtpd() as srv:
        ok(send(srv, {"html_body": "<p>&lt;b&gt;not bold&lt;/b&gt;</p>"}))
        m = srv.wait_messages(1)[0]["msg"]
        contains(html_of(m), "&lt;b&gt;not bold&lt;/b&gt;", "html")
        eq(by_type(m, "text/plain")[0].get_content().strip(), "<b>not bold</b>", "text")


def test_sanitising_off_sends_the_html_as_given():
    html = "<p onclick=\"x()\">a</p><script>track()</script>&lt;kept&gt;"
    with Aiosmtpd() as srv:
        ok(send(srv, {"html_body": html, "should_sanitize_template": False}))
        eq(html_of(srv.wait_messages(1)[0]["msg"]), html, "html as given")


def test_unreferenced_content_id_is_a_warning():
    d, ids = vault({"logo": (PNG, "logo.png")})
    with Aiosmtpd() as srv:
        data = ok(send(srv, {"html_body": "<p>only <img src=\"cid:shown\"></p>",
                             "attachment1": "logo", "content_id1": "logo",
                             "attachment2": "logo", "content_id2": "shown"}, d))
        eq(len(data["warnings"]), 1, "one warning, for the unreferenced part only")
        contains(data["warnings"][0], "attachment1", "names the parameter")
        contains(data["warnings"][0], "\"logo\"", "names the content id")
        eq(tree(srv.wait_messages(1)[0]["msg"]),
           ("multipart/related", [ALT, "image/png", "image/png"]), "tree")


def test_errors_name_the_parameter_and_send_nothing():
    d, ids = vault({"logo": (PNG, "logo.png")})
    cases = [
        ({"attachment_json": "[{vault_id: 1}"}, ["attachment_json", "not valid JSON"]),
        ({"attachment_json": "{\"vault_id\": \"logo\"}"}, ["attachment_json", "list"]),
        ({"attachment_json": [{"vault_id": "logo"}, {"content_id": "x"}]},
         ["attachment_json[1]", "vault_id"]),
        ({"attachment_json": ["logo"]}, ["attachment_json[0]", "object"]),
        ({"attachment_json": [{"vault_id": "logo", "content_id": 5}]},
         ["attachment_json[0]", "content_id"]),
        ({"attachment2": "missing"}, ["attachment2", "missing"]),
        ({"attachment_json": [{"vault_id": "0123456789abcdef0123456789abcdef01234567"}]},
         ["attachment_json[0]"]),
        ({"content_id3": "logo"}, ["content_id3", "attachment3"]),
        ({"attachment1": "logo", "content_id1": "a b"}, ["content_id1", "Content-ID"]),
        ({"attachment1": "logo", "content_id1": "logo>\r\nBcc: <evil@corp.example"},
         ["content_id1", "Content-ID"]),
        ({"attachment1": "logo", "content_id1": "logo", "attachment_json": [
            {"vault_id": "logo", "content_id": "<logo>"}]}, ["content_id1", "already used"]),
        ({"to": "\"Doe, Jane <jane@corp.example>"}, ["to"]),
        ({"headers": "not json"}, ["headers"]),
    ]
    with Aiosmtpd() as srv:
        for params, needles in cases:
            p = dict({"html_body": "<p><img src=\"cid:logo\"></p>"}, **params)
            failed(send(srv, p, d), srv, *needles)
        eq(srv.commands(), [], "no connection at all")


def test_large_html_line_is_encoded():
    html = "<p>" + "x" * 5000 + "ü</p>"
    with Aiosmtpd() as srv:
        ok(send(srv, {"html_body": html}))
        rec = srv.wait_messages(1)[0]
        true(max(len(l) for l in rec["raw"].split(b"\r\n")) <= 998, "no line over 998 octets")
        contains(html_of(rec["msg"]), "x" * 5000 + "ü", "html content")


if __name__ == "__main__":
    run(globals())
