#!/usr/bin/python3
"""X-SMTP-Connector-Signature v=2 end to end (doc/signatures.md): every
sending action signs with secret_key; what aiosmtpd received verifies with
`smtp-connector verify` and with doc/verify_signature.py; one header byte
or one body byte changed is caught by both and named; a v=1 message
(crafted here) still verifies; the key comes from a 0600 file or the
environment, never argv, and never shows in any output; a signed message
parses with Python's email exactly as the same message unsigned; serve
with require_signature delivers signed mail and answers 550 5.7.1 to
unsigned or tampered mail, delivering nothing."""
import base64
import email
import email.policy
import hashlib
import hmac
import json
import os
import re
import smtplib
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (VERIFIER_PATH as PYVERIFIER, Aiosmtpd, asset,  # noqa: E402
                     connector_path, contains, eq, mkdtemp, not_contains, run, run_connector,
                     true, vault, verifier)
from servelib import Serve  # noqa: E402

KEY = "correct horse battery staple 7Qz"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")
EVENT = {"cat": "Suspicious PowerShell", "routing": {"hostname": "ws-042.corp.example",
                                                     "event_type": "NEW_PROCESS",
                                                     "event_time": 1700000000123},
         "detect": {"event": {"COMMAND_LINE": "powershell -enc <x> & \"q\"", "PID": 4242}}}


PY = verifier()  # doc/verify_signature.py


def verify_c(raw, key=KEY, args=(), env_key=True, env=None):
    """`smtp-connector verify` on raw: (rc, stdout, stderr)."""
    e = dict(os.environ)
    e.pop("SMTP_CONNECTOR_SECRET_KEY", None)
    if env_key and key is not None:
        e["SMTP_CONNECTOR_SECRET_KEY"] = key
    e.update(env or {})
    r = subprocess.run([connector_path(), "verify"] + list(args), input=raw,
                       capture_output=True, timeout=60, env=e)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def verify_py(raw, key=KEY):
    return PY.verify(raw, key.encode())


def send(action, params, vault_dir=None, key=KEY, args=()):
    """Send one message through aiosmtpd; (result run, raw bytes received)."""
    with Aiosmtpd() as srv:
        a = asset(srv.port, sender_address="soc@corp.example")
        if key is not None:
            a["secret_key"] = key
        req = {"action": action, "asset": a, "parameters": params}
        if vault_dir:
            req["vault_dir"] = vault_dir
        r = run_connector(req, args=args)
        eq(r.rc, 0, "exit status of %s\n%s" % (action, r))
        return r, srv.wait_messages(1)[0]["raw"]


