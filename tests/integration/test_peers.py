#!/usr/bin/python3
"""Self-tests of the integration harness and its SMTP/OAuth peers.

They run without the connector: Python's smtplib (and urllib) plays the
client, with TLS verified against the CA the harness generates.  A test skips
only when its peer is not installed (postfix smtp-sink, tests/node_modules).
"""

import base64
import glob
import hashlib
import json
import os
import secrets
import smtplib
import socket
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from email.message import EmailMessage

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Aiosmtpd, OAuthPeers, Silent, SmtpSink, asset, contains, eq,  # noqa: E402
                     free_port, not_contains, raises, run, shared_ca, true)

ca = shared_ca  # ca(name): one CA per name for the whole file


def tls_ctx(authority):
    return ssl.create_default_context(cafile=authority.ca_cert)


def message(subject="Harness self-test", to="soc@corp.example", body="Hello.\n"):
    m = EmailMessage()
    m["From"] = "SOAR <soar@corp.example>"
    m["To"] = to
    m["Subject"] = subject
    m.set_content(body)
    return m


def ehlo_features(client):
    client.ehlo("client.test")
    return client.esmtp_features


def xoauth2(user, token):
    return base64.b64encode(("user=%s\x01auth=Bearer %s\x01\x01" % (user, token)).encode()).decode()


# ---------------------------------------------------------------- aiosmtpd

def test_plain_send_is_captured_and_parsed():
    with Aiosmtpd() as srv:
        with smtplib.SMTP(srv.host, srv.port, timeout=10) as c:
            feats = ehlo_features(c)
            not_contains(feats, "auth", "AUTH offered without --auth")
            contains(feats, "size")
            m = message(subject="Plain déjà vu", to="SOC <soc@corp.example>")
            m.add_attachment(b"\x00\x01binary", maintype="application",
                             subtype="octet-stream", filename="blob.bin")
            c.send_message(m, from_addr="soar@corp.example",
                           to_addrs=["soc@corp.example", "cc@corp.example"])
            code, reply = c.noop()
            eq(code, 250, "NOOP")
        msgs = srv.wait_messages(1)
        eq(len(msgs), 1, "messages")
        got = msgs[0]
        eq(got["envelope"]["mail_from"], "soar@corp.example", "MAIL FROM")
        eq(got["rcpt_tos"], ["soc@corp.example", "cc@corp.example"], "RCPT TO")
        eq(got["tls"], False, "tls")
        eq(got["auth_login"], None, "auth_login")
        eq(got["msg"]["subject"], "Plain déjà vu", "parsed Subject")
        eq(got["msg"]["to"].addresses[0].addr_spec, "soc@corp.example", "parsed To")
        atts = list(got["msg"].iter_attachments())
        eq([a.get_filename() for a in atts], ["blob.bin"], "attachments")
        eq(atts[0].get_content(), b"\x00\x01binary", "attachment content")
        true(got["raw"].startswith(b"From: ") or b"\r\nSubject:" in got["raw"], "raw bytes kept")
        cmds = srv.commands()
        eq([c.split(" ")[0] for c in cmds], ["EHLO", "MAIL", "RCPT", "RCPT", "DATA", "NOOP", "QUIT"],
           "commands received")
        eq(srv.log_lines()[0], "CONNECT", "first log line")
    eq(srv.returncode, 0, "exit status after SIGTERM")


def test_dot_stuffing_and_8bit_body_survive():
    with Aiosmtpd() as srv:
        raw = (b"From: a@corp.example\r\nTo: b@corp.example\r\nSubject: dots\r\n"
               b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
               b"Content-Transfer-Encoding: 8bit\r\n\r\n.leading dot\r\n..two\r\n\xc3\xa9t\xc3\xa9\r\n")
        with smtplib.SMTP(srv.host, srv.port, timeout=10) as c:
            c.sendmail("a@corp.example", ["b@corp.example"], raw, mail_options=["BODY=8BITMIME"])
        got = srv.wait_messages(1)[0]
        eq(got["raw"], raw, "raw message bytes")
        eq(got["msg"].get_content(), ".leading dot\n..two\nété\n", "body")
        contains(got["mail_options"], "BODY=8BITMIME")


