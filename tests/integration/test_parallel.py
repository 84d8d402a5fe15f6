#!/usr/bin/python3
"""Parallel SMTP sessions (asset max_connections, issue 11).

The parameter sets of a request and the JSON Lines requests for one asset go
out over up to max_connections sessions at once (one thread per session, each running the one-session code: libcurl
7.88 blocks on the end-of-data reply, so a curl multi would serialise it),
and the contract stays: one result line per request, in request order; nothing
half-sent; a failure on one session fails only its own message; a server that
refuses extra sessions (421) gets fewer, and every message still arrives
exactly once. Messages are counted by Message-ID on the server
(tests/servers/faulty_smtpd.py logs one MESSAGE-ID line per accepted message)
and parsed with Python's email where content matters. Nothing here is timed."""
import collections
import json
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Aiosmtpd, Faulty, LineReader, OAuthPeers, asset, connector_path,  # noqa: E402
                     contains, data0, eq, not_contains, run, run_connector, tmpdir, true)

SENDER = "soar@corp.example"
RCPT = "rcpt@corp.example"


def mails(n, prefix="m"):
    return [{"to": RCPT, "subject": "%s%d" % (prefix, i), "body": "body of %s%d" % (prefix, i)}
            for i in range(n)]


def server_ids(srv):
    return [e.split(" ", 1)[1] for e in srv.events() if e.startswith("MESSAGE-ID ")]


def test_results_in_request_order_when_later_messages_finish_first():
    # m1 and m2 are held 2 s at the end of data; m3..m7 finish before them
    with Faulty("--delay", "Subject: m1\r=2", "--delay", "Subject: m2\r=2") as srv:
        reqs = [{"action": "send email",
                 "asset": asset(srv.port, sender_address=SENDER, max_connections=4),
                 "parameters": p} for p in mails(8)]
        r = run_connector(reqs)
        eq(r.rc, 0, "all sent\n%s" % r)
        eq(len(r.results), 8, "one result line per request")
        subjects = [res["action_results"][0]["parameter"]["subject"] for res in r.results]
        eq(subjects, ["m%d" % i for i in range(8)], "result lines in request order")
        ids = [data0(res["action_results"][0])["message_id"] for res in r.results]
        got = server_ids(srv)
        eq(sorted(got), sorted(ids), "each message arrived once, with the Message-ID reported")
        true(got.index(ids[1]) > got.index(ids[3]),
             "the server finished m3 before the held m1 (so order came from the connector): %s"
             % got)
        true(2 <= srv.connections() <= 4, "at most max_connections sessions: %d"
             % srv.connections())


def test_parameter_sets_of_one_request_in_order():
    with Faulty("--delay", "Subject: p1\r=2") as srv:
        req = {"action": "send email",
               "asset": asset(srv.port, sender_address=SENDER, max_connections=3),
               "parameters": mails(6, "p")}
        r = run_connector(req)
        eq(r.rc, 0, "all sent\n%s" % r)
        eq(len(r.results), 1, "one result line for the request")
        ars = r.results[0]["action_results"]
        eq([a["parameter"]["subject"] for a in ars], ["p%d" % i for i in range(6)],
           "action_results in parameter order")
        eq([a["status"] for a in ars], ["success"] * 6, "every set succeeded")
        eq(r.results[0]["summary"]["total_objects_successful"], 6, "summary")
        eq(sorted(server_ids(srv)), sorted(data0(a)["message_id"] for a in ars),
           "each message once")


def test_session_dropped_mid_batch_fails_only_its_own_message():
    with Faulty("--drop", "Subject: m3\r") as srv:
        reqs = [{"action": "send email",
                 "asset": asset(srv.port, sender_address=SENDER, max_connections=4, timeout=5),
                 "parameters": p} for p in mails(10)]
        r = run_connector(reqs)
        eq(r.rc, 1, "one failed\n%s" % r)
        eq(len(r.results), 10, "one line per request")
        status = [res["action_results"][0]["status"] for res in r.results]
        eq(status, ["success"] * 3 + ["failed"] + ["success"] * 6, "only m3 failed")
        failed = r.results[3]["action_results"][0]
        contains(failed["message"], "unknown whether the message was delivered",
                 "the dropped one says what is known")
        ok_ids = [data0(res["action_results"][0])["message_id"]
                  for i, res in enumerate(r.results) if i != 3]
        got = server_ids(srv)
        eq(collections.Counter(got), collections.Counter(ok_ids),
           "the other nine arrived exactly once each (no retry of the dropped one)")