def structure(raw):
    """The parsed tree without what differs between two sends (boundaries,
    Date, Message-ID, the signature): content types, dispositions, file
    names, Content-IDs, and each leaf's decoded bytes."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    out = []
    for part in msg.walk():
        leaf = None if part.is_multipart() else hashlib.sha256(
            part.get_payload(decode=True) or b"").hexdigest()
        out.append((part.get_content_type(), part.get_content_disposition(), part.get_filename(),
                    part.get("Content-ID"), part.get("Content-Transfer-Encoding"), leaf))
    heads = {k: str(msg[k]) for k in ("From", "To", "Cc", "Subject") if msg[k] is not None}
    return heads, out


def assert_valid(raw, what):
    rc, out, err = verify_c(raw)
    eq(rc, 0, "verify exit status on %s: %s %s" % (what, out, err))
    true(out.startswith("valid: v=2, signed "), "verify says valid with the time: " + out)
    ok, why = verify_py(raw)
    true(ok, "the Python verifier agrees on %s: %s" % (what, why))
    not_contains(out + err, KEY, "the key in verify's output")


def sig_value(raw):
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    m = re.search(r"\r\nX-SMTP-Connector-Signature: (.*?)\r\n(?![ \t])", "\r\n" + head + "\r\n",
                  re.S)
    return re.sub(r"\r\n[ \t]", " ", m.group(1))


def tampered_body(raw):
    """One byte of the body changed (inside the first body line that has a
    letter, so the change survives any decoding)."""
    head, body = raw.split(b"\r\n\r\n", 1)
    i = re.search(rb"[A-Za-z]", body).start()
    c = body[i:i + 1]
    return head + b"\r\n\r\n" + body[:i] + (b"X" if c != b"X" else b"Y") + body[i + 1:]


def check_tampering(raw, header=b"Subject: "):
    """A header byte, then a body byte: both verifiers fail and say which."""
    i = raw.index(b"\r\n" + header) + 2 + len(header)
    bad = raw[:i] + (b"Z" if raw[i:i + 1] != b"Z" else b"Y") + raw[i + 1:]
    name = header.decode().rstrip(": ").lower()
    rc, out, _ = verify_c(bad)
    eq(rc, 1, "verify exit status, header changed: " + out)
    contains(out, "invalid: header changed: " + name, "verify names the header")
    ok, why = verify_py(bad)
    true(not ok and "header changed: " + name in why, "Python verifier names it: " + why)
    bad = tampered_body(raw)
    rc, out, _ = verify_c(bad)
    eq(rc, 1, "verify exit status, body changed: " + out)
    contains(out, "invalid: body changed (bh mismatch)", "verify says the body changed")
    ok, why = verify_py(bad)
    true(not ok and "body changed" in why, "Python verifier says the body changed: " + why)


# --------------------------------------------------------------------------
# every sending action

def test_send_email_with_vault_attachment():
    blob = bytes(range(256)) * 300 + b"\r\n.\r\n..\n\r"
    vd = vault({"rep-1": (blob, {"name": "Q3 report.pdf", "content_type": "application/pdf"})})
    params = {"to": "a@corp.example", "cc": "b@corp.example", "subject": "Ünïcode alert",
              "body": "See attached\n.\nthanks\n\n\n", "attachments": "rep-1"}
    r, raw = send("send email", params, vd, args=("-v",))
    assert_valid(raw, "send email")
    contains(sig_value(raw), "h=from:to:cc:subject:date:message-id;", "Cc is signed when present")
    not_contains(r.stdout + r.stderr, KEY, "the key in the result or the -v transcript")
    check_tampering(raw)
    check_tampering(raw, b"Cc: ")
    _, plain = send("send email", params, vd, key=None)
    eq(structure(raw), structure(plain), "signed and unsigned parse the same")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    eq(msg.get_payload()[1].get_content(), blob, "attachment bytes")


def test_send_htmlemail_with_inline_image():
    vd = vault({"logo": (PNG, {"name": "logo.png"})})
    params = {"from": "soc@corp.example", "to": "ir@corp.example", "subject": "html",
              "html_body": "<p>Alert <img src=\"cid:logo\"></p>",
              "attachment1": "logo", "content_id1": "logo"}
    _, raw = send("send htmlemail", params, vd)
    assert_valid(raw, "send htmlemail")
    check_tampering(raw)
    _, plain = send("send htmlemail", params, vd, key=None)
    eq(structure(raw), structure(plain), "signed and unsigned parse the same")
    types = [t[0] for t in structure(raw)[1]]
    true("image/png" in types and "multipart/related" in types, "inline image tree: %s" % types)


def test_send_event_readable_with_json_attachment():
    params = {"to": "soc@corp.example", "event": EVENT, "readable": True}
    _, raw = send("send event", params)
    assert_valid(raw, "send event")
    check_tampering(raw)
    _, plain = send("send event", params, key=None)
    eq(structure(raw), structure(plain), "signed and unsigned parse the same")


def test_send_event_machine_format():
    _, raw = send("send event", {"to": "soc@corp.example", "event": EVENT})
    assert_valid(raw, "send event (JSON)")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    eq(json.loads(msg.get_content()), EVENT, "the body parses back to the event")


def test_send_rawemail():
    raw_in = ("From: SOC <soc@corp.example>\r\nTo: a@corp.example\r\n"
              "Subject : folded\r\n  subject\r\nDate: Sun, 22 Nov 2026 01:00:00 +0000\r\n"
              "X-SMTP-Connector-Signature: v=1; a=hmac-sha256; h=from; b=stale\r\n"
              "\r\nbody line\r\n\r\n\r\n")
    _, raw = send("send rawemail", {"raw_email": raw_in})
    eq(raw.count(b"X-SMTP-Connector-Signature:"), 1, "the stale signature was replaced")
    assert_valid(raw, "send rawemail")
    check_tampering(raw, b"To: ")
    # the trailing empty lines are not covered: a relay may drop them
    rc, out, _ = verify_c(raw.rstrip(b"\r\n") + b"\r\n")
    eq(rc, 0, "trailing empty lines removed still verifies: " + out)


def test_rawemail_with_two_subjects_is_refused():
    raw_in = ("From: a@corp.example\r\nTo: c@corp.example\r\nSubject: one\r\nSubject: two\r\n"
              "\r\nx\r\n")
    with Aiosmtpd() as srv:
        r = run_connector({"action": "send rawemail",
                           "asset": asset(srv.port, secret_key=KEY),
                           "parameters": {"raw_email": raw_in}})
        eq(r.rc, 1, "exit status")
        contains(r.stdout, "\\\"subject\\\" appears more than once",
                 "the error names the header")
        eq(srv.messages(), [], "nothing sent")


def test_batch_and_many_recipients_each_verify():
    """Two parameter sets on one connection, and 600 recipients (two
    transactions of the same message): every copy received verifies (the
    connector also checks that each upload is the size it signed)."""
    vd = vault({"a": (b"attached\n" * 100, {"name": "a.txt"})})
    rcpts = ",".join("r%d@corp.example" % i for i in range(600))
    with Aiosmtpd() as srv:
        r = run_connector({"action": "send email", "vault_dir": vd,
                           "asset": asset(srv.port, sender_address="soc@corp.example",
                                          secret_key=KEY),
                           "parameters": [{"to": "a@corp.example", "body": "one", "attachments": "a"},
                                          {"to": rcpts, "body": "two", "attachments": "a"}]})
        eq(r.rc, 0, "exit status\n%s" % r)
        msgs = srv.wait_messages(3)
        eq(len(msgs), 3, "one message, then one in two transactions")
        for m in msgs:
            assert_valid(m["raw"], "a message of the batch")


def test_large_attachment_signed():
    """4 MiB (the 100 MiB RSS figure is measured once in bench/)."""
    blob = os.urandom(4 * 1024 * 1024)
    vd = vault({"big": (blob, {"name": "big.bin"})})
    _, raw = send("send email", {"to": "a@corp.example", "body": "big", "attachments": "big"}, vd)
    assert_valid(raw, "a 4 MiB attachment")


# --------------------------------------------------------------------------
# verify itself

def test_v1_message_still_verifies():
    fields = [("From", "SOC <soc@corp.example>"), ("To", "a@corp.example"),
              ("Subject", "old"), ("Date", "Sun, 22 Nov 2026 01:00:00 +0000"),
              ("Message-ID", "<x1@corp.example>")]
    canon = "".join("%s:%s\r\n" % (k.lower(), v) for k, v in fields)
    b = base64.b64encode(hmac.new(KEY.encode(), canon.encode(), hashlib.sha256).digest()).decode()
    raw = ("".join("%s: %s\r\n" % kv for kv in fields) +
           "X-SMTP-Connector-Signature: v=1; a=hmac-sha256;\r\n h=from:to:subject:date:message-id;"
           "\r\n b=%s\r\n\r\nbody, not covered by v=1\r\n" % b).encode()
    rc, out, _ = verify_c(raw)
    eq(rc, 0, "v=1 verifies: " + out)
    contains(out, "valid: v=1", "says v=1")
    true(verify_py(raw)[0], "the Python verifier accepts v=1")
    rc, out, _ = verify_c(raw.replace(b"Subject: old", b"Subject: new"))
    eq(rc, 1, "a changed v=1 header fails: " + out)
    contains(out, "HMAC mismatch", "v=1 cannot name the header")
    true(not verify_py(raw.replace(b"Subject: old", b"Subject: new"))[0], "Python: v=1 changed")


def test_verify_failures_say_what():
    _, raw = send("send email", {"to": "a@corp.example", "subject": "s", "body": "x"})
    cases = [
        (b"From: soc", "invalid: no X-SMTP-Connector-Signature header",
         lambda r: re.sub(rb"X-SMTP-Connector-Signature:.*?\r\n(?![ \t])", b"", r, flags=re.S)),
        (None, "invalid: unknown signature version v=3", lambda r: r.replace(b"v=2;", b"v=3;", 1)),
        (None, "invalid: malformed tag \"bh\"", lambda r: re.sub(rb"bh=[^;]*;", b"bh=abc;", r, 1)),
        (None, "invalid: malformed tag \"zz\"", lambda r: r.replace(b"v=2;", b"v=2; zz=1;", 1)),
        (None, "invalid: header changed: \"cc\" was added after signing",
         lambda r: r.replace(b"\r\nTo: ", b"\r\nCc: x@corp.example\r\nTo: ", 1)),
        (None, "invalid: header changed: \"to\" appears 2 times",
         lambda r: r.replace(b"\r\nTo: ", b"\r\nTo: evil@corp.example\r\nTo: ", 1)),
        (None, "invalid: HMAC mismatch", lambda r: r.replace(b"; t=", b"; t=1", 1)),
    ]
    for _, want, change in cases:
        bad = change(raw)
        true(bad != raw, "the change applied for " + want)
        rc, out, err = verify_c(bad)
        eq(rc, 1, "exit status for %s: %s %s" % (want, out, err))
        contains(out, want, "verify's verdict")
        true(not verify_py(bad)[0], "the Python verifier also refuses: " + want)
    rc, out, _ = verify_c(raw, key=KEY + "x")
    eq(rc, 1, "another key: " + out)
    contains(out, "HMAC mismatch: the key differs", "another key")
    # line ends rewritten to LF by a mail store: still the same message
    rc, out, _ = verify_c(raw.replace(b"\r\n", b"\n"))
    eq(rc, 0, "LF line ends verify: " + out)
    true(verify_py(raw.replace(b"\r\n", b"\n"))[0], "Python: LF line ends")


def test_key_from_file_env_and_never_argv():
    _, raw = send("send email", {"to": "a@corp.example", "body": "x"})
    d = mkdtemp("key")
    kf = os.path.join(d, "key")
    with open(kf, "w") as f:
        f.write(KEY + "\n")
    os.chmod(kf, 0o600)
    rc, out, err = verify_c(raw, args=("--secret-key-file", kf), env_key=False)
    eq(rc, 0, "key from a 0600 file (its final newline dropped): %s %s" % (out, err))
    rc, out, err = verify_c(raw, args=("--secret-key-file=" + kf,), env_key=False)
    eq(rc, 0, "--secret-key-file=FILE: %s %s" % (out, err))
    os.chmod(kf, 0o644)
    rc, out, err = verify_c(raw, args=("--secret-key-file", kf), env_key=False)
    eq(rc, 2, "a world-readable key file is refused: " + err)
    contains(err, "chmod 600 " + kf, "the message says the fix")
    rc, out, err = verify_c(raw, env_key=False)
    eq(rc, 2, "no key: exit 2")
    contains(err, "no key: give --secret-key-file FILE", "the message says how")
    contains(err, "SMTP_CONNECTOR_SECRET_KEY", "and names the variable")
    for args in (("--secret-key", KEY), ("--secret-key=" + KEY,), ("--key", KEY)):
        rc, out, err = verify_c(raw, args=args, env_key=False)
        eq(rc, 2, "%s: a usage error" % args[0])
        contains(err, "never taken on the command line", "says why")
        not_contains(out + err, KEY, "the key given on argv is not echoed")
    rc, out, err = verify_c(raw, args=("message.eml",))
    eq(rc, 2, "a file name argument is a usage error")
    contains(err, "comes on stdin", "says where the message goes")
    rc, out, _ = verify_c(raw, args=("--help",))
    eq(rc, 0, "--help")
    contains(out, "SMTP_CONNECTOR_SECRET_KEY", "the help names the variable")


def test_python_verifier_as_a_script():
    _, raw = send("send email", {"to": "a@corp.example", "body": "x"})
    for data, want_rc in ((raw, 0), (tampered_body(raw), 1)):
        r = subprocess.run([sys.executable, PYVERIFIER], input=data, capture_output=True,
                           timeout=60, env=dict(os.environ, SMTP_CONNECTOR_SECRET_KEY=KEY))
        eq(r.returncode, want_rc, "verify_signature.py exit status: %r" % r.stdout)
    r = subprocess.run([sys.executable, PYVERIFIER], input=raw, capture_output=True, timeout=60,
                       env={k: v for k, v in os.environ.items()
                            if k != "SMTP_CONNECTOR_SECRET_KEY"})
    eq(r.returncode, 2, "no key: exit 2")
    contains(r.stderr.decode(), "SMTP_CONNECTOR_SECRET_KEY", "says what to set")
    # a non-ASCII b= is a mismatch, not a crash
    bad = re.sub(rb"b=[0-9a-f]{64}", "b=\u00e9".encode("latin-1"), raw)
    true(bad != raw, "b= replaced")
    eq(verify_py(bad)[0], False, "non-ASCII b= does not verify")


# --------------------------------------------------------------------------
# serve require_signature

def test_serve_require_signature():
    d = mkdtemp("servekey")
    kf = os.path.join(d, "key")
    with open(kf, "w") as f:
        f.write(KEY)
    os.chmod(kf, 0o600)
    with Serve(args=("--require-signature", "--secret-key-file", kf)) as srv:
        # a signed mail from the connector: accepted and delivered
        r = run_connector({"action": "send email",
                           "asset": asset(srv.port, sender_address="soc@corp.example",
                                          secret_key=KEY),
                           "parameters": {"to": "a@corp.example", "subject": "signed",
                                          "body": "hello"}})
        eq(r.rc, 0, "signed mail accepted\n%s\n%s" % (r, srv.log()[-2000:]))
        srv.wait_messages(1)
        signed_raw = srv.raw_files()[0]
        rc, out, _ = verify_c(signed_raw)
        eq(rc, 0, "the delivered copy verifies: " + out)
        # unsigned (smtplib): 550 5.7.1
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as c:
            try:
                c.sendmail("x@example.com", ["a@corp.example"],
                           b"From: x@example.com\r\nTo: a@corp.example\r\nSubject: u\r\n\r\nhi\r\n")
                true(False, "an unsigned message was accepted")
            except smtplib.SMTPDataError as e:
                eq(e.smtp_code, 550, "unsigned: 550")
                contains(e.smtp_error.decode(), "5.7.1", "enhanced code 5.7.1")
                contains(e.smtp_error.decode(), "not signed", "the reason")
            # tampered (same connection: the session goes on)
            bad = tampered_body(signed_raw.split(b"\r\n", 2)[2]
                                if signed_raw.startswith(b"Return-Path") else signed_raw)
            try:
                c.sendmail("soc@corp.example", ["a@corp.example"], bad)
                true(False, "a tampered message was accepted")
            except smtplib.SMTPDataError as e:
                eq(e.smtp_code, 550, "tampered: 550")
                contains(e.smtp_error.decode(), "5.7.1 Signature required: body changed",
                         "the reason")
        # a connector with another key: refused too, the action fails
        r = run_connector({"action": "send email",
                           "asset": asset(srv.port, sender_address="soc@corp.example",
                                          secret_key="another key"),
                           "parameters": {"to": "a@corp.example", "body": "hello"}})
        eq(r.rc, 1, "wrong key: the send fails")
        contains(r.stdout, "550", "the server's 550 is in the result")
        eq(len(srv.raw_files()), 1, "nothing else was delivered")
        contains(srv.log(), "Refused: signature:", "serve logs the refusal")
        not_contains(srv.log(), KEY, "the key in serve's log")


def test_serve_require_signature_needs_a_key():
    env = {k: v for k, v in os.environ.items() if k != "SMTP_CONNECTOR_SECRET_KEY"}
    d = mkdtemp("servenokey")
    r = subprocess.run([connector_path(), "serve", "--state-dir", d, "--port", "0",
                        "--maildir", os.path.join(d, "md"), "--require-signature"],
                       capture_output=True, timeout=30, env=env)
    eq(r.returncode, 2, "no key: exit 2")
    contains(r.stderr.decode(), "require_signature: no key", "says what is missing")
    r = subprocess.run([connector_path(), "serve", "--state-dir", d, "--port", "0",
                        "--maildir", os.path.join(d, "md"), "--require-signature",
                        "--secret-key", KEY], capture_output=True, timeout=30, env=env)
    eq(r.returncode, 2, "--secret-key VALUE is refused")
    not_contains(r.stdout.decode() + r.stderr.decode(), KEY, "not echoed")
    with Serve(config={"require_signature": True}, env={"SMTP_CONNECTOR_SECRET_KEY": KEY}) as srv:
        r = run_connector({"action": "send rawemail",
                           "asset": asset(srv.port, secret_key=KEY),
                           "parameters": {"raw_email": "From: a@corp.example\r\nTo: b@corp.example"
                                                       "\r\nSubject: r\r\n\r\nraw\r\n"}})
        eq(r.rc, 0, "config file + env key: a signed raw message is accepted\n%s" % r)
        srv.wait_messages(1)


if __name__ == "__main__":
    run(globals())