def test_starttls_then_auth_plain():
    authority = ca()
    with Aiosmtpd(starttls=authority, auth="alice:s3cret pass", auth_required=True) as srv:
        with smtplib.SMTP(srv.host, srv.port, timeout=10) as c:
            feats = ehlo_features(c)
            contains(feats, "starttls")
            not_contains(feats, "auth", "AUTH before TLS")
            code, _ = c.mail("soar@corp.example")
            eq(code, 530, "MAIL without AUTH")
            c.rset()
            c.starttls(context=tls_ctx(authority))
            feats = ehlo_features(c)
            eq(feats.get("auth", "").split(), ["LOGIN", "PLAIN"], "AUTH after TLS")
            not_contains(feats, "starttls", "STARTTLS after TLS")
            c.user, c.password = "alice", "s3cret pass"
            code, reply = c.auth("PLAIN", c.auth_plain)
            eq(code, 235, "AUTH PLAIN")
            c.send_message(message())
        got = srv.wait_messages(1)[0]
        eq(got["tls"], True, "tls")
        eq(got["auth_login"], "alice", "auth_login")
        lines = srv.log_lines()
        i_start, i_done = lines.index("TLS-START"), lines.index("TLS-DONE")
        true(i_start < i_done, "TLS-START before TLS-DONE", lines)
        plain = base64.b64encode(b"\0alice\0s3cret pass").decode()
        contains(lines, "AUTH PLAIN " + plain, "AUTH line logged as received")
        true(lines.index("AUTH PLAIN " + plain) > i_done, "AUTH only after TLS", lines)


def test_starttls_then_auth_login():
    authority = ca()
    with Aiosmtpd(starttls=authority, auth={"bob": "hunter2"}, auth_mechs="LOGIN") as srv:
        with smtplib.SMTP("localhost", srv.port, timeout=10) as c:  # verifies DNS:localhost
            c.starttls(context=tls_ctx(authority))
            feats = ehlo_features(c)
            eq(feats.get("auth", "").split(), ["LOGIN"], "restricted mechanisms")
            code, _ = c.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0bob\0hunter2").decode())
            eq(code, 504, "PLAIN not offered")
            c.login("bob", "hunter2")
            c.send_message(message())
        eq(srv.wait_messages(1)[0]["auth_login"], "bob", "auth_login")
        contains(srv.log_lines(), base64.b64encode(b"hunter2").decode(),
                 "LOGIN continuation line logged")


def test_untrusted_ca_is_rejected_by_verifying_client():
    trusted, other = ca(), ca("other")
    true(open(trusted.ca_cert).read() != open(other.ca_cert).read(), "independent CAs")
    with Aiosmtpd(starttls=other) as srv:
        with smtplib.SMTP(srv.host, srv.port, timeout=10) as c:
            c.ehlo("client.test")
            e = raises(ssl.SSLError, c.starttls, context=tls_ctx(trusted))
            contains(str(e), "CERTIFICATE_VERIFY_FAILED")
        srv.stop()
        contains(srv.log_lines(), "TLS-START")
        not_contains(srv.log_lines(), "TLS-DONE")


def test_implicit_tls():
    authority = ca()
    with Aiosmtpd(implicit_tls=authority, auth="carol:pw") as srv:
        with smtplib.SMTP_SSL(srv.host, srv.port, timeout=10, context=tls_ctx(authority)) as c:
            feats = ehlo_features(c)
            not_contains(feats, "starttls")
            contains(feats, "auth")
            c.login("carol", "pw")
            c.send_message(message())
        got = srv.wait_messages(1)[0]
        eq((got["tls"], got["auth_login"]), (True, "carol"), "tls, auth_login")
        eq(srv.log_lines()[0], "CONNECT-TLS", "first log line")
        # a plaintext client gets nothing it can read as SMTP
        with socket.create_connection((srv.host, srv.port), timeout=5) as s:
            s.sendall(b"EHLO plain.test\r\n")
            data = s.recv(100)
            true(not data.startswith(b"220"), "no plaintext greeting")


def test_wrong_password_gets_535():
    with Aiosmtpd(auth="alice:right") as srv:
        with smtplib.SMTP(srv.host, srv.port, timeout=10) as c:
            e = raises(smtplib.SMTPAuthenticationError, c.login, "alice", "wrong")
            eq(e.smtp_code, 535, "code")
            eq(e.smtp_error, b"5.7.8 Authentication credentials invalid", "reply text")
        eq(srv.messages(), [], "messages")


def test_auth_required_without_credentials():
    with Aiosmtpd(auth="u:p", auth_required=True) as srv:
        with smtplib.SMTP(srv.host, srv.port, timeout=10) as c:
            e = raises(smtplib.SMTPSenderRefused, c.send_message, message())
            eq((e.smtp_code, e.smtp_error), (530, b"5.7.0 Authentication required"), "reply")
        not_contains(" ".join(srv.commands()), "AUTH")


