#!/usr/bin/python3
"""What a request carries is refused before anything is sent when it would
not mean what it says (issue 8), and the result line is valid UTF-8 JSON
whatever came in.

  - an embedded NUL (a \\u0000 escape) in any string of the request, at any
    depth, member names included, and inside JSON text given as a string
    (headers): refused with the field's path and the offset;
  - raw control bytes inside a string (invalid JSON, RFC 8259 §7), and
    between values: refused with line and column; \\u with bad hex too;
  - invalid UTF-8 in any string: refused with the field and byte offset;
  - stdout is always one line of strict UTF-8 JSON, even when the action
    name or a server reply carries invalid bytes;
  - a secret asset field of the wrong type is named but its value never
    shown;
  - asset_id "..", ".", ".x", "-x" are refused by the schema;
  - a state dir others can write (1777, 0770), or of another owner, is
    refused with the fix named and its mode left alone; one readable by
    others is used, with a warning, and not chmod'ed.

Every refusal is checked against a real aiosmtpd that must have seen no
connection at all.
"""
import json
import os
import socket
import stat
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Aiosmtpd, asset, contains, eq, mkdtemp, not_contains,  # noqa: E402
                     run, run_connector_bytes, skip, true)

SENDER = "soar@corp.example"


# --------------------------------------------------------------------------
# helpers

class Raw:
    """One connector run with stdout kept as bytes."""

    def __init__(self, argv, rc, out, err):
        self.argv, self.rc, self.out, self.err = argv, rc, out, err

    def __str__(self):
        return "  argv: %s\n  exit: %s\n  stdout: %r\n  stderr: %s" % (
            self.argv, self.rc, self.out[:3000], self.err.decode("utf-8", "replace")[:3000])

    @property
    def result(self):
        """The one result line: strict UTF-8, JSON, and the only line."""
        lines = self.out.splitlines()
        eq(len(lines), 1, "result lines on stdout\n%s" % self)
        try:
            text = lines[0].decode("utf-8", "strict")
        except UnicodeDecodeError as e:
            raise AssertionError("stdout is not valid UTF-8 (%s)\n%s" % (e, self))
        return json.loads(text)


def run_raw(data, args=(), env=None, timeout=60):
    """The connector with `data` (bytes, or a dict sent as JSON) on stdin;
    harness.run_connector_bytes checks its result against the schema as
    every run's."""
    if isinstance(data, dict):
        data = json.dumps(data).encode()
    return Raw(*run_connector_bytes(data, args, env, timeout))


def req_bytes(srv, params_json, asset_json=None, extra=b""):
    """A send email request for srv as bytes, with the parameters (and,
    optionally, asset members) spliced in as raw JSON text, so that a test
    can put escapes and bytes exactly where it wants them."""
    a = json.dumps(asset(srv.port, sender_address=SENDER)).encode()
    if asset_json:
        a = a[:-1] + b", " + asset_json + b"}"
    return (b'{"action": "send email", "asset": ' + a + b', "parameters": ' + params_json
            + extra + b"}\n")


def no_connection(srv):
    eq([line for line in srv.log_lines() if line.startswith("CONNECT")], [],
       "connections to the server by a request that must be refused first")
    eq(srv.messages(), [], "messages received")


def refused(r, *needles, rc=2):
    """Exit rc, a failed result whose message (top level, else the first
    action result's) holds every needle. Returns the message."""
    eq(r.rc, rc, "exit status\n%s" % r)
    res = r.result
    eq(res["status"], "failed", "status\n%s" % r)
    msg = res["message"]
    if res["action_results"]:
        msg = res["action_results"][0]["message"]
    for n in needles:
        contains(msg, n, "refusal message")
    return msg


TO = b'"to": "soc@corp.example", '


# --------------------------------------------------------------------------
# NUL

def test_nul_in_to_is_refused_naming_the_field():
    with Aiosmtpd() as srv:
        r = run_raw(req_bytes(srv, b'[{"to": "a@x.test\\u0000, evil@x.test", "body": "b"}]'))
        refused(r, "parameters[0].to: contains a NUL character (\\u0000) at offset 8; remove it")
        no_connection(srv)


