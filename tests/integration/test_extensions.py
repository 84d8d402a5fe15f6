#!/usr/bin/python3
"""Asset extensions beyond the SOAR app: secret_key (HMAC-SHA256 signature
header) and throttle_period (spacing between sends across processes)."""
import base64, hashlib, hmac, json, os, re, subprocess, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *


VERIFIER = verifier()  # doc/verify_signature.py, the receivers' verifier


def header_fields(raw):
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    head = re.sub(r"\r\n[ \t]", " ", head)
    fields = {}
    for line in head.split("\r\n"):
        k, v = line.split(":", 1)
        fields.setdefault(k.strip().lower(), []).append(v.strip())
    return fields


def verify(raw, key):
    """(valid, the signed header names) of a v=2 signature."""
    sig = header_fields(raw)["x-smtp-connector-signature"][0]
    names = re.search(r"(?:^|[; ])h=([^;]+)", sig).group(1).split(":")
    ok, _ = VERIFIER.verify(raw, key.encode())
    return ok, names


def test_signature_verifies_and_key_stays_secret():
    key = "correct horse battery staple"
    with Aiosmtpd() as srv:
        r = run_connector({"action": "send email",
                           "asset": asset(srv.port, sender_address="soc@corp.example", secret_key=key),
                           "parameters": {"to": "a@corp.example", "subject": "Ünïcode", "body": "x"}},
                          args=("-v",))
        true(r.rc == 0, "exit status 0", r)
        m = srv.wait_messages(1)[0]
        ok, names = verify(m["raw"], key)
        true(ok, "signature verifies with the key", m["raw"][:800])
        eq(names, ["from", "to", "subject", "date", "message-id"], "signed headers")
        not_contains(r.stdout + r.stderr, key, "secret_key in output")


def test_signature_on_a_raw_message():
    key = "raw-key"
    raw = ("From: SOC <soc@corp.example>\r\nTo: a@corp.example\r\n"
           "Subject : folded\r\n  subject\r\nDate: Sun, 22 Nov 2026 01:00:00 +0000\r\n\r\nbody\r\n")
    with Aiosmtpd() as srv:
        r = run_connector({"action": "send rawemail", "asset": asset(srv.port, secret_key=key),
                           "parameters": {"raw_email": raw}})
        true(r.rc == 0, "exit status 0", r)
        m = srv.wait_messages(1)[0]
        f = header_fields(m["raw"])
        eq(len(f["x-smtp-connector-signature"]), 1, "one signature header")
        sig = f["x-smtp-connector-signature"][0]
        names = re.search(r"(?:^|[; ])h=([^;]+)", sig).group(1).split(":")
        eq(names, ["from", "to", "subject", "date", "message-id"], "signed headers")
        contains(sig, "v=2;", "version 2")
        # the raw field is "Subject : folded<fold>subject": its value as sent, unfolded
        ok, _ = verify(m["raw"], key)
        true(ok, "signature verifies", m["raw"][:800])


def test_signature_detects_tampering():
    with Aiosmtpd() as srv:
        r = run_connector({"action": "send email",
                           "asset": asset(srv.port, sender_address="soc@corp.example", secret_key="k"),
                           "parameters": {"to": "a@corp.example", "subject": "s", "body": "x"}})
        true(r.rc == 0, "exit status 0", r)
        raw = srv.wait_messages(1)[0]["raw"]
        # the untouched message verifies: otherwise "does not verify" below
        # would hold for any signature at all
        ok, _ = verify(raw, "k")
        true(ok, "the message as sent verifies", raw[:800])
        tampered = raw.replace(b"\r\nSubject: s\r\n", b"\r\nSubject: t\r\n", 1)
        true(tampered != raw, "the Subject was changed", raw[:800])
        ok, _ = verify(tampered, "k")
        true(not ok, "a changed subject breaks the signature")
        ok, _ = verify(raw, "K")
        true(not ok, "another key does not verify")


def test_throttle_spaces_sends_across_processes():
    period = 1.0
    state = tmpdir()
    with Aiosmtpd() as srv:
        req = json.dumps({"action": "send email", "asset_id": "throttled",
                          "asset": asset(srv.port, sender_address="soc@corp.example", throttle_period=period),
                          "parameters": {"to": "a@corp.example", "body": "x"}})
        env = dict(os.environ, SMTP_CONNECTOR_STATE_DIR=state)
        start = time.time()
        procs = [subprocess.Popen([connector_path()], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
                 for _ in range(3)]
        for p in procs:
            p.communicate(req.encode(), timeout=60)
            eq(p.returncode, 0, "exit status")
        elapsed = time.time() - start
        true(elapsed >= 2 * period - 0.05, f"3 sends took {elapsed:.2f}s, at least {2 * period}s expected")
        srv.wait_messages(3)
        f = os.path.join(state, "throttle", "throttled")
        eq(oct(os.stat(f).st_mode & 0o777), "0o600", "throttle state file mode")


def test_no_throttle_state_without_throttle():
    state = tmpdir()
    with Aiosmtpd() as srv:
        r = run_connector({"action": "send email", "asset": asset(srv.port, sender_address="s@corp.example"),
                           "parameters": {"to": "a@corp.example", "body": "x"}},
                          env={"SMTP_CONNECTOR_STATE_DIR": state})
        true(r.rc == 0, "exit status 0", r)
        eq(os.listdir(state) if os.path.isdir(state) else [], [], "state dir untouched")


run(globals())