def test_refuse_rcpt_partial_acceptance():
    with Aiosmtpd(refuse_rcpt=r"^nobody@") as srv:
        with smtplib.SMTP(srv.host, srv.port, timeout=10) as c:
            refused = c.sendmail("soar@corp.example", ["soc@corp.example", "nobody@corp.example"],
                                 message().as_bytes())
        eq(refused, {"nobody@corp.example": (
            550, b"5.1.1 <nobody@corp.example>: Recipient address rejected: User unknown")},
            "refused recipients")
        eq(srv.wait_messages(1)[0]["rcpt_tos"], ["soc@corp.example"], "accepted recipients")


def test_tempfail_rcpt():
    with Aiosmtpd(tempfail_rcpt="busy") as srv:
        with smtplib.SMTP(srv.host, srv.port, timeout=10) as c:
            e = raises(smtplib.SMTPRecipientsRefused, c.sendmail, "a@corp.example",
                       ["busy@corp.example"], message().as_bytes())
            code, text = e.recipients["busy@corp.example"]
            eq(code, 450, "code")
            true(text.startswith(b"4.2.0 <busy@corp.example>"), "enhanced code", text)
        eq(srv.messages(), [], "messages")


def test_refuse_mail_and_refuse_data():
    with Aiosmtpd(refuse_mail="^spammer@") as srv:
        with smtplib.SMTP(srv.host, srv.port, timeout=10) as c:
            e = raises(smtplib.SMTPSenderRefused, c.sendmail, "spammer@x.example",
                       ["a@corp.example"], b"Subject: x\r\n\r\nx\r\n")
            eq(e.smtp_code, 550, "MAIL refused")
    with Aiosmtpd(refuse_data=True) as srv:
        with smtplib.SMTP(srv.host, srv.port, timeout=10) as c:
            e = raises(smtplib.SMTPDataError, c.send_message, message())
            eq((e.smtp_code, e.smtp_error), (554, b"5.6.0 Message rejected"), "DATA refused")
            eq(c.noop()[0], 250, "connection still usable")
        eq(srv.messages(), [], "messages")


def test_smtputf8_advertising():
    with Aiosmtpd() as srv:
        with smtplib.SMTP(srv.host, srv.port, timeout=10) as c:
            contains(ehlo_features(c), "smtputf8")
            m = message(to="jörg@bücher.example")
            c.send_message(m)  # smtplib uses SMTPUTF8 for the non-ASCII address
        got = srv.wait_messages(1)[0]
        eq((got["smtputf8"], got["rcpt_tos"]), (True, ["jörg@bücher.example"]), "SMTPUTF8 envelope")
    with Aiosmtpd(smtputf8=False) as srv:
        with smtplib.SMTP(srv.host, srv.port, timeout=10) as c:
            not_contains(ehlo_features(c), "smtputf8")
            raises(smtplib.SMTPNotSupportedError, c.send_message, message(to="jörg@bücher.example"))
            code, _ = c.docmd("MAIL", "FROM:<a@corp.example> SMTPUTF8")
            eq(code, 501, "SMTPUTF8 parameter refused")


def test_close_after_forces_reconnect():
    with Aiosmtpd(close_after=1) as srv:
        with smtplib.SMTP(srv.host, srv.port, timeout=10) as c:
            c.send_message(message(subject="one"))
            raises(smtplib.SMTPServerDisconnected, c.send_message, message(subject="two"))
        with smtplib.SMTP(srv.host, srv.port, timeout=10) as c:
            c.send_message(message(subject="three"))
        msgs = srv.wait_messages(2)
        eq([m["msg"]["subject"] for m in msgs], ["one", "three"], "subjects")
        true(msgs[0]["connection"] != msgs[1]["connection"], "two connections")
        eq(srv.log_lines().count("CONNECT"), 2, "connections logged")


def test_max_size():
    with Aiosmtpd(max_size=2000) as srv:
        with smtplib.SMTP(srv.host, srv.port, timeout=10) as c:
            eq(ehlo_features(c).get("size"), "2000", "SIZE advertised")
            e = raises(smtplib.SMTPSenderRefused, c.send_message, message(body="x" * 5000))
            eq(e.smtp_code, 552, "declared SIZE too big")
            c.rset()
            c.send_message(message(body="small"))
        eq(len(srv.wait_messages(1)), 1, "small message accepted")