def test_nul_anywhere_in_the_request():
    """Every string position: asset, parameters (a list or one object),
    nested header objects, arrays, member names, platform, envelope."""
    cases = [
        (b'{' + TO + b'"subject": "pay\\u0000 now", "body": "b"}', None, b"",
         "parameters.subject: contains a NUL character (\\u0000) at offset 3"),
        (b'[{' + TO + b'"body": "b"}, {' + TO + b'"body": "x\\u0000"}]', None, b"",
         "parameters[1].body: contains a NUL character (\\u0000) at offset 1"),
        (b'[{' + TO + b'"body": "b", "headers": {"X-Tag": "a\\u0000b"}}]', None, b"",
         "parameters[0].headers.X-Tag: contains a NUL"),
        (b'[{' + TO + b'"body": "b", "headers": {"X-T\\u0000ag": "v"}}]', None, b"",
         "parameters[0].headers.X-T: its name contains a NUL character (\\u0000) at offset 3"),
        (b'[{' + TO + b'"body": "b"}]', b'"username": "u\\u0000x"', b"",
         "asset.username: contains a NUL"),
        (b'[{' + TO + b'"body": "b"}]', b'"password": "hunter2\\u0000x"', b"",
         "asset.password: contains a NUL character (\\u0000) at offset 7"),
        (b'[{' + TO + b'"body": "b"}]', b'"auth_order": ["Basic", "OAuth\\u0000"]', b"",
         "asset.auth_order[1]: contains a NUL"),
        (b'[{' + TO + b'"body": "b"}]', None, b', "platform": {"email_from": "a@b\\u0000"}',
         "platform.email_from: contains a NUL"),
        (b'[{' + TO + b'"body": "b"}]', None, b', "asset_id": "prod\\u0000"',
         "asset_id: contains a NUL"),
        (b'[{' + TO + b'"body": "b"}]', None, b', "vault_dir": "/v\\u0000/x"',
         "vault_dir: contains a NUL"),
    ]
    with Aiosmtpd() as srv:
        for params, asset_json, extra, want in cases:
            r = run_raw(req_bytes(srv, params, asset_json, extra))
            msg = refused(r, want)
            not_contains(msg, "hunter2", "a secret's value")
        no_connection(srv)


def test_nul_in_headers_given_as_json_text():
    """headers may be JSON text in a string; the text inside is checked
    the same way (the action fails: exit 1, still before connecting)."""
    with Aiosmtpd() as srv:
        h = json.dumps(json.dumps({"X-Tag": "a\u0000evil"})).encode()
        r = run_raw(req_bytes(srv, b'[{' + TO + b'"body": "b", "headers": ' + h + b'}]'))
        refused(r, "headers.X-Tag: contains a NUL character (\\u0000) at offset 1", rc=1)
        h = json.dumps('{"X-Tag": "a"} {"Bcc": "x@y"}').encode()
        r = run_raw(req_bytes(srv, b'[{' + TO + b'"body": "b", "headers": ' + h + b'}]'))
        refused(r, "headers: is not valid JSON: more text after the value",
                "give a JSON object such as", rc=1)
        # the hint on how to write JSON follows the kind of refusal, not
        # its words: a header name that reads like them gets none
        h = json.dumps(json.dumps({"X: is not valid JSON": "a\u0000evil"})).encode()
        r = run_raw(req_bytes(srv, b'[{' + TO + b'"body": "b", "headers": ' + h + b'}]'))
        msg = refused(r, "contains a NUL character (\\u0000)", rc=1)
        not_contains(msg, "give a JSON object", "a string's refusal")
        no_connection(srv)


# --------------------------------------------------------------------------
# raw control bytes, bad escapes

def test_raw_control_bytes_in_strings_are_invalid_json():
    with Aiosmtpd() as srv:
        r = run_raw(req_bytes(srv, b'[{' + TO + b'"body": "a\tb"}]'))
        refused(r, "parameters[0].body: contains a raw tab (byte 0x09) at line 1, column",
                "RFC 8259", "write it escaped as \\t")
        # pretty-printed, with a raw line break inside the subject
        text = (b'{\n  "action": "send email",\n  "asset": '
                + json.dumps(asset(srv.port, sender_address=SENDER)).encode()
                + b',\n  "parameters": {"to": "soc@corp.example",\n'
                b'    "subject": "first\nsecond", "body": "b"}\n}\n')
        r = run_raw(text)
        refused(r, "parameters.subject: contains a raw line feed (byte 0x0A) at line 5, column 22",
                "write it escaped as \\n")
        r = run_raw(req_bytes(srv, b'[{' + TO + b'"body": "a\x00b"}]'))
        refused(r, "parameters[0].body: contains a raw NUL byte at line 1, column")
        r = run_raw(req_bytes(srv, b'[{' + TO + b'"body": "a\x1fb"}]'))
        refused(r, "parameters[0].body: contains a raw control character (byte 0x1F)",
                "\\u001F")
        no_connection(srv)


