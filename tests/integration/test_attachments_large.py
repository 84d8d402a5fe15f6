#!/usr/bin/python3
"""Base64 attachments as core/mime.c streams them (its own encoder behind
curl_mime_data_cb): a large file arrives byte-exact, the base64 line-length
edge cases (0, 1, 56, 57, 58, 114 octets) are encoded exactly as
sc_base64_lines() does, every part carries one Content-Transfer-Encoding
header, and the SIZE= libcurl declares is the size of what was sent."""

import base64
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Aiosmtpd, asset, eq, run, run_connector, vault  # noqa: E402

SENDER = "soar@corp.example"


def send(srv, params, vault_dir):
    a = asset(srv.port, sender_address=SENDER)
    return run_connector({"action": "send email", "asset": a, "parameters": params,
                          "vault_dir": vault_dir}, timeout=120)


def ok(r):
    eq(r.rc, 0, "exit status\n%s" % r)
    eq(r.result["status"], "success", "status\n%s" % r)


def sc_base64_lines(data):
    """What core/transfer.c's sc_base64_lines() makes of data: 76-column
    lines (57 octets each), every one ended by CRLF; nothing for b""."""
    return b"".join(base64.b64encode(data[i:i + 57]) + b"\r\n" for i in range(0, len(data), 57))


def raw_parts(raw, boundary):
    """[(header bytes, body bytes)] of the parts of a multipart body, as
    received (the CRLF before each delimiter belongs to the delimiter)."""
    delim = b"\r\n--" + boundary.encode()
    chunks = raw.split(delim)[1:-1]
    out = []
    for c in chunks:
        c = c[2:]  # the CRLF after the delimiter line
        head, _, body = c.partition(b"\r\n\r\n")
        out.append((head, body))
    return out


def same_bytes(actual, expected, what):
    """eq() for large byte strings: names the first difference, not the whole."""
    if actual == expected:
        return
    at = next((i for i, (a, b) in enumerate(zip(actual, expected)) if a != b),
              min(len(actual), len(expected)))
    raise AssertionError("%s: %d bytes, expected %d; first difference at %d: got %r, expected %r"
                         % (what, len(actual), len(expected), at, actual[max(0, at - 20):at + 20],
                            expected[max(0, at - 20):at + 20]))


def declared_size(m):
    sizes = [o for o in m["mail_options"] if o.upper().startswith("SIZE=")]
    eq(len(sizes), 1, "SIZE= in MAIL FROM %r" % m["mail_options"])
    return int(sizes[0][5:])


def check_attachments(srv, contents):
    m = srv.wait_messages(1)[0]
    raw = m["raw"]
    msg = m["msg"]
    eq(msg.get_content_type(), "multipart/mixed", "root type")
    parts = msg.get_payload()
    eq(len(parts), 1 + len(contents), "parts")
    parsed = raw_parts(raw, msg.get_boundary())
    eq(len(parsed), len(parts), "parts found in the raw message")
    for i, ((name, content), p, (head, body)) in enumerate(zip(contents, parts[1:], parsed[1:]), 1):
        eq(p.get_filename(), name, "part %d filename" % i)
        same_bytes(p.get_payload(decode=True), content, "part %d bytes (%s)" % (i, name))
        ctes = re.findall(rb"(?im)^content-transfer-encoding:[ \t]*(.*?)\r?$", head)
        eq(ctes, [b"base64"], "part %d Content-Transfer-Encoding headers" % i)
        same_bytes(body, sc_base64_lines(content), "part %d encoded body (%d octets)"
                   % (i, len(content)))
    # libcurl declares the size of the MIME tree it sends; our part size
    # must be exact for that to match what arrived (dot-stuffing aside:
    # base64 and our headers never start a line with ".").
    eq(declared_size(m), len(raw), "SIZE= vs message received")
    return m


def test_base64_line_edges_byte_exact():
    sizes = [0, 1, 56, 57, 58, 114, 115, 171]
    contents = [("edge-%d.bin" % n, os.urandom(n)) for n in sizes]
    vd = vault(dict(contents))
    with Aiosmtpd() as srv:
        ok(send(srv, {"to": "a@corp.example", "body": "edges",
                      "attachments": ",".join(n for n, _ in contents)}, vd))
        check_attachments(srv, contents)


def test_30mb_random_attachment_byte_exact():
    # Larger than one 48 KiB read chunk and libcurl's 64 KiB buffer many
    # times over, and not a multiple of 57 or of either buffer.
    contents = [("big.bin", os.urandom(30 * 1024 * 1024 + 12345)),
                ("after.bin", os.urandom(1000))]
    vd = vault(dict(contents))
    with Aiosmtpd(max_size=64 * 1024 * 1024) as srv:
        ok(send(srv, {"to": "a@corp.example", "body": "big",
                      "attachments": "big.bin,after.bin"}, vd))
        check_attachments(srv, contents)


if __name__ == "__main__":
    run(globals())