def test_static_xoauth2_on_aiosmtpd():
    with Aiosmtpd(xoauth2="dave@corp.example:tok-123", auth_mechs="") as srv:
        with smtplib.SMTP(srv.host, srv.port, timeout=10) as c:
            eq(ehlo_features(c).get("auth", "").split(), ["XOAUTH2"], "mechanisms")
            code, _ = c.docmd("AUTH", "XOAUTH2 " + xoauth2("dave@corp.example", "wrong"))
            eq(code, 334, "error challenge")
            eq(c.docmd("")[0], 535, "after the client's empty line")
            code, _ = c.docmd("AUTH", "XOAUTH2 " + xoauth2("dave@corp.example", "tok-123"))
            eq(code, 235, "good token")
            c.send_message(message())
        eq(srv.wait_messages(1)[0]["auth_login"], "dave@corp.example", "auth_login")


# ---------------------------------------------------------------- silent, smtp-sink

def test_silent_server_times_out():
    with Silent() as srv:
        t0 = time.monotonic()
        e = raises((socket.timeout, TimeoutError, smtplib.SMTPServerDisconnected),
                   smtplib.SMTP, srv.host, srv.port, timeout=0.5)
        took = time.monotonic() - t0
        true(0.4 < took < 5, "timed out after about 0.5 s (%.2f s)" % took, e)
        eq(srv.log_lines()[:1], ["CONNECT"], "connection accepted")


def test_smtp_sink_accepts_and_dumps():
    with SmtpSink() as sink:
        with smtplib.SMTP(sink.host, sink.port, timeout=10) as c:
            feats = ehlo_features(c)
            contains(feats, "pipelining")
            c.send_message(message(subject="to the sink"), to_addrs=["x@corp.example",
                                                                     "y@corp.example"])
        got = sink.wait_dumps(1)[0]
        eq(got["msg"]["subject"], "to the sink", "parsed Subject")
        eq(got["msg"].get_content(), "Hello.\n", "body")
        eq(got["envelope"]["mail_args"].split()[0], "<soar@corp.example>", "X-Mail-Args")
        eq(got["envelope"]["rcpt_args"], ["<x@corp.example>", "<y@corp.example>"],
           "X-Rcpt-Args")


