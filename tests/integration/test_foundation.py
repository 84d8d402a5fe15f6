#!/usr/bin/python3
"""Issue 2, the foundation: the runtime, plugin loading and test connectivity
over None/SSL/StartTLS with Basic and Passwordless, against real SMTP peers.

One test per behaviour; each asserts what a user or a playbook relies on, so
that it fails when the behaviour breaks.  OAuth is not tested here (it has
its own file).  Run by make check (TAP); see README.md for running by hand.
"""
import base64
import email.utils
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SRCDIR, Aiosmtpd, Silent, asset, contains, data0,  # noqa: E402
                     eq, free_port, message_of, not_contains, run, run_connector,
                     shared_ca, skip, tmpdir, true)

TC = "test connectivity"
USER = "soar@corp.example"
PASSWORD = "s3cr3t-Pw!x"

ca = shared_ca  # ca(name): one CA per name for the whole file


def tc(a, **kw):
    """Run test connectivity with asset a."""
    return run_connector({"action": TC, "asset": a}, **kw)


def verbs(srv):
    """The command verbs the server received (AUTH lines' base64 dropped)."""
    return [c.split(" ", 1)[0] for c in srv.commands()]


def bad_input(request=None, stdin_text=None, field=None, also=(), args=()):
    """Exit 2 with one JSON result, status failed, whose message names field.
    An asset port of 25 is replaced by a Silent peer's, which must see no
    connection: an unusable request is refused before connecting."""
    with Silent() as s:
        a = request.get("asset") if isinstance(request, dict) else None
        if isinstance(a, dict) and a.get("port") == 25:
            request = dict(request, asset=dict(a, port=s.port))
        r = run_connector(request, stdin_text=stdin_text, args=args)
        eq(s.log_lines(), [], "connections made for an unusable request\n%s" % r)
    eq(r.rc, 2, "exit status\n%s" % r)
    res = r.result
    eq(res.get("status"), "failed", "status")
    msg = res.get("message") or ""
    if field:
        contains(msg, field, "message names the field")
    for word in also:
        contains(msg, word, "message")
    not_contains(msg, "Traceback")
    return r


# --------------------------------------------------------------------------
# test connectivity: transport security x auth method


def test_basic_over_starttls_verified_with_ca_file():
    with Aiosmtpd(starttls=ca(), require_starttls=True, auth={USER: PASSWORD},
                  auth_required=True) as srv:
        r = tc(asset(srv.port, ssl_config="StartTLS", ca_file=ca().ca_cert, username=USER,
                     password=PASSWORD, auth_type="Basic"))
        eq(r.rc, 0, "exit status\n%s" % r)
        eq(r.result["status"], "success", "status")
        eq(message_of(r), "Test Connectivity Passed for Basic authentication", "message")
        log = srv.log_lines()
        true("TLS-DONE" in log, "the TLS handshake completed", log)
        auth_at = next(i for i, line in enumerate(log) if line.upper().startswith("AUTH"))
        true(log.index("TLS-DONE") < auth_at, "AUTH only after STARTTLS", log)
        msg = srv.wait_messages(1)[0]
        eq(msg["tls"], True, "message received over TLS")
        eq(msg["auth_login"], USER, "authenticated as")


def test_basic_over_ssl_implicit_tls():
    with Aiosmtpd(implicit_tls=ca(), auth={USER: PASSWORD}, auth_required=True) as srv:
        r = tc(asset(srv.port, ssl_config="SSL", ca_file=ca().ca_cert, username=USER,
                     password=PASSWORD, auth_type="Basic"))
        eq(r.rc, 0, "exit status\n%s" % r)
        eq(message_of(r), "Test Connectivity Passed for Basic authentication", "message")
        log = srv.log_lines()
        eq(log[0] if log else None, "CONNECT-TLS", "first event: TLS from the first byte")
        not_contains(verbs(srv), "STARTTLS", "no STARTTLS inside implicit TLS")
        msg = srv.wait_messages(1)[0]
        eq(msg["tls"], True, "message received over TLS")


def test_basic_over_none_plain():
    with Aiosmtpd(auth={USER: PASSWORD}, auth_required=True) as srv:
        r = tc(asset(srv.port, ssl_config="None", username=USER, password=PASSWORD,
                     auth_type="Basic"))
        eq(r.rc, 0, "exit status\n%s" % r)
        eq(message_of(r), "Test Connectivity Passed for Basic authentication", "message")
        not_contains(verbs(srv), "STARTTLS", "None never starts TLS")
        msg = srv.wait_messages(1)[0]
        eq(msg["tls"], False, "plain session")
        eq(msg["auth_login"], USER, "authenticated as")


