#!/usr/bin/python3
"""Velociraptor's mail() parameters, point by point (seed-systems.md §2),
against aiosmtpd: throttle_mode drop ("Send too fast, suppressing.")
across processes, throttle_max_wait bounding the wait mode, and ca_pem
(root_ca) trusting a server beside the system store, never echoed."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (Aiosmtpd, asset, contains, eq, not_contains, run,  # noqa: E402
                     run_connector, true)

MAIL = {"from": "vr@corp.example", "to": "soc@corp.example", "subject": "s", "body": "b"}


def send(srv, state, **asset_kw):
    req = {"action": "send email", "asset_id": "vr", "asset": dict(asset(srv.port), **asset_kw),
           "parameters": [MAIL]}
    return run_connector(req, env={"SMTP_CONNECTOR_STATE_DIR": state})


def test_throttle_drop_fails_at_once_across_processes():
    state = os.path.join(harness.tmpdir(), "state")
    with Aiosmtpd() as srv:
        r1 = send(srv, state, throttle_period=30, throttle_mode="drop")
        eq(r1.rc, 0, "first send\n%s" % r1)
        t0 = time.monotonic()
        r2 = send(srv, state, throttle_period=30, throttle_mode="drop")
        took = time.monotonic() - t0
        eq(r2.rc, 1, "second send (another process) is dropped\n%s" % r2)
        ar = r2.result["action_results"][0]
        eq(ar["data"][0]["error"], "throttled", "data.error")
        contains(ar["message"], "s left", "the time left is said")
        true(took < 5, "dropped at once (took %.1f s)" % took)
        time.sleep(0.3)
        eq(len(srv.messages()), 1, "only the first message was sent")


def test_throttle_max_wait_bounds_the_wait_mode():
    state = os.path.join(harness.tmpdir(), "state")
    with Aiosmtpd() as srv:
        eq(send(srv, state, throttle_period=30).rc, 0, "first send")
        t0 = time.monotonic()
        r = send(srv, state, throttle_period=30, throttle_max_wait=1)
        took = time.monotonic() - t0
        eq(r.rc, 1, "a 30 s wait over throttle_max_wait 1 fails\n%s" % r)
        eq(r.result["action_results"][0]["data"][0]["error"], "throttled", "data.error")
        contains(r.result["action_results"][0]["message"], "throttle_max_wait", "message")
        true(took < 5, "did not wait (took %.1f s)" % took)
        t0 = time.monotonic()
        r = send(srv, state, throttle_period=1.5, throttle_max_wait=10)
        eq(r.rc, 0, "a wait within throttle_max_wait is waited\n%s" % r)
        true(time.monotonic() - t0 >= 1.0, "it waited for the slot")
        eq(len(srv.wait_messages(2)), 2, "two sent")


def test_ca_pem_trusts_the_server_and_is_never_echoed():
    ca = harness.shared_ca()
    other = harness.shared_ca("other")
    with open(ca.ca_cert) as f:
        pem = f.read()
    with open(other.ca_cert) as f:
        wrong = f.read()
    with Aiosmtpd(starttls=ca) as srv:
        state = os.path.join(harness.tmpdir(), "state")
        r = send(srv, state, ssl_config="StartTLS", ca_pem=pem)
        eq(r.rc, 0, "verified with ca_pem\n%s" % r)
        r = send(srv, state, ssl_config="StartTLS", ca_pem=wrong)
        eq(r.rc, 1, "another CA's PEM does not verify the server\n%s" % r)
        # ca_file and ca_pem together: both are trusted
        r = send(srv, state, ssl_config="StartTLS", ca_pem=wrong, ca_file=ca.ca_cert)
        eq(r.rc, 0, "ca_file still trusted beside ca_pem\n%s" % r)
        r = send(srv, state, ssl_config="StartTLS", ca_pem="-----BEGIN CERTIFICATE-----\nMIIB\n")
        true(r.rc != 0, "damaged PEM refused")
        contains(r.stdout, "ca_pem", "names the field")
        not_contains(r.stdout + r.stderr, "MIIB", "the PEM text is never echoed")
        eq(len(srv.wait_messages(2)), 2, "two messages sent")


def test_server_as_host_port():
    """LimaCharlie's dest_host form: host:port and [v6]:port; a port that
    contradicts asset.port is refused before connecting."""
    with Aiosmtpd() as srv:
        state = os.path.join(harness.tmpdir(), "state")
        req = lambda **a: {"action": "send email", "asset": dict({"ssl_config": "None"}, **a),  # noqa: E731
                           "parameters": [MAIL]}
        env = {"SMTP_CONNECTOR_STATE_DIR": state}
        r = run_connector(req(server="127.0.0.1:%d" % srv.port), env=env)
        eq(r.rc, 0, "host:port\n%s" % r)
        r = run_connector(req(server="127.0.0.1:%d" % srv.port, port=srv.port), env=env)
        eq(r.rc, 0, "host:port with the same port\n%s" % r)
        r = run_connector(req(server="127.0.0.1:%d" % srv.port, port=2525), env=env)
        true(r.rc != 0, "conflicting port refused", r)
        contains(r.stdout, "give the port in one place", "message")
        r = run_connector(req(server="[::1]:x"), env=env)
        true(r.rc != 0, "bad port after ] refused", r)
        contains(r.stdout, "asset.server", "names the field")
        eq(len(srv.wait_messages(2)), 2, "two sent")


def test_server_as_bracketed_v6_with_port():
    import socket
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        harness.skip("no IPv6 loopback here")
    # aiosmtpd binds 127.0.0.1 only; a refused [::1]:port proves the form is parsed and used
    port = harness.free_port()
    r = run_connector({"action": "test connectivity",
                       "asset": {"server": "[::1]:%d" % port, "ssl_config": "None", "timeout": 3}})
    eq(r.rc, 1, "connect error, not an input error\n%s" % r)
    contains(r.stdout, "::1", "the v6 address is the one tried")


def write_secret(d, name, obj, mode=0o600):
    path = os.path.join(d, name + ".json")
    with open(path, "w") as f:
        json.dump(obj, f)
    os.chmod(path, mode)
    return path


def test_named_secret_fills_the_asset():
    d = harness.tmpdir()
    with Aiosmtpd(auth={"vr@corp.example": "s3cr3t-Pw"}) as srv:
        write_secret(d, "mail", {"server": "127.0.0.1", "port": srv.port, "ssl_config": "None",
                                 "username": "vr@corp.example", "password": "s3cr3t-Pw"})
        req = {"action": "send email", "secret": "mail", "parameters": [MAIL]}
        r = run_connector(req, args=["--secrets-dir", d])
        eq(r.rc, 0, "sent with the secret's asset\n%s" % r)
        not_contains(r.stdout + r.stderr, "s3cr3t-Pw", "password never in output")
        # the request may fill what the secret leaves empty
        req2 = dict(req, asset={"timeout": 10})
        eq(run_connector(req2, args=["--secrets-dir", d]).rc, 0, "asset fills the gaps")
        # XDG_CONFIG_HOME is the default place
        xdg = harness.tmpdir()
        os.makedirs(os.path.join(xdg, "smtp-connector", "secrets"))
        write_secret(os.path.join(xdg, "smtp-connector", "secrets"), "mail",
                     {"server": "127.0.0.1", "port": srv.port, "ssl_config": "None",
                      "username": "vr@corp.example", "password": "s3cr3t-Pw"})
        eq(run_connector(req, env={"XDG_CONFIG_HOME": xdg}).rc, 0, "found under XDG_CONFIG_HOME")
        eq(len(srv.wait_messages(3)), 3, "three sent")
        eq([m["auth_login"] for m in srv.messages()], ["vr@corp.example"] * 3, "authenticated")


def test_named_secret_refusals_name_the_file_and_the_fix():
    d = harness.tmpdir()
    with Aiosmtpd() as srv:
        good = {"server": "127.0.0.1", "port": srv.port, "ssl_config": "None",
                "password": "s3cr3t-Pw"}
        write_secret(d, "open", good, 0o644)
        write_secret(d, "ok", good)
        os.symlink(os.path.join(d, "ok.json"), os.path.join(d, "link.json"))
        write_secret(d, "list", [1, 2])
        cases = [("open", {}, "chmod 600"), ("link", {}, "symbolic link"),
                 ("missing", {}, "No such file"), ("list", {}, "JSON object"),
                 ("ok", {"port": 25}, "asset.port: set both"),
                 ("..", {}, "secret")]
        for name, a, needle in cases:
            req = {"action": "send email", "secret": name, "parameters": [MAIL]}
            if a:
                req["asset"] = a
            r = run_connector(req, args=["--secrets-dir", d])
            true(r.rc != 0, "secret %s refused" % name, r)
            contains(r.stdout, needle, "message for secret %s" % name)
            not_contains(r.stdout + r.stderr, "s3cr3t-Pw", "password never in output")
        eq(srv.messages(), [], "nothing sent")


def test_recipients_as_json_arrays():
    with Aiosmtpd() as srv:
        base = {"from": "vr@corp.example", "subject": "s"}
        sets = [
            dict(base, body="b", to=["a@corp.example", "\"Doe, Jane\" <jane@corp.example>, c@corp.example"],
                 cc=["cc@corp.example"], bcc=["hidden@corp.example"]),
        ]
        r = run_connector({"action": "send email", "asset": asset(srv.port), "parameters": sets})
        eq(r.rc, 0, "arrays accepted\n%s" % r)
        r = run_connector({"action": "send event", "asset": asset(srv.port),
                           "parameters": [dict(base, to=["a@corp.example"], event={"x": 1})]})
        eq(r.rc, 0, "send event takes arrays too\n%s" % r)
        m1, m2 = srv.wait_messages(2)
        eq(sorted(m1["rcpt_tos"]), sorted(["a@corp.example", "jane@corp.example", "c@corp.example",
                                          "cc@corp.example", "hidden@corp.example"]), "envelope")
        eq(m1["msg"]["Bcc"], None, "no Bcc header")
        contains(m1["msg"]["To"], "Doe, Jane", "display name kept")
        eq(m2["rcpt_tos"], ["a@corp.example"], "send event envelope")
        r = run_connector({"action": "send email", "asset": asset(srv.port),
                           "parameters": [dict(base, body="b", to=["ok@corp.example", "bad@@x"])]})
        true(r.rc != 0, "a bad element is refused", r)
        contains(r.stdout, "to[1]", "names the element")
        eq(len(srv.messages()), 2, "nothing more sent")


def test_files_from_attachment_dirs():
    base = harness.tmpdir()
    allowed = os.path.join(base, "reports")
    os.makedirs(os.path.join(allowed, "sub"))
    data = bytes(range(256)) * 64
    with open(os.path.join(allowed, "sub", "r.bin"), "wb") as f:
        f.write(data)
    with open(os.path.join(base, "outside.txt"), "w") as f:
        f.write("secret outside")
    os.symlink("/etc/passwd", os.path.join(allowed, "passwd"))
    os.symlink(os.path.join(base, "outside.txt"), os.path.join(allowed, "out.txt"))
    with Aiosmtpd() as srv:
        a = dict(asset(srv.port), attachment_dirs=[allowed])
        ok = {"action": "send email", "asset": a, "parameters": [dict(
            MAIL, files=[{"path": os.path.join(allowed, "sub", "r.bin"), "filename": "Report 1.bin"},
                         {"path": os.path.join(allowed, "sub", "..", "sub", "r.bin")}])]}
        r = run_connector(ok)
        eq(r.rc, 0, "files inside attachment_dirs\n%s" % r)
        m = srv.wait_messages(1)[0]["msg"]
        atts = [p for p in m.walk() if p.get_content_disposition() == "attachment"]
        eq([p.get_filename() for p in atts], ["Report 1.bin", "r.bin"], "file names")
        eq([p.get_payload(decode=True) for p in atts], [data, data], "bytes")
        bad = [(os.path.join(allowed, "passwd"), a, "not inside"),
               (os.path.join(allowed, "out.txt"), a, "not inside"),
               (os.path.join(base, "outside.txt"), a, "not inside"),
               ("reports/sub/r.bin", a, "absolute"),
               (os.path.join(allowed, "sub", "r.bin"), asset(srv.port), "attachment_dirs"),
               (os.path.join(allowed, "none"), a, "cannot read")]
        for path, aa, needle in bad:
            r = run_connector({"action": "send email", "asset": aa,
                               "parameters": [dict(MAIL, files=[{"path": path}])]})
            true(r.rc != 0, "%s refused" % path, r)
            contains(r.stdout, "files[0].path", "names the parameter for %s" % path)
            contains(r.stdout, needle, "message for %s" % path)
            not_contains(r.stdout, "root:x:0", "no passwd content")
        eq(len(srv.messages()), 1, "nothing more sent")
        eq([c for c in srv.commands() if c.startswith("MAIL")].__len__(), 1, "one MAIL FROM")


if __name__ == "__main__":
    run(globals())