def test_smtp_sink_fault_options():
    with SmtpSink(["-Q", "RCPT"], dump=False) as sink:
        with smtplib.SMTP(sink.host, sink.port, timeout=10) as c:
            c.ehlo("client.test")
            c.mail("a@corp.example")
            code, text = c.rcpt("b@corp.example")
            eq(code, 421, "421 and disconnect after RCPT")
    with SmtpSink(["-f", "DATA"], dump=False) as sink:
        with smtplib.SMTP(sink.host, sink.port, timeout=10) as c:
            e = raises(smtplib.SMTPDataError, c.send_message, message())
            eq(e.smtp_code // 100, 5, "hard-rejected DATA")


# ---------------------------------------------------------------- helpers

def test_helpers():
    a = asset(2525, username="u")
    eq(a, {"server": "127.0.0.1", "port": 2525, "ssl_config": "None", "username": "u"}, "asset")
    p = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", p))  # free_port() gave a bindable port
    e = raises(AssertionError, eq, 1, 2, "thing")
    contains(str(e), "thing: expected 2, got 1")


def test_run_connector_plumbing():
    """run_connector() with stand-in binaries (cat, sleep): JSON Lines in and out."""
    import harness
    saved = os.environ.get("SMTP_CONNECTOR")
    try:
        os.environ["SMTP_CONNECTOR"] = "/bin/cat"
        reqs = [{"action": "test connectivity", "asset": asset(25)}, {"n": 2}]
        r = harness.run_connector(reqs)
        eq((r.rc, r.results, r.bad_lines), (0, reqs, []), "cat echoes JSON Lines")
        r = harness.run_connector(reqs[0])
        eq(r.result, reqs[0], "single request")
        r = harness.run_connector(stdin_text="not json\n")
        eq(r.bad_lines, ["not json"], "bad lines")
        raises(AssertionError, lambda: r.result)
        os.environ["SMTP_CONNECTOR"] = "/bin/sleep"
        t0 = time.monotonic()
        e = raises(AssertionError, harness.run_connector, None, args=["30"], timeout=0.5)
        contains(str(e), "did not finish within 0.5 s")
        true(time.monotonic() - t0 < 5, "killed promptly")
        del os.environ["SMTP_CONNECTOR"]
        raises(harness.Skip, harness.run_connector, {})
    finally:
        if saved is None:
            os.environ.pop("SMTP_CONNECTOR", None)
        else:
            os.environ["SMTP_CONNECTOR"] = saved


# ---------------------------------------------------------------- OAuth peers

def test_oauth_client_credentials_then_xoauth2():
    with OAuthPeers(client_id="cid", client_secret="csecret") as peers:
        status, body = peers.fetch_token(scope="https://mail.test/.default")
        eq(status, 200, "token endpoint status")
        eq(body.get("token_type"), "Bearer", "token_type")
        eq(body.get("expires_in"), 3600, "expires_in")
        token = body["access_token"]
        status, body2 = peers.fetch_token(basic=False)
        eq(status, 200, "client secret in the form body")
        with smtplib.SMTP(peers.host, peers.smtp_port, timeout=10) as c:
            eq(ehlo_features(c).get("auth", "").split(), ["PLAIN", "LOGIN", "XOAUTH2"], "AUTH")
            code, reply = c.docmd("AUTH", "XOAUTH2 " + xoauth2("svc@corp.example", token))
            eq(code, 235, "XOAUTH2 with an issued token")
            c.send_message(message(subject="via oauth"))
        msgs = peers.messages()
        eq(len(msgs), 1, "messages")
        eq(msgs[0]["msg"]["subject"], "via oauth", "parsed Subject")
        eq(msgs[0]["auth_login"], "svc@corp.example", "auth_login")
        eq([(a["method"], a["ok"]) for a in peers.auth_attempts()], [("XOAUTH2", True)], "attempts")
        reqs = peers.token_requests()
        eq([(r["grant_type"], r["client_auth"], r["ok"]) for r in reqs],
           [("client_credentials", "basic", True), ("client_credentials", "post", True)],
           "token requests")
        for path in glob.glob(os.path.join(peers.spool, "*")):
            not_contains(open(path).read(), token[-20:], "token written to " + path)
        not_contains(peers.stderr_text(), token[-20:], "token on stderr")


def test_oauth_bad_client_gets_401():
    with OAuthPeers(client_id="cid", client_secret="csecret") as peers:
        for kw in ({"client_secret": "nope"}, {"client_id": "other"},
                   {"client_secret": "nope", "basic": False}):
            status, body = peers.fetch_token(**kw)
            eq((status, body), (401, {"error": "invalid_client"}), "bad client %r" % kw)
        status, body = peers.fetch_token(grant_type="urn:example:bogus")
        eq((status, body), (400, {"error": "invalid_grant"}), "unsupported grant")


def test_oauth_rejects_expired_forged_and_unsent_tokens():
    with OAuthPeers(token_ttl=0, user="plainuser:plainpw") as peers:
        status, body = peers.fetch_token()
        eq((status, body["expires_in"]), (200, 0), "zero-lifetime token issued")
        head, payload, sig = body["access_token"].split(".")
        forged_payload = json.loads(base64.urlsafe_b64decode(payload + "=="))
        forged_payload["exp"] = int(time.time()) + 3600
        forged = "%s.%s.%s" % (head, base64.urlsafe_b64encode(
            json.dumps(forged_payload).encode()).decode().rstrip("="), sig)
        with smtplib.SMTP(peers.host, peers.smtp_port, timeout=10) as c:
            c.ehlo("client.test")
            for token in (body["access_token"], forged, "not-a-jwt"):
                code, reply = c.docmd("AUTH", "XOAUTH2 " + xoauth2("u@corp.example", token))
                eq(code, 334, "error challenge")
                details = json.loads(base64.b64decode(reply))
                eq(details["status"], "401", "challenge status")
                eq(c.docmd("")[0], 535, "final reply")
            e = raises(smtplib.SMTPSenderRefused, c.send_message, message())
            eq(e.smtp_code, 530, "MAIL without AUTH")
            c.login("plainuser", "plainpw")
            c.send_message(message())
        eq([(a["method"], a["ok"], a["reason"]) for a in peers.auth_attempts()],
           [("XOAUTH2", False, "expired"), ("XOAUTH2", False, "bad signature"),
            ("XOAUTH2", False, "not a JWT"), ("PLAIN", True, None)], "attempts")
        eq(len(peers.messages()), 1, "messages")


def test_oauth_token_endpoint_faults():
    with OAuthPeers(token_fault="500") as peers:
        status, body = peers.fetch_token()
        eq(status, 500, "500 mode")
        peers.set_token_fault("nonjson")
        status, body = peers.fetch_token()
        eq(status, 200, "nonjson mode status")
        true(isinstance(body, str) and body.startswith("<html>"), "non-JSON body", body)
        peers.set_token_fault(None)
        status, body = peers.fetch_token()
        eq(status, 500, "--token-fault still applies without the file")
    with OAuthPeers() as peers:
        peers.set_token_fault("500")
        eq(peers.fetch_token()[0], 500, "switched on")
        peers.set_token_fault(None)
        eq(peers.fetch_token()[0], 200, "switched off")
        eq([r["fault"] for r in peers.token_requests()], ["500", None], "recorded")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kw):
        return None