def test_server_limiting_sessions_gets_fewer_and_every_message_once():
    # the server allows 2 sessions; the asset asks for 8: the extra ones get
    # "421 too many connections" and the messages go over the two that work
    with Faulty("--max-sessions", "2") as srv:
        reqs = [{"action": "send email",
                 "asset": asset(srv.port, sender_address=SENDER, max_connections=8),
                 "parameters": p} for p in mails(16)]
        r = run_connector(reqs)
        eq(r.rc, 0, "all sent\n%s" % r)
        eq([res["action_results"][0]["parameter"]["subject"] for res in r.results],
           ["m%d" % i for i in range(16)], "in order")
        ids = [data0(res["action_results"][0])["message_id"] for res in r.results]
        eq(collections.Counter(server_ids(srv)), collections.Counter(ids),
           "every message exactly once")
        refused = [e for e in srv.events() if e.startswith("REFUSED-SESSION")]
        true(refused, "the server did refuse extra sessions: %s" % srv.events()[:20])
        contains(r.stderr, "refused one more session", "the fallback is logged")


def test_a_failure_reads_the_same_over_one_session_and_over_four():
    # the same failing message, sent alone (max_connections 1: sc_send) and
    # through the pool (4: m1 is sc_send_async's, ended by parallel.c's
    # finish() on the first session's thread): the two paths end in one
    # function (core_send_report, then core_runtime_result_close), so
    # message and data must not differ
    faults = [("--at", "eod=reply:554 5.7.1 rejected", "--from-message", "2"),
              ("--at", "rcpt=reply:550 5.1.1 no such user", "--from-message", "1"),
              ("--drop", "Subject: m1\r")]
    for args in faults:
        seen = {}
        for mc in (1, 4):
            with Faulty(*args) as srv:
                req = {"action": "send email",
                       "asset": asset(srv.port, sender_address=SENDER, max_connections=mc,
                                      timeout=5),
                       "parameters": mails(2)}
                r = run_connector(req)
                eq(r.rc, 1, "the second message failed (%s)\n%s" % (args, r))
                ars = r.results[0]["action_results"]
                eq([a["status"] for a in ars], ["success", "failed"], "m1 failed: %s" % (args,))
                seen[mc] = (ars[1]["message"], ars[1]["data"])
        eq(seen[4][0], seen[1][0], "the same failure text over parallel sessions: %s" % (args,))
        eq(seen[4][1], seen[1][1], "the same data over parallel sessions: %s" % (args,))


def test_the_first_session_is_never_retired_as_a_refused_extra_one():
    # m0 goes alone and opens the first session; m1 goes to it again, m2 to
    # a second session. The server closes the first connection at m1's MAIL
    # FROM (one message a connection), the reconnect is answered 421: the
    # first session delivered m0, so this is m1's failure, not a server
    # refusing one more session (which would retire the first session and
    # send m1 once more over the second)
    refused = "refused@corp.example"
    with Faulty("--messages-per-connection", "1", "--refuse-sender", refused) as srv:
        sets = mails(3)
        sets[1]["from"] = refused
        req = {"action": "send email",
               "asset": asset(srv.port, sender_address=SENDER, max_connections=2, timeout=5),
               "parameters": sets}
        r = run_connector(req)
        eq(r.rc, 1, "m1 failed\n%s" % r)
        ars = r.results[0]["action_results"]
        eq([a["status"] for a in ars], ["success", "failed", "success"], "only m1 failed")
        contains(ars[1]["message"], "421", "m1's failure is the server's answer")
        not_contains(r.stderr, "refused one more session",
             "the first session was not retired:\n%s" % r.stderr)
        eq(sum(1 for e in srv.events() if e.startswith("REFUSED-SENDER")), 1,
           "m1 was refused once, on the first session's new connection, not again on another")
        eq(sorted(server_ids(srv)), sorted(data0(ars[i])["message_id"] for i in (0, 2)),
           "m0 and m2 arrived once each")


