#!/usr/bin/python3
"""Round trips the protocol does not need are not made (issue 11): AUTH
PLAIN and XOAUTH2 carry their SASL initial response on the AUTH line
(RFC 4954 §4), so authenticating costs one reply, not two. Checked in the
commands aiosmtpd received; bench/latency.py has the wall times and the
round-trip counts against a server 25 ms away."""
import base64
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Aiosmtpd, asset, eq, run, run_connector, true  # noqa: E402

USER, PW = "rt@corp.example", "rt-pass-1"


def auth_lines(srv):
    return [c for c in srv.commands() if c.startswith("AUTH")]


def test_auth_plain_sends_the_initial_response():
    with Aiosmtpd(auth={USER: PW}, auth_mechs="PLAIN") as srv:
        r = run_connector({"action": "send email", "asset": asset(srv.port, username=USER, password=PW),
                           "parameters": [{"from": USER, "to": "a@corp.example", "body": "b"}]})
        eq(r.rc, 0, "sent\n%s" % r)
        lines = auth_lines(srv)
        eq(len(lines), 1, "one AUTH command: %s" % lines)
        verb, mech, *ir = lines[0].split(" ")
        eq(mech.upper(), "PLAIN", "mechanism")
        eq(len(ir), 1, "the initial response is on the AUTH line")
        eq(base64.b64decode(ir[0]).split(b"\0")[1:], [USER.encode(), PW.encode()], "PLAIN response")
        true(PW not in r.stdout + r.stderr, "password not in output")


if __name__ == "__main__":
    run(globals())