def test_oauth_authorization_code_with_pkce_and_refresh():
    with OAuthPeers(client_id="cid", client_secret="csecret") as peers:
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        redirect_uri = "http://127.0.0.1:%d/callback" % free_port()
        query = urllib.parse.urlencode({
            "response_type": "code", "client_id": "cid", "redirect_uri": redirect_uri,
            "scope": "https://mail.test/SMTP.Send offline_access", "state": "xyz",
            "code_challenge": challenge, "code_challenge_method": "S256"})
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            opener.open(peers.auth_url + "?" + query, timeout=10)
            raise AssertionError("authorize endpoint did not redirect")
        except urllib.error.HTTPError as e:
            eq(e.code // 100, 3, "redirect status")
            location = e.headers["Location"]
        true(location.startswith(redirect_uri), "redirects to redirect_uri", location)
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
        eq(params.get("state"), "xyz", "state")
        code = params["code"]
        status, body = peers.fetch_token("authorization_code", code=code,
                                         redirect_uri=redirect_uri, code_verifier="x" * 50)
        eq(status, 400, "wrong code_verifier")
        status, body = peers.fetch_token("authorization_code", code=code,
                                         redirect_uri=redirect_uri, code_verifier=verifier)
        eq(status, 400, "a code is single-use, even after a failed exchange")
        # a fresh code, exchanged properly
        try:
            opener.open(peers.auth_url + "?" + query, timeout=10)
        except urllib.error.HTTPError as e:
            code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(
                e.headers["Location"]).query))["code"]
        status, body = peers.fetch_token("authorization_code", code=code,
                                         redirect_uri=redirect_uri + "x", code_verifier=verifier)
        eq((status, body.get("error")), (400, "invalid_grant"), "redirect_uri mismatch")
        try:
            opener.open(peers.auth_url + "?" + query, timeout=10)
        except urllib.error.HTTPError as e:
            code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(
                e.headers["Location"]).query))["code"]
        status, body = peers.fetch_token("authorization_code", code=code,
                                         redirect_uri=redirect_uri, code_verifier=verifier)
        eq(status, 200, "code exchange")
        contains(body, "refresh_token")
        status, again = peers.fetch_token("refresh_token", refresh_token=body["refresh_token"])
        eq(status, 200, "refresh")
        status, bad = peers.fetch_token("refresh_token", refresh_token="made-up")
        eq((status, bad.get("error")), (400, "invalid_grant"), "unknown refresh token")
        with smtplib.SMTP(peers.host, peers.smtp_port, timeout=10) as c:
            c.ehlo("client.test")
            code_, _ = c.docmd("AUTH", "XOAUTH2 " + xoauth2("johndoe@corp.example",
                                                             again["access_token"]))
            eq(code_, 235, "refreshed token accepted")


def test_oauth_peers_with_starttls():
    authority = ca()
    with OAuthPeers(starttls=authority) as peers:
        token = peers.fetch_token()[1]["access_token"]
        with smtplib.SMTP(peers.host, peers.smtp_port, timeout=10) as c:
            feats = ehlo_features(c)
            contains(feats, "starttls")
            code, _ = c.docmd("AUTH", "XOAUTH2 " + xoauth2("u@corp.example", token))
            eq(code // 100, 5, "AUTH refused before STARTTLS")
            c.starttls(context=tls_ctx(authority))
            c.ehlo("client.test")
            code, _ = c.docmd("AUTH", "XOAUTH2 " + xoauth2("u@corp.example", token))
            eq(code, 235, "XOAUTH2 after STARTTLS")
            c.send_message(message())
        eq(peers.messages()[0]["tls"], True, "message over TLS")


if __name__ == "__main__":
    run(globals())