def test_other_actions_and_content_over_parallel_sessions():
    """send htmlemail (bodies the message owns), send rawemail and send email
    with an HTML body, for one asset, over 3 sessions: content intact."""
    raw = ("From: Raw <%s>\r\nTo: %s\r\nSubject: raw one\r\n\r\nraw body line\r\n"
           % (SENDER, RCPT))
    with Aiosmtpd() as srv:
        a = asset(srv.port, sender_address=SENDER, max_connections=3)
        reqs = [
            {"action": "send email", "asset": a,
             "parameters": {"to": RCPT, "subject": "first", "body": "plain first"}},
            {"action": "send htmlemail", "asset": a,
             "parameters": {"to": RCPT, "subject": "html two",
                            "html_body": "<p>Hello <b>two</b></p>"}},
            {"action": "send rawemail", "asset": a, "parameters": {"raw_email": raw}},
            {"action": "send email", "asset": a,
             "parameters": [{"to": RCPT, "subject": "four %d" % i,
                             "body": "<html><body><p>four %d</p></body></html>" % i}
                            for i in range(4)]},
        ]
        r = run_connector(reqs)
        eq(r.rc, 0, "all sent\n%s" % r)
        eq([res["action"] for res in r.results],
           ["send email", "send htmlemail", "send rawemail", "send email"], "in order")
        true("added_headers" in data0(r.results[2]["action_results"][0]),
             "rawemail's own data is there")
        msgs = {m["msg"]["Subject"]: m["msg"] for m in srv.wait_messages(7)}
        eq(sorted(msgs), sorted(["first", "html two", "raw one"] +
                                ["four %d" % i for i in range(4)]), "each message once")
        html = msgs["html two"]
        parts = {p.get_content_type(): p.get_content() for p in html.walk()
                 if not p.is_multipart()}
        contains(parts["text/html"], "<b>two</b>", "html part intact")
        contains(parts["text/plain"], "two", "text part intact")
        contains(msgs["raw one"].get_content(), "raw body line", "raw body intact")
        for i in range(4):
            m = msgs["four %d" % i]
            htmls = [p.get_content() for p in m.walk() if p.get_content_type() == "text/html"]
            contains(htmls[0], "four %d" % i, "the request's own body, borrowed, intact")


def test_send_event_bodies_outlive_the_run_over_parallel_sessions():
    """send event's texts are the plugin's, borrowed by the parts and kept by
    the message (sc_message_keep): sent after run() returned, still intact."""
    with Aiosmtpd() as srv:
        sets = [{"to": RCPT, "subject": "ev {{n}}", "readable": i % 2 == 1,
                 "attach_json": False, "event": {"n": i, "detail": "line %d\nnext" % i}}
                for i in range(6)]
        r = run_connector({"action": "send event",
                           "asset": asset(srv.port, sender_address=SENDER, max_connections=3),
                           "parameters": sets})
        eq(r.rc, 0, "all sent\n%s" % r)
        got = srv.wait_messages(6)
        eq(len(got), 6, "six messages, none twice")
        msgs = {m["msg"]["Subject"]: m["msg"] for m in got}
        eq(sorted(msgs), sorted("ev %d" % i for i in range(6)), "each event once")
        for i in range(6):
            m = msgs["ev %d" % i]
            parts = {p.get_content_type(): p.get_content() for p in m.walk()
                     if not p.is_multipart()}
            if i % 2:
                eq(sorted(parts), ["text/html", "text/plain"], "readable: an alternative")
                contains(parts["text/html"], "line %d" % i, "html intact")
                contains(parts["text/plain"], "line %d" % i, "text intact")
            else:
                eq(json.loads(parts["text/plain"])["n"], i, "the event's JSON, intact")