def test_passwordless_sends_no_mail():
    with Aiosmtpd() as srv:
        r = tc(asset(srv.port, auth_type="Passwordless", sender_address="soc@corp.example"))
        eq(r.rc, 0, "exit status\n%s" % r)
        eq(message_of(r), "Test Connectivity Passed for Passwordless authentication", "message")
        v = verbs(srv)
        not_contains(v, "AUTH", "Passwordless sends no AUTH")
        not_contains(v, "MAIL", "Passwordless starts no transaction")
        not_contains(v, "DATA", "Passwordless sends no mail")
        eq(srv.messages(), [], "messages received")


def _check_test_mail(msg, r, addr):
    eq(msg["envelope"]["mail_from"], addr, "envelope sender")
    eq(msg["envelope"]["rcpt_tos"], [addr], "envelope recipients")
    m = msg["msg"]
    raw = msg["raw"]
    eq(len(re.findall(rb"(?im)^From:", raw.split(b"\r\n\r\n", 1)[0])), 1, "From headers")
    eq(len(m.get_all("From")), 1, "From headers (parsed)")
    eq(m["From"].addresses[0].addr_spec, addr, "From")
    eq([a.addr_spec for a in m["To"].addresses], [addr], "To")
    eq(str(m["Subject"]), "Test SMTP config", "Subject")
    true(m["Date"] is not None, "Date header present", raw)
    parsed = email.utils.parsedate_to_datetime(str(m["Date"]))
    true(parsed.tzinfo is not None, "Date has a zone")
    true(abs(time.time() - parsed.timestamp()) < 300, "Date is now", m["Date"])
    mid = str(m["Message-ID"] or "")
    true(re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", mid), "Message-ID is <left@right>", mid)
    eq(str(m["MIME-Version"]), "1.0", "MIME-Version")
    eq(len(m.get_all("Message-ID")), 1, "Message-ID headers")
    eq(data0(r).get("message_id"), mid, "result data message_id = header")
    contains(m.get_content(), "test", "body")


def test_basic_test_mail_from_and_to_sender_address():
    sender = "alerts@soc.example"
    with Aiosmtpd(starttls=ca(), auth={USER: PASSWORD}, auth_required=True) as srv:
        r = tc(asset(srv.port, ssl_config="StartTLS", ca_file=ca().ca_cert, username=USER,
                     password=PASSWORD, sender_address=sender, auth_type="Basic"))
        eq(r.rc, 0, "exit status\n%s" % r)
        msgs = srv.wait_messages(1)
        eq(len(msgs), 1, "one test mail")
        _check_test_mail(msgs[0], r, sender)
        eq(data0(r).get("accepted"), [sender], "accepted")


def test_basic_test_mail_falls_back_to_username():
    with Aiosmtpd(auth={USER: PASSWORD}, auth_required=True) as srv:
        r = tc(asset(srv.port, username=USER, password=PASSWORD, auth_type="Basic"))
        eq(r.rc, 0, "exit status\n%s" % r)
        msgs = srv.wait_messages(1)
        eq(len(msgs), 1, "one test mail")
        _check_test_mail(msgs[0], r, USER)


def test_wrong_password():
    with Aiosmtpd(starttls=ca(), auth={USER: PASSWORD}, auth_required=True) as srv:
        r = tc(asset(srv.port, ssl_config="StartTLS", ca_file=ca().ca_cert, username=USER,
                     password="not-the-password", auth_type="Basic"))
        eq(r.rc, 1, "exit status\n%s" % r)
        eq(r.result["status"], "failed", "status")
        msg = message_of(r)
        true(msg.startswith("Test Connectivity Failed for Basic authentication"),
             "message starts with the SOAR wording", msg)
        contains(msg, "535 5.7.8 Authentication credentials invalid", "server reply verbatim")
        contains(msg, "AUTH", "stage")
        not_contains(verbs(srv), "MAIL", "no transaction after a refused AUTH")
        eq(srv.messages(), [], "messages")


def test_untrusted_certificate_hints_ca_file():
    # the server's certificate comes from a CA the connector is not told about
    with Aiosmtpd(starttls=ca("other"), auth={USER: PASSWORD}) as srv:
        r = tc(asset(srv.port, ssl_config="StartTLS", ca_file=ca().ca_cert, username=USER,
                     password=PASSWORD, auth_type="Basic"))
        eq(r.rc, 1, "exit status\n%s" % r)
        msg = message_of(r)
        true(msg.startswith("Test Connectivity Failed for Basic authentication"), "wording", msg)
        contains(msg, "TLS", "stage")
        contains(msg, "ca_file", "hint")
        not_contains(verbs(srv), "AUTH", "no credentials to an unverified server")
        eq(data0(r).get("error"), "tls", "data error class")


def test_unreadable_ca_file_is_refused_before_any_mail():
    """A ca_file that is a directory passed the readability check and failed
    at the handshake as "the server's certificate is not trusted": it must
    be refused before connecting, with the field named."""
    with Aiosmtpd(starttls=ca(), require_starttls=True, auth={USER: PASSWORD},
                  auth_required=True) as srv:
        r = tc(asset(srv.port, ssl_config="StartTLS", ca_file=tmpdir(), username=USER,
                     password=PASSWORD, auth_type="Basic"))
        eq(r.result["status"], "failed", "status\n%s" % r)
        contains(message_of(r), "asset.ca_file: ", "the field named")
        contains(message_of(r), "is not a file", "the reason")
        not_contains(message_of(r), "not trusted", "no wrong hint")
        eq(srv.log_lines(), [], "nothing reached the server")


def test_verify_server_cert_false_works_and_warns():
    with Aiosmtpd(starttls=ca("other"), auth={USER: PASSWORD}) as srv:
        r = tc(asset(srv.port, ssl_config="StartTLS", verify_server_cert=False, username=USER,
                     password=PASSWORD, auth_type="Basic"))
        eq(r.rc, 0, "exit status\n%s" % r)
        eq(message_of(r), "Test Connectivity Passed for Basic authentication", "message")
        true(re.search(r"(?i)verif", r.stderr) and "verify_server_cert" in r.stderr,
             "stderr warns that verification is off", r)
        not_contains(r.stdout, "verification is OFF", "the warning stays off stdout")


def test_starttls_not_offered_fails_without_auth():
    with Aiosmtpd(auth={USER: PASSWORD}) as srv:  # no STARTTLS offered
        r = tc(asset(srv.port, ssl_config="StartTLS", username=USER, password=PASSWORD,
                     auth_type="Basic", timeout=5))
        eq(r.rc, 1, "exit status\n%s" % r)
        msg = message_of(r)
        contains(msg, "STARTTLS", "message names STARTTLS")
        true(msg.startswith("Test Connectivity Failed for Basic authentication"), "wording", msg)
        v = verbs(srv)
        not_contains(v, "AUTH", "no AUTH in clear")
        not_contains(v, "MAIL", "no transaction in clear")
        eq(srv.messages(), [], "messages")


def test_silent_server_times_out_with_no_greeting():
    with Silent() as s:
        started = time.monotonic()
        r = tc(asset(s.port, auth_type="Passwordless", timeout=2))
        took = time.monotonic() - started
        eq(r.rc, 1, "exit status\n%s" % r)
        true(took < 2 + 5, "failed within timeout + 5 s (took %.1f s)" % took)
        true(took >= 1.5, "waited about the timeout (took %.1f s)" % took)
        msg = message_of(r)
        contains(msg, "greeting", "message says no greeting")
        contains(msg, "2 s", "message gives the timeout")
        true(any(line.startswith("CONNECT") for line in s.log_lines()), "it did connect")


def test_connection_refused():
    port = free_port()  # nobody listens here
    started = time.monotonic()
    r = tc(asset(port, auth_type="Passwordless", timeout=5))
    eq(r.rc, 1, "exit status\n%s" % r)
    true(time.monotonic() - started < 5, "refusal is immediate")
    msg = message_of(r)
    contains(msg, "Connection to server failed", "stage")
    contains(msg, str(port), "names the port")
    true(re.search(r"(?i)refused|couldn't connect|could not connect", msg), "says refused", msg)
    eq(data0(r).get("error"), "connect", "data error class")


def test_ssl_against_starttls_port_hints_starttls():
    with Aiosmtpd(starttls=ca()) as srv:
        r = tc(asset(srv.port, ssl_config="SSL", ca_file=ca().ca_cert, auth_type="Passwordless",
                     timeout=5))
        eq(r.rc, 1, "exit status\n%s" % r)
        msg = message_of(r)
        contains(msg, "TLS", "stage")
        contains(msg, '"StartTLS"', "hint names ssl_config StartTLS")


def test_starttls_against_implicit_tls_port_hints_ssl():
    with Aiosmtpd(implicit_tls=ca()) as srv:
        started = time.monotonic()
        r = tc(asset(srv.port, ssl_config="StartTLS", ca_file=ca().ca_cert,
                     auth_type="Passwordless", timeout=2))
        eq(r.rc, 1, "exit status\n%s" % r)
        true(time.monotonic() - started < 2 + 5, "within the timeout")
        msg = message_of(r)
        contains(msg, "greeting", "what happened")
        contains(msg, "SSL", "hint names ssl_config SSL")
        contains(msg, "ssl_config", "hint names the field")


# --------------------------------------------------------------------------
# Automatic authentication and auth plugins


def test_automatic_records_attempts_and_uses_basic():
    with Aiosmtpd(starttls=ca(), auth={USER: PASSWORD}, auth_required=True) as srv:
        r = tc(asset(srv.port, ssl_config="StartTLS", ca_file=ca().ca_cert, username=USER,
                     password=PASSWORD))  # auth_type defaults to Automatic
        eq(r.rc, 0, "exit status\n%s" % r)
        eq(message_of(r), "Test Connectivity Passed for Basic authentication", "message")
        d = data0(r)
        eq(d.get("auth"), "Basic", "data auth")
        att = d.get("auth_attempts")
        eq([(a["method"], a["outcome"]) for a in att], [("OAuth", "skipped"), ("Basic", "success")],
           "auth_attempts")
        true(att[0].get("reason"), "the skip has a reason", att)
        eq(len(srv.wait_messages(1)), 1, "test mail sent")


def test_automatic_falls_back_to_passwordless_without_basic_fields():
    with Aiosmtpd() as srv:
        r = tc(asset(srv.port))
        eq(r.rc, 0, "exit status\n%s" % r)
        eq(message_of(r), "Test Connectivity Passed for Passwordless authentication", "message")
        att = data0(r).get("auth_attempts")
        eq([(a["method"], a["outcome"]) for a in att],
           [("OAuth", "skipped"), ("Basic", "skipped"), ("Passwordless", "success")],
           "auth_attempts")
        contains(att[1].get("reason", ""), "username", "Basic's skip names the missing field")
        not_contains(verbs(srv), "AUTH", "no AUTH")
        eq(srv.messages(), [], "Passwordless sends nothing")


def test_automatic_refused_password_does_not_pass_as_passwordless():
    # A refused password must fail loudly: falling through to
    # Passwordless would report "Passed" and fail later at MAIL FROM.
    with Aiosmtpd(auth={USER: PASSWORD}, auth_required=True) as srv:
        r = tc(asset(srv.port, username=USER, password="not-the-password"))
        eq(r.rc, 1, "exit status\n%s" % r)
        msg = message_of(r)
        true(msg.startswith("Test Connectivity Failed for Automatic authentication"), "wording", msg)
        contains(msg, "535 5.7.8 Authentication credentials invalid", "the refusal comes first")
        att = data0(r).get("auth_attempts")
        eq([(a["method"], a["outcome"]) for a in att],
           [("OAuth", "skipped"), ("Basic", "failed"), ("Passwordless", "skipped")],
           "auth_attempts")
        contains(att[2].get("reason", ""), "refused", "why Passwordless was not tried")
        eq(srv.messages(), [], "nothing sent")


def test_auth_order_is_followed():
    with Aiosmtpd(auth={USER: PASSWORD}) as srv:
        r = tc(asset(srv.port, username=USER, password=PASSWORD,
                     auth_order=["Passwordless", "Basic"]))
        eq(r.rc, 0, "exit status\n%s" % r)
        eq(message_of(r), "Test Connectivity Passed for Passwordless authentication", "message")
        eq([a["method"] for a in data0(r)["auth_attempts"]], ["Passwordless"], "attempts")


def test_explicit_uninstalled_auth_plugin_is_unusable():
    with Silent() as s:
        bad_input({"action": TC, "asset": asset(s.port, auth_type="Kerberos")},
                  field="auth_type", also=("Kerberos",))
        eq(s.log_lines(), [], "no connection for an unusable request")


def test_auth_order_naming_uninstalled_plugin_is_unusable():
    bad_input({"action": TC, "asset": asset(25, auth_order=["Basic", "Kerberos"])},
              field="auth_order", also=("Kerberos",))


def test_ehlo_name_is_sent():
    with Aiosmtpd() as srv:
        r = tc(asset(srv.port, auth_type="Passwordless", ehlo_name="soar.corp.example"))
        eq(r.rc, 0, "exit status\n%s" % r)
        eq(srv.commands()[0], "EHLO soar.corp.example", "first command")


def test_no_quit_round_trip_at_exit():
    """Issue 11: once every mail is accepted the process ends without the
    QUIT round trip (RFC 5321 servers handle a client that just goes); the
    same every time, whatever the auth."""
    for kw in ({"username": USER, "password": PASSWORD, "auth_type": "Basic"},
               {"auth_type": "Passwordless"}):
        with Aiosmtpd(auth={USER: PASSWORD}) as srv:
            for _ in range(3):
                r = tc(asset(srv.port, **kw))
                eq(r.rc, 0, "exit status\n%s" % r)
            cmds = srv.commands()
            eq(cmds.count("QUIT"), 0, "no QUIT (%s)\n%s" % (kw["auth_type"], cmds))
            true(cmds and cmds[0].startswith("EHLO"), "a session took place (%s)" % kw["auth_type"])


def _verbose_redacts(mech):
    user, password = "ops@corp.example", "Tr0ub4dor&3-%s" % mech
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    secrets = {"password": password, "base64(password)": b64(password)}
    if mech == "PLAIN":
        secrets["PLAIN response"] = b64("\0%s\0%s" % (user, password))
        secrets["PLAIN response (authzid)"] = b64("%s\0%s\0%s" % (user, user, password))
    with Aiosmtpd(starttls=ca(), auth={user: password}, auth_mechs=mech,
                  auth_required=True) as srv:
        r = tc(asset(srv.port, ssl_config="StartTLS", ca_file=ca().ca_cert, username=user,
                     password=password, auth_type="Basic"), args=("-v",))
        eq(r.rc, 0, "exit status\n%s" % r)
        # the transcript shows the dialogue...
        for needle in ("EHLO", "STARTTLS", "AUTH %s" % mech, "235", "MAIL FROM:", "RCPT TO:",
                       "DATA", "250"):
            contains(r.stderr, needle, "-v transcript")
        # ...the server really got the secret in one of these forms...
        wire = "\n".join(srv.log_lines())
        true(any(v.upper() in wire.upper() for k, v in secrets.items() if k != "password"),
             "the secret went over the wire base64-encoded (sanity check)", wire)
        # ...and none of them is printed
        for what, value in secrets.items():
            not_contains(r.stderr, value, "%s on stderr" % what)
            not_contains(r.stdout, value, "%s on stdout" % what)


def test_verbose_transcript_redacts_auth_plain():
    _verbose_redacts("PLAIN")


def test_verbose_transcript_redacts_auth_login():
    _verbose_redacts("LOGIN")


def test_no_secret_in_failure_output():
    with Aiosmtpd(auth={USER: PASSWORD}) as srv:
        r = tc(asset(srv.port, username=USER, password="Wr0ng-Secret-42", auth_type="Basic"),
               args=("-v",))
        eq(r.rc, 1, "exit status\n%s" % r)
        contains(message_of(r), "535", "it failed at AUTH, after sending the secret")
        b64 = lambda t: base64.b64encode(t.encode()).decode()  # noqa: E731
        secrets = ["Wr0ng-Secret-42", b64("Wr0ng-Secret-42"), b64("\0%s\0Wr0ng-Secret-42" % USER),
                   b64("%s\0%s\0Wr0ng-Secret-42" % (USER, USER))]
        wire = "\n".join(srv.log_lines())
        true(any(v in wire for v in secrets[1:]),
             "the secret went over the wire base64-encoded (sanity check)", wire)
        for value in secrets:
            not_contains(r.stderr + r.stdout, value, "secret in output")


# --------------------------------------------------------------------------
# unusable input: exit 2, a JSON result naming the field, no connection


def test_bad_input_not_json():
    r = bad_input(stdin_text="{\"action\": \"test connectivity\", \"asset\": {\n", field="JSON")
    eq(r.result.get("action_results"), [], "no action results")


def test_bad_input_empty_stdin():
    bad_input(stdin_text="", also=("stdin",))


def test_bad_input_not_an_object():
    bad_input(stdin_text="[1, 2]\n", field="request")


def test_bad_input_unknown_action():
    bad_input({"action": "fly to the moon", "asset": asset(25)}, field="action",
              also=("unknown action", "fly", "test_connectivity"))


def test_bad_input_missing_server():
    bad_input({"action": TC, "asset": {"port": 25, "ssl_config": "None"}}, field="server")


def test_bad_input_unknown_asset_key_suggests():
    with Silent() as s:
        r = bad_input({"action": TC, "asset": asset(s.port, username=USER, passwrod="x")},
                      field="passwrod")
        contains(r.result["message"], '"password"', "suggests the right key")
        eq(s.log_lines(), [], "no connection for an unusable request")


def test_bad_input_port_is_a_string():
    bad_input({"action": TC, "asset": asset("twenty-five")}, field="port",
              also=("twenty-five",))


def test_bad_input_port_zero():
    bad_input({"action": TC, "asset": asset(0)}, field="port", also=("65535",))


def test_bad_input_port_too_large():
    bad_input({"action": TC, "asset": asset(70000)}, field="port", also=("70000",))


def test_bad_input_ssl_config_value():
    bad_input({"action": TC, "asset": asset(25, ssl_config="TLS")}, field="ssl_config",
              also=("StartTLS",))


def test_bad_input_wrong_asset_type():
    bad_input({"action": TC, "asset": asset(25, verify_server_cert="no")},
              field="verify_server_cert")


def test_bad_input_unknown_top_level_key():
    bad_input({"action": TC, "asset": asset(25), "colour": "blue"}, field="colour")


def test_bad_input_unknown_parameter_key():
    bad_input({"action": TC, "asset": asset(25), "parameters": {"to": "x@y.example"}},
              field="parameters[0]", also=('"to"',))


def test_bad_input_wrong_parameter_type():
    bad_input({"action": TC, "asset": asset(25), "parameters": [{}, {"context": "text"}]},
              field="parameters[1].context")


def test_bad_input_missing_asset():
    bad_input({"action": TC}, field="asset")


# --------------------------------------------------------------------------
# JSON Lines, the result shape, the command line


def test_json_lines_results_in_order_exit_worst():
    with Aiosmtpd(auth={USER: PASSWORD}) as srv:
        ok = {"action": TC, "asset": asset(srv.port, auth_type="Passwordless")}
        bad_pw = {"action": "test_connectivity",
                  "asset": asset(srv.port, username=USER, password="nope", auth_type="Basic")}
        r = run_connector([ok, bad_pw])
        eq(r.rc, 1, "exit status: the worst of 0 and 1\n%s" % r)
        eq(len(r.results), 2, "result lines\n%s" % r)
        eq(r.bad_lines, [], "non-JSON lines on stdout")
        eq([x["status"] for x in r.results], ["success", "failed"], "order")
        contains(r.results[1]["action_results"][0]["message"], "535", "second is the AUTH failure")
        unusable = {"action": TC, "asset": asset(srv.port, passwrod="x")}
        r = run_connector([ok, unusable, bad_pw])
        eq(r.rc, 2, "exit status: the worst of 0, 2 and 1\n%s" % r)
        eq([x["status"] for x in r.results], ["success", "failed", "failed"], "order")
        contains(r.results[1]["message"], "passwrod", "the middle one is the unusable one")
        contains(r.results[2]["action_results"][0]["message"], "535", "the last one still ran")


def test_result_shape():
    with Aiosmtpd() as srv:
        r = run_connector({"action": "test_connectivity",
                           "asset": asset(srv.port, auth_type="Passwordless"),
                           "parameters": [{}, {"context": {"artifact_id": 7}}]})
        eq(r.rc, 0, "exit status\n%s" % r)
        res = r.result
        eq(res["action"], TC, "action (name, also when the identifier was given)")
        eq(res["identifier"], "test_connectivity", "identifier")
        eq(res["status"], "success", "status")
        true(isinstance(res["message"], str) and res["message"], "message", res)
        eq(res["summary"]["total_objects"], 2, "summary.total_objects")
        eq(res["summary"]["total_objects_successful"], 2, "summary.total_objects_successful")
        eq(len(res["action_results"]), 2, "one action result per parameter set")
        for i, ar in enumerate(res["action_results"]):
            eq(ar["status"], "success", "action_results[%d].status" % i)
            true(isinstance(ar["message"], str), "message is a string")
            true(isinstance(ar["parameter"], dict), "parameter is an object", ar)
            true(isinstance(ar["data"], list), "data is a list", ar)
            true(isinstance(ar["summary"], dict), "summary is an object", ar)
        eq(res["action_results"][1]["parameter"].get("context"), {"artifact_id": 7},
           "parameter as given")
    # a failure has the same shape
    r = tc(asset(free_port(), auth_type="Passwordless", timeout=3))
    res = r.result
    eq(res["status"], "failed", "status")
    eq(res["summary"]["total_objects"], 1, "total_objects")
    eq(res["summary"]["total_objects_successful"], 0, "total_objects_successful")
    eq(res["action_results"][0]["status"], "failed", "action_results[0].status")


def test_stdout_is_only_json():
    with Aiosmtpd() as srv:
        r = tc(asset(srv.port, auth_type="Passwordless"), args=("-v",))
        eq(r.rc, 0, "exit status\n%s" % r)
        eq(r.bad_lines, [], "non-JSON lines on stdout")
        eq(len(r.results), 1, "one result line")
        contains(r.stderr, "EHLO", "the transcript goes to stderr")


def test_version():
    r = run_connector(args=("--version",))
    eq(r.rc, 0, "exit status\n%s" % r)
    true(re.match(r"smtp-connector \d+\.\d+", r.stdout), "prints name and version", r)


def test_help():
    r = run_connector(args=("--help",))
    eq(r.rc, 0, "exit status\n%s" % r)
    for opt in ("--plugin-dir", "--list", "--verbose", "--version", "--state-dir"):
        contains(r.stdout, opt, "--help")


def _list():
    r = run_connector(args=("--list",))
    eq(r.rc, 0, "exit status\n%s" % r)
    try:
        return json.loads(r.stdout)
    except ValueError as e:
        raise AssertionError("--list is not JSON: %s\n%s" % (e, r))


def test_list_actions_and_auth_with_schemas():
    m = _list()
    acts = {a["identifier"]: a for a in m["actions"]}
    true("test_connectivity" in acts, "test_connectivity listed", m)
    eq(acts["test_connectivity"]["name"], TC, "name")
    s = acts["test_connectivity"]["schema"]
    true(isinstance(s, dict) and s.get("type") == "object", "parameter schema given", s)
    eq(s.get("$schema"), "https://json-schema.org/draft/2020-12/schema", "schema draft")
    names = {a["name"] for a in m["auth"]}
    for n in ("Basic", "Passwordless", "OAuth"):
        true(n in names, "auth plugin %s listed" % n, names)
    for a in m["auth"]:
        true("schema" in a, "auth entry carries its schema (or null)", a)


def test_list_asset_schema_has_only_asset_keys():
    m = _list()
    with open(os.path.join(SRCDIR, "schemas", "asset.json")) as f:
        allowed = set(json.load(f)["properties"])
    for a in m["auth"]:
        allowed |= set(((a.get("schema") or {}).get("properties") or {}).keys())
    got = set(m["asset_schema"]["properties"])
    eq(sorted(got - allowed), [], "keys in --list asset_schema that are neither asset.json's "
       "nor an auth plugin's (action parameters leaking into the asset?)")


def test_bad_cli_option():
    r = run_connector(args=("--frobnicate",))
    eq(r.rc, 2, "exit status\n%s" % r)
    eq(r.result["status"], "failed", "JSON result on stdout")
    contains(r.result["message"], "option", "message")
    contains(r.stderr, "--frobnicate", "stderr names the option")


def test_unexpected_argument():
    r = run_connector(args=("send",))
    eq(r.rc, 2, "exit status\n%s" % r)
    eq(r.result["status"], "failed", "JSON result on stdout")


# --------------------------------------------------------------------------
# plugin loading failures: exit 3 and a JSON result that says what and where


def _build_plugins():
    d = os.environ.get("SMTP_CONNECTOR_PLUGIN_PATH", "").split(":")[0]
    if not d:
        skip("SMTP_CONNECTOR_PLUGIN_PATH not set (run via make check)")
    return d


def _test_module(name):
    """A test-only module built by tests/plugins/plugins.am (.libs/NAME.so)."""
    b = os.environ.get("SMTP_CONNECTOR_BUILDDIR")
    if not b:
        skip("SMTP_CONNECTOR_BUILDDIR not set (run via make check)")
    path = os.path.join(b, "tests", "plugins", ".libs", name + ".so")
    true(os.path.exists(path), "test module %s was built (make check builds it)" % path)
    return path


def _plugin_dir(name, files):
    """A fresh plugin dir holding files {target_name: source_path or bytes}."""
    d = os.path.join(tmpdir(), name)
    os.makedirs(d)
    for target, src in files.items():
        if isinstance(src, bytes):
            with open(os.path.join(d, target), "wb") as f:
                f.write(src)
        else:
            shutil.copy(src, os.path.join(d, target))
    return d


def _real_plugins(*bases):
    """{file name: path} of build-tree modules (NAME.so from .libs)."""
    d = _build_plugins()
    out = {}
    for b in bases:
        p = os.path.join(d, ".libs", b + ".so")
        true(os.path.exists(p), "build-tree plugin %s" % p)
        out[b + ".so"] = p
    return out


def _cannot_run(r, *needles):
    eq(r.rc, 3, "exit status\n%s" % r)
    res = r.result
    eq(res.get("status"), "failed", "status")
    for n in needles:
        contains(res.get("message", ""), n, "message")
    return res


def _abi():
    r = run_connector(args=("--version",))
    m = re.search(r"ABI (\d+)", r.stdout)
    true(m, "--version gives the plugin ABI", r)
    return int(m.group(1))


def test_plugin_dir_empty():
    d = _plugin_dir("empty", {})
    r = tc(asset(25, auth_type="Passwordless"), args=("--plugin-dir", d))
    _cannot_run(r, "no plugins found", d)


def test_plugin_dir_missing():
    d = os.path.join(tmpdir(), "does-not-exist")
    r = tc(asset(25, auth_type="Passwordless"), args=("--plugin-dir", d))
    _cannot_run(r, "no plugins found", d)


def test_plugin_present_but_not_loadable():
    d = _plugin_dir("garbage", {"action_test_connectivity.so": b"\x7fELF not really\n" * 64})
    r = tc(asset(25, auth_type="Passwordless"), args=("--plugin-dir", d))
    _cannot_run(r, "present but failed to load", os.path.join(d, "action_test_connectivity"))


def test_plugin_wrong_abi():
    abi = _abi()
    files = _real_plugins("auth_passwordless")
    files["action_test_connectivity.so"] = _test_module("wrong_abi")
    d = _plugin_dir("wrong-abi", files)
    r = tc(asset(25, auth_type="Passwordless"), args=("--plugin-dir", d))
    res = _cannot_run(r, os.path.join(d, "action_test_connectivity"), "ABI %d" % (abi + 98),
                      "ABI %d" % abi)
    eq(res.get("action_results"), [], "nothing ran")


def test_plugin_wrong_abi_auth_module_checked_first():
    # an auth module of another ABI stops the connector even though the
    # request does not use it: all auth plugins are loaded before validation
    files = _real_plugins("auth_passwordless", "action_test_connectivity")
    files["auth_custom.so"] = _test_module("wrong_abi")
    d = _plugin_dir("wrong-abi-auth", files)
    r = tc(asset(25, auth_type="Passwordless"), args=("--plugin-dir", d))
    _cannot_run(r, os.path.join(d, "auth_custom"), "ABI")


def test_plugin_without_descriptor():
    files = _real_plugins("auth_passwordless")
    files["action_test_connectivity.so"] = _test_module("no_descriptor")
    d = _plugin_dir("no-descriptor", files)
    r = tc(asset(25, auth_type="Passwordless"), args=("--plugin-dir", d))
    _cannot_run(r, os.path.join(d, "action_test_connectivity"), "sc_plugin")


def test_plugin_dir_option_wins_over_environment():
    good = _build_plugins()
    empty = _plugin_dir("empty", {})
    with Aiosmtpd() as srv:
        a = asset(srv.port, auth_type="Passwordless")
        r = tc(a, args=("--plugin-dir", good), env={"SMTP_CONNECTOR_PLUGIN_PATH": empty})
        eq(r.rc, 0, "--plugin-dir good, environment empty\n%s" % r)
        r = tc(a, args=("--plugin-dir", empty), env={"SMTP_CONNECTOR_PLUGIN_PATH": good})
        _cannot_run(r, "no plugins found", empty)
        not_contains(r.result["message"], good, "the environment's dir was not searched")
        # the environment is a colon-separated list
        r = tc(a, env={"SMTP_CONNECTOR_PLUGIN_PATH": empty + ":" + good})
        eq(r.rc, 0, "SMTP_CONNECTOR_PLUGIN_PATH empty:good\n%s" % r)


def test_relative_plugin_dir_is_made_absolute():
    good = _build_plugins()
    rel = os.path.relpath(good)
    true(not os.path.isabs(rel), "a relative path", rel)
    r = run_connector(args=("--plugin-dir", rel, "--list"))
    eq(r.rc, 0, "exit status\n%s" % r)
    dirs = json.loads(r.stdout)["plugin_path"]
    eq(len(dirs), 1, "plugin_path")
    true(os.path.isabs(dirs[0]), "plugin dir made absolute", dirs)
    eq(os.path.realpath(dirs[0]), os.path.realpath(good), "the same directory")
    with Aiosmtpd() as srv:
        r = tc(asset(srv.port, auth_type="Passwordless"), args=("--plugin-dir", rel))
        eq(r.rc, 0, "runs with a relative --plugin-dir\n%s" % r)


if __name__ == "__main__":
    run(globals())