def test_control_bytes_between_values_and_bad_escapes():
    with Aiosmtpd() as srv:
        good = req_bytes(srv, b'[{' + TO + b'"body": "b"}]')
        r = run_raw(b"\x01" + good)
        refused(r, "not valid JSON at line 1, column 1: a raw control byte 0x01")
        r = run_raw(good.replace(b'"parameters":', b'"parameters":\x0c'))
        refused(r, "not valid JSON at line 1, column", "0x0C")
        # cJSON reads \u with bad hex digits as U+0000
        r = run_raw(req_bytes(srv, b'[{' + TO + b'"body": "a\\u00G1b"}]'))
        refused(r, "parameters[0].body: contains an invalid escape at line 1, column",
                "four hexadecimal digits")
        no_connection(srv)


# --------------------------------------------------------------------------
# UTF-8

def test_invalid_utf8_refused_with_field_and_offset():
    cases = [
        (b'[{' + TO + b'"subject": "caf\xe9", "body": "b"}]',
         "parameters[0].subject: is not valid UTF-8: byte 0xE9 at offset 3"),
        (b'[{' + TO + b'"body": "ok \xc3\xa9 then \xed\xa0\x80"}]',  # an encoded surrogate
         "parameters[0].body: is not valid UTF-8: byte 0xED at offset 11"),
        (b'[{' + TO + b'"body": "\xc0\xaf"}]',  # overlong "/"
         "parameters[0].body: is not valid UTF-8: byte 0xC0 at offset 0"),
        (b'[{' + TO + b'"body": "b", "headers": {"X-\xff": "v"}}]',
         "its name is not valid UTF-8: byte 0xFF at offset 2"),
    ]
    with Aiosmtpd() as srv:
        for params, want in cases:
            refused(run_raw(req_bytes(srv, params)), want, "UTF-8")
        no_connection(srv)


def test_result_is_utf8_when_the_action_name_is_not():
    with Aiosmtpd() as srv:
        text = req_bytes(srv, b'[{' + TO + b'"body": "b"}]').replace(
            b'"send email"', b'"send\xff email"')
        r = run_raw(text)
        refused(r, "action: is not valid UTF-8: byte 0xFF at offset 4")
        eq(r.result["action"], "send\ufffd email", "the action echoed, made valid")
        no_connection(srv)


class ScriptedSmtp:
    """A minimal SMTP server on 127.0.0.1 (port 0) whose final reply to DATA
    carries bytes that are not UTF-8: a real peer, misbehaving on purpose.
    One connection, bounded by socket timeouts and a command count."""

    FINAL = b"250 2.0.0 queued as \xff\xfe caf\xe9\r\n"

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.sock.settimeout(20)
        self.port = self.sock.getsockname()[1]
        self.got_data = False
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.sock.close()
        self.thread.join(20)
        return False

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            f = conn.makefile("rb")
            conn.sendall(b"220 scripted ESMTP\r\n")
            for _ in range(50):
                line = f.readline()
                if not line:
                    return
                verb = line[:4].upper()
                if verb == b"EHLO":
                    conn.sendall(b"250-scripted\r\n250 8BITMIME\r\n")
                elif verb == b"DATA":
                    conn.sendall(b"354 go ahead\r\n")
                    for _ in range(100000):
                        body = f.readline()
                        if not body or body == b".\r\n":
                            break
                    self.got_data = True
                    conn.sendall(self.FINAL)
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"250 ok\r\n")


def test_result_is_utf8_when_the_server_reply_is_not():
    """The mail was really sent: its result must reach a strict platform."""
    with ScriptedSmtp() as srv:
        a = asset(srv.port, sender_address=SENDER)
        r = run_raw({"action": "send email", "asset": a,
                     "parameters": [{"to": "soc@corp.example", "body": "b"}]})
    true(srv.got_data, "the server received the message", r)
    eq(r.rc, 0, "exit status\n%s" % r)
    res = r.result  # strict UTF-8 and JSON, or this fails
    reply = res["action_results"][0]["data"][0]["smtp_reply"]
    contains(reply, "250 2.0.0 queued as \ufffd\ufffd caf\ufffd", "reply, made valid")


# --------------------------------------------------------------------------
# secrets, asset_id