def test_parallel_sessions_reuse_the_method_automatic_chose():
    user, pw = "par@corp.example", "par-pass-1"
    with Aiosmtpd(auth={user: pw}, auth_mechs="PLAIN", auth_required=True) as srv:
        a = asset(srv.port, username=user, password=pw, max_connections=3)
        reqs = [{"action": "send email", "asset": a, "parameters": p} for p in mails(9)]
        r = run_connector(reqs)
        eq(r.rc, 0, "all sent\n%s" % r)
        for res in r.results:
            d = data0(res["action_results"][0])
            eq(d["auth"], "Basic", "auth")
            eq([x["method"] for x in d["auth_attempts"]], ["OAuth", "Basic"], "attempts")
        auths = [c for c in srv.commands() if c.startswith("AUTH")]
        connects = srv.log_lines().count("CONNECT")
        eq(len(auths), connects, "one AUTH per session, none extra: %s" % auths)
        true(all(c.split(" ")[1].upper() == "PLAIN" for c in auths), "the chosen mechanism")
        true(not any(c.startswith("NOOP") for c in srv.commands()), "no NOOP probe")
        eq(len(srv.wait_messages(9)), 9, "all delivered")
        true(pw not in r.stdout + r.stderr, "password not in output")


def test_parallel_sessions_share_one_oauth_token():
    if not OAuthPeers.available():
        from harness import skip
        skip("oauth peers (node) not installed")
    user, cid, secret = "svc@corp.example", "test-client", "s3cret-Client-Value"
    with OAuthPeers(client_id=cid, client_secret=secret, user="%s:pw-1" % user) as p:
        a = asset(p.smtp_port, username=user, client_id=cid, client_secret=secret,
                  auth_url=p.auth_url, token_url=p.token_url, scopes="https://mail.test/SMTP.Send",
                  oauth_grant_type="client_credentials", max_connections=4)
        reqs = [{"action": "send email", "asset": a, "asset_id": "par-oauth",
                 "parameters": {"to": "soc@corp.example", "subject": "o%d" % i, "body": "b%d" % i}}
                for i in range(8)]
        r = run_connector(reqs)
        eq(r.rc, 0, "all sent\n%s" % r)
        eq(len(p.token_requests()), 1, "one token for every session")
        attempts = p.auth_attempts()
        true(len(attempts) >= 2, "more than one session authenticated: %s" % attempts)
        true(all(x["method"] == "XOAUTH2" and x["ok"] for x in attempts), "XOAUTH2 each time")
        eq(len(p.messages()), 8, "all delivered")
        for res in r.results:
            eq(data0(res["action_results"][0])["auth"], "OAuth", "auth")
        true(secret not in r.stdout + r.stderr, "no secret in output")


def test_a_platform_waiting_for_each_answer_gets_it():
    """The pipe stays open and the next request is written only after the
    previous answer came: the answer of a message sent on a parallel session
    must come while the connector waits for input."""
    with Aiosmtpd() as srv:
        a = asset(srv.port, sender_address=SENDER, max_connections=3)
        env = dict(os.environ, SMTP_CONNECTOR_STATE_DIR=os.path.join(tmpdir(), "state"))
        proc = subprocess.Popen([connector_path()], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env=env, start_new_session=True)
        out = LineReader(proc)
        try:
            for i in range(4):
                req = {"action": "send email", "asset": a,
                       "parameters": {"to": RCPT, "subject": "w%d" % i, "body": "b"}}
                proc.stdin.write((json.dumps(req) + "\n").encode())
                proc.stdin.flush()
                res = json.loads(out.line(what="the answer to request %d while the pipe "
                                          "stayed open" % i))
                eq(res["action_results"][0]["parameter"]["subject"], "w%d" % i, "its answer")
                eq(res["status"], "success", "sent")
            proc.stdin.close()
            eq(proc.wait(20), 0, "exit status")
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        eq(len(srv.wait_messages(4)), 4, "all delivered")


def test_max_connections_schema():
    for bad in (0, 1000, "x", 2.5):
        r = run_connector({"action": "send email",
                           "asset": asset(2525, max_connections=bad),
                           "parameters": {"to": RCPT, "body": "b"}})
        eq(r.rc, 2, "refused: %r\n%s" % (bad, r))
        contains(r.results[0]["message"], "max_connections", "names the field for %r" % bad)


if __name__ == "__main__":
    run(globals())