def test_secret_values_are_never_shown_whatever_their_type():
    cases = [
        ("password", 98765432, ("98765432", "9.87654e+07")),
        ("password", 1234.5678, ("1234.57", "1234.5678")),
        ("client_secret", ["s3cr3t-in-a-list"], ("s3cr3t",)),
        ("client_secret", {"k": "s3cr3t-in-an-object"}, ("s3cr3t",)),
        ("secret_key", 424242, ("424242",)),
    ]
    with Aiosmtpd() as srv:
        for key, value, leaks in cases:
            a = asset(srv.port, sender_address=SENDER, **{key: value})
            r = run_raw({"action": "send email", "asset": a,
                         "parameters": [{"to": "soc@corp.example", "body": "b"}]})
            msg = refused(r, "asset.%s: must be a string" % key, "not shown")
            for leak in leaks:
                not_contains(msg, leak, "message for %s" % key)
                not_contains(r.err.decode("utf-8", "replace"), leak, "stderr for %s" % key)
        no_connection(srv)


def test_asset_id_that_is_not_a_file_name_is_refused():
    with Aiosmtpd() as srv:
        for bad in ("..", ".", ".hidden", "-rf"):
            a = asset(srv.port, sender_address=SENDER, throttle_period=0.01)
            r = run_raw({"action": "send email", "asset": a, "asset_id": bad,
                         "parameters": [{"to": "soc@corp.example", "body": "b"}]})
            refused(r, "asset_id: %s" % json.dumps(bad), "letters, digits", "not starting with")
        no_connection(srv)
        # a dot inside is fine, and the state it names works
        a = asset(srv.port, sender_address=SENDER, throttle_period=0.01)
        r = run_raw({"action": "send email", "asset": a, "asset_id": "smtp.prod_1",
                     "parameters": [{"to": "soc@corp.example", "body": "b"}]})
        eq(r.rc, 0, "exit status\n%s" % r)
        eq(len(srv.wait_messages(1)), 1, "messages")


# --------------------------------------------------------------------------
# the state dir

def throttled(srv, state_args=(), env=None):
    a = asset(srv.port, sender_address=SENDER, throttle_period=0.01)
    return run_raw({"action": "send email", "asset": a,
                    "parameters": [{"to": "soc@corp.example", "body": "b"}]},
                   args=state_args, env=env)


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_state_dir_others_can_write_is_refused_and_left_alone():
    with Aiosmtpd() as srv:
        shared = mkdtemp("sticky")
        os.chmod(shared, 0o1777)  # as /tmp
        r = throttled(srv, ["--state-dir", shared])
        refused(r, "state directory %s (from --state-dir) can be written by others (mode 1777)"
                % shared, "chmod 700 %s or choose another --state-dir" % shared, rc=1)
        eq(oct(mode_of(shared)), oct(0o1777), "mode of a directory we did not create")
        group = mkdtemp("group")
        os.chmod(group, 0o770)
        r = throttled(srv, env={"SMTP_CONNECTOR_STATE_DIR": group})
        refused(r, "(from SMTP_CONNECTOR_STATE_DIR) can be written by others (mode 0770)",
                "choose another SMTP_CONNECTOR_STATE_DIR", rc=1)
        eq(oct(mode_of(group)), oct(0o770), "mode of a directory we did not create")
        no_connection(srv)


def test_state_dir_of_another_owner_is_refused():
    if os.geteuid() != 0:
        skip("needs root to give a directory to another user")
    with Aiosmtpd() as srv:
        theirs = mkdtemp("theirs")
        os.chmod(theirs, 0o700)
        os.chown(theirs, 65534, 65534)
        r = throttled(srv, ["--state-dir", theirs])
        refused(r, "belongs to uid 65534, not to this user (uid 0)", "--state-dir", rc=1)
        no_connection(srv)


def test_state_dir_readable_by_others_is_used_not_chmoded():
    with Aiosmtpd() as srv:
        readable = mkdtemp("readable")
        os.chmod(readable, 0o755)
        r = throttled(srv, ["--state-dir", readable])
        eq(r.rc, 0, "exit status\n%s" % r)
        eq(oct(mode_of(readable)), oct(0o755), "mode left as it was")
        contains(r.err.decode(), "is readable by others (mode 0755)", "warning")
        created = os.path.join(mkdtemp("parent"), "new", "state")
        r = throttled(srv, ["--state-dir", created])
        eq(r.rc, 0, "exit status\n%s" % r)
        eq(oct(mode_of(created)), oct(0o700), "a state dir created here")
        eq(len(srv.wait_messages(2)), 2, "messages")


run(globals())
