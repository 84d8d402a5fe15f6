#!/usr/bin/python3
"""The http delivery plugin (plugins/sinks/http, doc/sink-http.md): nothing
answered 250 is lost, and only a 2xx answer is delivery.

Against a real HTTP endpoint (tests/servers/http_endpoint.py) that records
every request and answers as told, the plugin driven through the real
loader by tests/unit/sink_driver (start, deliver, stop, as serve calls it)
and, where serve is built, end to end over SMTP:
  - the default payload, parsed as JSON, field by field: subject with
    quotes and non-ASCII (RFC 2047), the text/plain alternative of a
    multipart/alternative body, attachments, headers, envelope;
  - 500 twice then 200: three POSTs with one Idempotency-Key, one 200,
    the spool empty; 429 with Retry-After (seconds and HTTP-date) waits;
    400 and a redirect (not followed) move the message to failed/ with a
    reason; 408, a timeout and a connection closed without an answer are
    retried;
    max_age expires a message; a long body is cut at max_body;
  - sync mode: 2xx accept, 5xx/429/closed connection defer, 400 reject;
  - templates for body, url and header, escaped by content type;
  - a stop keeps what is not delivered and the next start delivers it;
    kill -9 during a 1,000-message load loses nothing that was accepted;
    kill -9 with the spool's writeback lost by hand (files deleted or
    emptied): the journal puts back every message answered 250, POSTed
    once; a message POSTed before a stop or a kill is not POSTed again,
    unless its "done" record was lost (at-least-once, same key);
  - https: verified against ca_file; an untrusted certificate is never
    sent to (the message waits), verify false delivers it;
  - no header value (Authorization) reaches the log.
"""
import calendar
import email.utils
import json
import os
import re
import signal
import smtplib
import subprocess
import sys
import threading
import time
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (TIMEOUT, HttpEndpoint, LineReader, _stop_process, contains,  # noqa: E402
                     eq, shared_ca, mkdtemp, not_contains, run, skip, tmpdir, true,
                     wait_for)
from servelib import Serve, fs_faults_env, journal_records  # noqa: E402

def builddir():
    d = os.environ.get("SMTP_CONNECTOR_BUILDDIR")
    if not d:
        skip("SMTP_CONNECTOR_BUILDDIR not set (run via make check)")
    return d


def driver_path():
    path = os.path.join(builddir(), "tests", "unit", "sink_driver")
    if not os.access(path, os.X_OK):
        skip("tests/unit/sink_driver not built (make check builds it)")
    return path


# --------------------------------------------------------------------------
# the endpoint's records

def header(req, name):
    """A request header's value; http.server decodes them as Latin-1, the
    sink sends UTF-8."""
    for k, v in req["headers"]:
        if k.lower() == name.lower():
            return v.encode("latin-1").decode("utf-8", "replace")
    return None


def delivered_ids(reqs):
    return {header(r, "Idempotency-Key") for r in reqs if r["status"] == 200}


# --------------------------------------------------------------------------
# the plugin, driven without the listener

class Driver:
    """tests/unit/sink_driver running sink_http with `settings`."""

    def __init__(self, settings, state=None):
        self.state = state or os.path.join(tmpdir(), "state")
        os.makedirs(self.state, exist_ok=True)
        self.settings = os.path.join(mkdtemp("settings"), "settings.json")
        with open(self.settings, "w") as f:
            json.dump(settings, f)

    def start(self, expect_ok=True, commands=None):
        """commands: a file of commands as stdin (at its end the driver
        stops as on "stop 5000"), instead of a pipe that send() writes to."""
        argv = [driver_path(), "http", self.settings, self.state]
        err_path = os.path.join(mkdtemp("driver"), "stderr")
        with open(err_path, "wb") as err, open(commands or os.devnull, "rb") as cmds:
            self.proc = subprocess.Popen(argv, stdin=cmds if commands else subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=err,
                                         start_new_session=True)
        self.proc.stderr_path = err_path
        harness._processes.append(self.proc)  # stopped at the test's end whatever happens
        self.out = LineReader(self.proc, lambda: "; stderr: %s" % self.stderr()[-3000:])
        self.stdin = None if commands else open(self.proc.stdin.fileno(), "w", closefd=False)
        if expect_ok:
            line = self.readline("started")
            eq(line, "started", "driver start (stderr: %s)" % self.stderr())
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            _stop_process(self.proc)
        return False

    def stderr(self):
        with open(self.proc.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def readline(self, what="a line", timeout=TIMEOUT):
        return self.out.line(timeout, "driver: " + what).decode()

    def rest(self, timeout=TIMEOUT):
        """The lines it wrote and that are not read yet, up to its end (once
        it is dead: the write end of its stdout closes with it)."""
        return self.out.rest(timeout, "driver: the end of its stdout").decode().splitlines()

    def send(self, text):
        self.stdin.write(text)
        self.stdin.flush()

    def deliver(self, msgid, raw, sender="sender@example.org", rcpts=("rcpt@example.net",)):
        path = os.path.join(tmpdir(), "msg-%s.eml" % msgid)
        with open(path, "wb") as f:
            f.write(raw)
        self.send("deliver %s %s %s %s\n" % (msgid, path, sender, " ".join(rcpts)))
        line = self.readline("the verdict for %s" % msgid)
        words = line.split(" ", 2)
        eq(words[0], msgid, "verdict line's id (%s)" % line)
        return words[1], (words[2] if len(words) > 2 else "")

    def stop(self, grace_ms=5000, timeout=TIMEOUT):
        self.send("stop %d\n" % grace_ms)
        eq(self.readline("stopped", timeout), "stopped", "driver stop")
        # a sanitizer build exits 86/87 (ASan, UBSan) or 66 (TSan) on a report
        eq(self.proc.wait(timeout), 0, "driver exit status (stderr: %s)" % self.stderr()[-3000:])
        no_sanitizer_report(self.stderr())
        return self.stderr()

    def spool(self, box):
        d = os.path.join(self.spool_dir(), box)
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def spool_dir(self):
        with open(self.settings) as f:
            return json.load(f).get("spool_dir") or os.path.join(self.state, "http-spool")


def no_sanitizer_report(log):
    for bad in ("AddressSanitizer", "LeakSanitizer", "ThreadSanitizer", "runtime error:"):
        not_contains(log, bad, "sanitizer report")


def settings(ep, **kw):
    s = {"url": ep.url(), "retry_base_delay": 0.05, "retry_max_delay": 0.2}
    s.update(kw)
    return s


def simple(subject="hello", body="Hello there.\n", msgid=None):
    m = EmailMessage()
    m["From"] = "Sender <sender@example.org>"
    m["To"] = "rcpt@example.net"
    m["Subject"] = subject
    m["Message-ID"] = msgid or email.utils.make_msgid(domain="example.org")
    m["Date"] = email.utils.formatdate()
    m.set_content(body)
    return m.as_bytes(policy=SMTP_POLICY)


def rich():
    """Quotes and non-ASCII in the subject, multipart/alternative inside
    multipart/mixed, a PDF attachment."""
    m = EmailMessage()
    m["From"] = "Ünïcode Sender <sender@example.org>"
    m["To"] = "a@example.net, b@example.net"
    m["Subject"] = 'He said "hi" \\ — grüße, 日本'
    m["Message-ID"] = "<rich-1@example.org>"
    m["X-Note"] = "value: with colon"
    m.set_content("Plain text ünïcödé\nsecond line\n")
    m.add_alternative("<p>HTML <b>only</b></p>\n", subtype="html")
    m.add_attachment(b"%PDF-1.4 fake\n" * 100, maintype="application", subtype="pdf",
                     filename="report.pdf")
    return m.as_bytes(policy=SMTP_POLICY)


# --------------------------------------------------------------------------
# payload

def test_default_payload_field_by_field():
    with HttpEndpoint() as ep, Driver(settings(ep)) as d:
        before = int(time.time())  # the timestamp has whole seconds
        eq(d.deliver("rich-1", rich(), rcpts=("a@example.net", "b@example.net"))[0], "accept",
           "verdict")
        req = ep.wait(1)[0]
        after = time.time()
        d.stop()
    eq(req["method"], "POST", "method")
    eq(header(req, "Content-Type"), "application/json", "Content-Type")
    eq(header(req, "Idempotency-Key"), "rich-1", "Idempotency-Key")
    p = json.loads(req["body"])
    eq(p["id"], "rich-1", "id")
    true(p["timestamp"].endswith("Z") and "T" in p["timestamp"], "RFC 3339 UTC timestamp")
    t = calendar.timegm(time.strptime(p["timestamp"], "%Y-%m-%dT%H:%M:%SZ"))
    true(before <= t <= after, "timestamp (%s) is the time of delivery" % p["timestamp"])
    eq(p["sender"], "sender@example.org", "sender")
    eq(p["recipients"], ["a@example.net", "b@example.net"], "recipients")
    eq(p["subject"], 'He said "hi" \\ — grüße, 日本', "subject decoded")
    eq(p["body"].replace("\r\n", "\n").rstrip("\n"), "Plain text ünïcödé\nsecond line",
       "body: the text/plain alternative, decoded")
    eq(p["message_id"], "rich-1@example.org", "message_id")
    eq(p["headers"]["X-Note"], "value: with colon", "a header with a colon in its value")
    eq(p["headers"]["Subject"], p["subject"], "headers decoded")
    eq(len(p["attachments"]), 1, "attachments")
    a = p["attachments"][0]
    eq((a["name"], a["content_type"], a["size"]), ("report.pdf", "application/pdf", 1400),
       "attachment name, type, decoded size")
    eq(sorted(p), sorted(["id", "timestamp", "sender", "recipients", "subject", "body",
                          "message_id", "headers", "attachments"]), "payload keys")


# --------------------------------------------------------------------------
# spool mode: retries, refusals

def test_500_twice_then_200_delivers_once_with_one_key():
    with HttpEndpoint(plan=[{"status": 500}, {"status": 503}]) as ep, Driver(settings(ep)) as d:
        eq(d.deliver("r500", simple())[0], "accept", "verdict: spooled")
        reqs = ep.wait(3)
        wait_for(lambda: d.spool("new") == [], TIMEOUT, "spool emptied")
        time.sleep(0.3)
        log = d.stop()
    reqs = ep.requests()
    eq([r["status"] for r in reqs], [500, 503, 200], "answers")
    eq({header(r, "Idempotency-Key") for r in reqs}, {"r500"}, "one Idempotency-Key throughout")
    eq(len({r["body"] for r in reqs}), 1, "the same payload on every attempt")
    eq(d.spool("failed"), [], "failed/")
    contains(log, "r500: POST returned status: 500; retry 1 in", "retry logged with its delay")
    contains(log, "r500: POST returned status: 200", "delivery logged")


def test_429_retry_after_seconds_and_http_date():
    # the date is at least 2 s ahead when the second answer is given
    date = email.utils.formatdate(time.time() + 5, usegmt=True)
    plan = [{"status": 429, "retry_after": "2"}, {"status": 503, "retry_after": date}]
    with HttpEndpoint(plan=plan) as ep, Driver(settings(ep)) as d:
        d.deliver("r429", simple())
        reqs = ep.wait(3, timeout=TIMEOUT + 10)
        log = d.stop()
    eq([r["status"] for r in reqs], [429, 503, 200], "answers")
    # the delays the plugin chose (its backoff alone is 0.05 s), as logged;
    # the test measures no time
    m = re.search(r"r429: POST returned status: 429; retry 1 in ([0-9.]+) s", log)
    true(m, "the first retry logged with its delay", log)
    eq(float(m.group(1)), 2.0, "Retry-After: 2 is the delay")
    m = re.search(r"r429: POST returned status: 503; retry 2 in ([0-9.]+) s", log)
    true(m, "the second retry logged with its delay", log)
    # an HTTP-date has whole seconds and was ~3 s ahead when it was answered
    true(float(m.group(1)) >= 1.0, "Retry-After: <HTTP-date> is the delay (%s s)" % m.group(1))


def test_400_moves_to_failed_with_reason():
    with HttpEndpoint(default={"status": 400, "body": "bad field \"x\"\nsecond line"}) as ep, \
            Driver(settings(ep)) as d:
        d.deliver("r400", simple())
        ep.wait(1)
        wait_for(lambda: "r400.reason" in d.spool("failed"), TIMEOUT, "failed/r400.reason")
        time.sleep(0.3)
        log = d.stop()
    eq(len(ep.requests()), 1, "a 400 is not retried")
    eq(d.spool("failed"), ["r400.eml", "r400.env", "r400.reason"], "failed/")
    eq(d.spool("new"), [], "new/")
    with open(os.path.join(d.spool_dir(), "failed", "r400.reason")) as f:
        reason = f.read()
    contains(reason, "HTTP 400", "reason")
    contains(reason, 'bad field "x" second line', "reason quotes the answer on one line")
    contains(log, "r400: POST returned status: 400; moved to failed/", "log")


def test_408_and_closed_connection_retried_redirect_refused():
    plan = [{"status": 408}, {"close": True}, {"status": 302}]
    with HttpEndpoint(plan=plan, per_key=True) as ep, Driver(settings(ep)) as d:
        d.deliver("r408", simple())
        wait_for(lambda: "r408.reason" in d.spool("failed"), TIMEOUT, "failed/r408.reason")
        d.stop()
    statuses = [r["status"] for r in ep.requests()]
    eq(statuses[0], 408, "first answer")
    eq(statuses[-1], 302, "last answer")
    true(None in statuses, "the closed connection was retried")
    with open(os.path.join(d.spool_dir(), "failed", "r408.reason")) as f:
        contains(f.read(), "HTTP 302 (redirects are not followed", "reason")


def test_slow_endpoint_times_out_and_is_retried():
    # the first answer would come long after every wait of the test: the
    # retry arriving at all is the 0.5 s timeout at work
    with HttpEndpoint(plan=[{"delay": 10 * TIMEOUT}]) as ep, \
            Driver(settings(ep, timeout=0.5)) as d:
        d.deliver("slow1", simple())
        reqs = ep.wait(2, what="the retry after the timeout")
        wait_for(lambda: d.spool("new") == [], TIMEOUT, "spool emptied")
        log = d.stop()
    eq(delivered_ids(reqs), {"slow1"}, "delivered by the retry")
    contains(log, "slow1: POST failed:", "the timeout is logged")


def test_long_body_is_cut_at_max_body():
    body = ("0123456789" * 10 + "\n") * 50  # 5,050 characters
    with HttpEndpoint() as ep, Driver(settings(ep, max_body=2048)) as d:
        d.deliver("big", simple(body=body))
        p = json.loads(ep.wait(1)[0]["body"])
        d.stop()
    true(len(p["body"]) <= 2048, "body cut to max_body (%d)" % len(p["body"]))
    true(body.startswith(p["body"].replace("\r\n", "\n")), "the start of the body")
    eq(p.get("body_truncated"), True, "body_truncated")


def test_connection_refused_then_restart_delivers():
    with HttpEndpoint() as ep:
        port = ep.port
    s = {"url": "http://127.0.0.1:%d/hook" % port, "retry_base_delay": 0.05,
         "retry_max_delay": 0.1}
    d = Driver(s).start()
    eq(d.deliver("down1", simple())[0], "accept", "accepted while the endpoint is down")
    eq(d.deliver("down2", simple())[0], "accept", "accepted while the endpoint is down")
    time.sleep(0.5)
    log = d.stop(grace_ms=200)
    contains(log, "down1: POST failed:", "connection failure logged")
    eq(sorted(f for f in d.spool("new") if f.endswith(".eml")), ["down1.eml", "down2.eml"],
       "kept in new/ over the stop")
    # a new endpoint on another port: point the spool at it and restart
    with HttpEndpoint() as ep2:
        s["url"] = ep2.url()
        d2 = Driver(s, state=d.state)
        with d2:
            reqs = ep2.wait(2)
            wait_for(lambda: d2.spool("new") == [], TIMEOUT, "spool emptied")
            d2.stop()
    eq(delivered_ids(reqs), {"down1", "down2"}, "delivered after the restart")


def test_restart_posts_the_spool_oldest_first():
    """The spool's ids are random; a restart queues what it finds in new/
    by the time each message was written, so messages never tried go out
    in the order they arrived."""
    with HttpEndpoint() as ep:
        port = ep.port
    s = {"url": "http://127.0.0.1:%d/hook" % port, "workers": 1}
    d = Driver(s).start()
    # names whose alphabetical order is not their arrival order
    arrival = ["m-c", "m-a", "m-d", "m-b"]
    for i in arrival:
        eq(d.deliver(i, simple(subject=i))[0], "accept", "accepted while the endpoint is down")
    d.stop(grace_ms=200)
    new = os.path.join(d.spool_dir(), "new")
    for f in os.listdir(new):
        if f.endswith(".retry"):
            os.unlink(os.path.join(new, f))  # never tried, as after a kill -9
    for n, i in enumerate(arrival):  # one second apart, whatever the clock's grain
        t = 1_700_000_000 + n
        for ext in (".eml", ".env"):
            os.utime(os.path.join(new, i + ext), (t, t))
    with HttpEndpoint() as ep2:
        s["url"] = ep2.url()
        with Driver(s, state=d.state) as d2:
            reqs = ep2.wait(len(arrival))
            d2.stop()
    eq([header(r, "Idempotency-Key") for r in reqs], arrival, "POSTed in arrival order")


def test_max_age_expires_to_failed():
    with HttpEndpoint(default={"status": 500}) as ep, \
            Driver(settings(ep, max_age=1)) as d:
        d.deliver("old", simple())
        wait_for(lambda: "old.reason" in d.spool("failed"), TIMEOUT, "failed/old.reason")
        d.stop()
    with open(os.path.join(d.spool_dir(), "failed", "old.reason")) as f:
        contains(f.read(), "expired", "reason")
    eq(d.spool("new"), [], "new/")


def test_workers_keep_connections_alive():
    rcpts = lambda i: tuple("r%d-%s@example.net" % (j, "x" * 40) for j in range(5 - i))  # noqa: E731
    with HttpEndpoint() as ep, Driver(settings(ep, workers=1)) as d:
        for i in range(5):
            d.deliver("ka%d" % i, simple(), rcpts=rcpts(i))
            ep.wait(i + 1)
        d.stop()
    reqs = ep.requests()
    eq(len({r["peer"] for r in reqs}), 1, "one connection for 5 POSTs (peers %s)"
       % [r["peer"] for r in reqs])
    # each envelope file is a recycled one, shorter than the last
    for i, r in enumerate(reqs):
        eq(json.loads(r["body"])["recipients"], list(rcpts(i)), "recipients of ka%d" % i)


def test_workers_post_in_parallel():
    # one delivery thread, but up to `workers` POSTs at once: a slow
    # endpoint gets three requests at a time over three connections, and
    # never a fourth
    with HttpEndpoint(default={"status": 200, "delay": 0.5}) as ep, \
            Driver(settings(ep, workers=3)) as d:
        for i in range(7):
            eq(d.deliver("par%d" % i, simple())[0], "accept", "par%d accepted" % i)
        reqs = ep.wait(7, what="7 POSTs to a slow endpoint")
        wait_for(lambda: d.spool("new") == [], TIMEOUT, "spool emptied")
        d.stop()
    eq(delivered_ids(reqs), {"par%d" % i for i in range(7)}, "every message POSTed")
    eq(max(r["in_flight"] for r in reqs), 3, "POSTs answered at once (at most workers)")
    eq(len({r["peer"] for r in reqs}), 3, "connections (peers %s)" % [r["peer"] for r in reqs])


def test_an_idle_worker_is_woken_by_deliver():
    # the idle delivery thread sleeps in curl_multi_poll() for up to a
    # minute: the second POST comes soon only if deliver() wakes it (how
    # fast is bench/'s)
    with HttpEndpoint() as ep, Driver(settings(ep)) as d:
        d.deliver("warm", simple())
        ep.wait(1)
        wait_for(lambda: d.spool("new") == [], TIMEOUT, "spool emptied: the worker idle")
        d.deliver("fast", simple())
        reqs = ep.wait(2, what="the POST of a message delivered to an idle worker")
        d.stop()
    eq([header(r, "Idempotency-Key") for r in reqs], ["warm", "fast"], "POSTs")


def test_stop_grace_keeps_in_flight_spooled():
    # the answer would come long after the stop's own bounded wait: a stop
    # that waited for it instead of the 0.3 s grace fails there
    with HttpEndpoint(plan=[{"delay": 10 * TIMEOUT}]) as ep, \
            Driver(settings(ep, workers=1)) as d:
        d.deliver("slow", simple())
        ep.wait(1)
        d.stop(grace_ms=300)
    eq(sorted(d.spool("new")), ["slow.eml", "slow.env"], "the message stays in new/")


# --------------------------------------------------------------------------
# sync mode

def test_sync_mode_verdicts_follow_the_endpoint():
    with HttpEndpoint() as ep, Driver(settings(ep, mode="sync")) as d:
        eq(d.deliver("s200", simple())[0], "accept", "2xx")
        ep.control(default={"status": 503})
        v, reply = d.deliver("s503", simple())
        eq(v, "defer", "503")
        contains(reply, "4.3.0", "reply")
        ep.control(default={"status": 429, "retry_after": "5"})
        eq(d.deliver("s429", simple())[0], "defer", "429")
        ep.control(default={"status": 400})
        v, reply = d.deliver("s400", simple())
        eq(v, "reject", "400")
        contains(reply, "5.6.0", "reply")
        ep.control(default={"close": True})
        eq(d.deliver("sclose", simple())[0], "defer", "connection closed without an answer")
        d.stop()
    keys = [header(r, "Idempotency-Key") for r in ep.requests()]
    # libcurl itself retries once when a kept-alive connection is closed
    # under a request (same key, so the endpoint can tell)
    eq(keys[:4], ["s200", "s503", "s429", "s400"], "one POST per message, none repeated")
    eq(set(keys[4:]), {"sclose"}, "the closed one")
    true(not os.path.exists(os.path.join(d.state, "http-spool")), "nothing stored")


# --------------------------------------------------------------------------
# templates

def test_templates_for_body_url_and_header_escape_by_content_type():
    subj = 'Quote " and <tag> & ü'
    with HttpEndpoint() as ep:
        s = settings(ep, url=ep.url("/in/{{id}}?s={{subject}}"),
                     headers={"X-Subject": "{{subject}}", "X-Sender": "{{ .sender }}"},
                     template='{"s": "{{subject}}", "r": "{{#recipients}}{{.}};{{/recipients}}"}')
        with Driver(s) as d:
            d.deliver("tj", simple(subject=subj))
            req = ep.wait(1)[0]
            d.stop()
        eq(req["path"], "/in/tj?s=Quote%20%22%20and%20%3Ctag%3E%20%26%20%C3%BC",
           "url template, values percent-encoded")
        eq(header(req, "X-Sender"), "sender@example.org", "header template, Go-style name")
        eq(header(req, "X-Subject"), subj, "header template")
        eq(json.loads(req["body"]), {"s": subj, "r": "rcpt@example.net;"},
           "application/json: JSON string escaping, the body parses")
    with HttpEndpoint() as ep:
        s = settings(ep, content_type="text/html; charset=utf-8",
                     template="<p>{{subject}}</p>{{{subject}}}")
        with Driver(s) as d:
            d.deliver("th", simple(subject=subj))
            req = ep.wait(1)[0]
            d.stop()
        eq(header(req, "Content-Type"), "text/html; charset=utf-8", "Content-Type")
        eq(req["body"], "<p>Quote &quot; and &lt;tag&gt; &amp; ü</p>" + subj, "HTML escaping")
    with HttpEndpoint() as ep:
        with Driver(settings(ep, content_type="text/plain", template="{{subject}}")) as d:
            d.deliver("tp", simple(subject=subj))
            req = ep.wait(1)[0]
            d.stop()
        eq(req["body"], subj, "text/plain: no escaping")


def test_header_template_cannot_inject_lines():
    raw = simple(subject="=?utf-8?q?evil=0D=0AX-Injected=3A_1?=")
    with HttpEndpoint() as ep, Driver(settings(ep, headers={"X-S": "{{subject}}"})) as d:
        d.deliver("inj", raw)
        req = ep.wait(1)[0]
        d.stop()
    eq(header(req, "X-Injected"), None, "no injected header")
    contains(header(req, "X-S"), "evil", "the value, on one line")


# --------------------------------------------------------------------------
# TLS: verified by default, as every request this project makes

def test_https_verified_with_ca_file():
    ca = shared_ca()
    with HttpEndpoint(tls=ca) as ep, Driver(settings(ep, ca_file=ca.ca_cert)) as d:
        d.deliver("tls1", simple())
        reqs = ep.wait(1)
        wait_for(lambda: d.spool("new") == [], TIMEOUT, "spool emptied")
        d.stop()
    eq(reqs[0]["status"], 200, "delivered over verified TLS")


def test_https_untrusted_certificate_is_not_delivered():
    ca = shared_ca()
    with HttpEndpoint(tls=ca) as ep:
        with Driver(settings(ep)) as d:
            d.deliver("tls2", simple())
            time.sleep(1)
            log = d.stop(grace_ms=200)
        eq(ep.requests(), [], "no request reached the endpoint")
        contains(log, "tls2: POST failed:", "logged")
        contains(log.lower(), "certificate", "the reason is the certificate")
        true({"tls2.eml", "tls2.env"} <= set(d.spool("new")), "kept for a retry: %s" % d.spool("new"))
        with Driver(settings(ep, verify=False), state=d.state) as d2:
            ep.wait(1)
            wait_for(lambda: d2.spool("new") == [], TIMEOUT, "spool emptied")
            d2.stop()


# --------------------------------------------------------------------------
# settings, secrets

def test_settings_errors_name_the_field():
    with HttpEndpoint() as ep:
        for s, text in (({"url": ep.url(), "bogus": 1}, "bogus"),
                        ({"url": ep.url(), "headers": {"Idempotency-Key": "x"}},
                         "headers.Idempotency-Key"),
                        ({"url": ep.url(), "headers": {"content-type": "text/html"}},
                         "set content_type instead"),
                        ({"url": ep.url(), "headers": {"Bad Name": "x"}}, "headers"),
                        ({"url": ep.url(), "ca_file": "/nonexistent.pem", "mode": "sync"},
                         "ca_file"),
                        ({"url": ep.url(), "template": "{{#open}}"}, "template")):
            d = Driver(s).start(expect_ok=False)
            d.stdin.close()
            d.proc.stdin.close()
            rc = d.proc.wait(TIMEOUT)
            eq(rc, 2, "exit status for %s" % s)
            contains(d.stderr(), text, "error names the field")


def test_one_process_per_spool():
    with HttpEndpoint() as ep:
        s = settings(ep)
        with Driver(s) as d:
            d2 = Driver(s, state=d.state).start(expect_ok=False)
            eq(d2.proc.wait(TIMEOUT), 2, "second driver on the same spool")
            contains(d2.stderr(), "in use", "error")
            d.stop()


def test_log_has_no_header_values_or_content():
    secret = "Bearer s3cr3t-t0ken-value"
    with HttpEndpoint(plan=[{"status": 500}]) as ep, \
            Driver(settings(ep, headers={"Authorization": secret})) as d:
        d.deliver("sec", simple(subject="confidential-subject", body="confidential-body\n"))
        reqs = ep.wait(2)
        log = d.stop()
    eq(header(reqs[0], "Authorization"), secret, "the header is sent")
    for s in ("s3cr3t", "confidential-subject", "confidential-body"):
        not_contains(log, s, "log")


# --------------------------------------------------------------------------
# crash: nothing accepted is lost

def test_kill9_during_load_loses_nothing_accepted():
    n = 1000
    raw = simple(body="load\n" * 20)
    path = os.path.join(tmpdir(), "load.eml")
    with open(path, "wb") as f:
        f.write(raw)
    # the commands as a file on the driver's stdin: nothing of the test's
    # has to keep feeding it, and nothing is left writing when it dies
    cmds = os.path.join(tmpdir(), "commands")
    with open(cmds, "w") as f:
        f.writelines("deliver L%04d %s s@example.org r@example.net\n" % (i, path)
                     for i in range(n))
    with HttpEndpoint(plan=[], default={"status": 200, "delay": 0.01}) as ep:
        s = settings(ep, workers=2)
        d = Driver(s).start(commands=cmds)
        accepted = set()
        for _ in range(n):  # one verdict a command, at most
            if len(accepted) >= n // 2:
                break
            mid, verdict = d.readline("verdicts").split(" ")[:2]
            if verdict == "accept":
                accepted.add(mid)
        true(len(accepted) >= n // 2, "%d accepted of %d before kill -9" % (len(accepted), n))
        try:
            os.killpg(d.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # it had read every command and stopped: no harm to the test
        d.proc.wait(TIMEOUT)
        # verdicts already written before the kill are accepted too
        for line in d.rest():
            words = line.split(" ")
            if len(words) > 1 and words[1] == "accept":
                accepted.add(words[0])
        before = len(delivered_ids(ep.requests()))
        with Driver(s, state=d.state) as d2:
            spool_emptied(ep, lambda: [f for f in d2.spool("new") if f.endswith(".eml")],
                          d2.proc, "the spool after the restart", TIMEOUT * 3)
            d2.stop()
        reqs = ep.requests()
    got = delivered_ids(reqs)
    missing = sorted(accepted - got)
    eq(missing, [], "accepted messages that never reached the endpoint")
    sys.stdout.write("# %d accepted before kill -9, %d delivered before it, %d after restart; "
                     "%d POSTs in all\n" % (len(accepted), before, len(got), len(reqs)))
    # duplicates only as repeats of one id (the endpoint can drop them)
    for r in reqs:
        eq(json.loads(r["body"])["id"], header(r, "Idempotency-Key"), "payload id is the key")


def spool_emptied(ep, left, proc, what, timeout):
    """Wait until left() (the spool's messages) is empty: bounded, and a
    failure names what is still there, what the endpoint got, and whether
    the endpoint or the process delivering to it is gone."""
    def done():
        if ep.proc.poll() is not None:
            raise AssertionError("%s: the endpoint exited (status %s) with %d message(s) not "
                                 "delivered: %s" % (what, ep.proc.returncode, len(left()),
                                                    left()[:10]))
        return not left()
    try:
        wait_for(done, timeout, what + " emptied", proc)
    except AssertionError as e:
        raise AssertionError("%s\n  still spooled (%d): %s\n  the endpoint recorded %d request(s)"
                             % (e, len(left()), sorted(left())[:10], len(ep.requests())))


# --------------------------------------------------------------------------
# end to end: smtp-connector serve --url

def http_serve(ep=None, args=(), state_dir=None, env=None, **delivery):
    """servelib.Serve delivering with the http plugin: to ep through a
    config file (delivery settings as keywords), or as args say."""
    config = None
    if ep is not None:
        config = {"delivery": dict({"plugin": "http", "url": ep.url()}, **delivery)}
    return Serve(config, args=args, maildir=False, state_dir=state_dir, env=env)


def spool_new(sv):
    """The messages in serve's http spool, waiting for delivery."""
    d = os.path.join(sv.state_dir, "http-spool", "new")
    return [f for f in os.listdir(d) if f.endswith(".eml")] if os.path.isdir(d) else []


def smtp_send(sv, raw, sender="sender@example.org", rcpts=("rcpt@example.net",)):
    """One SMTP transaction: (code, reply text) of the end of DATA."""
    with smtplib.SMTP("127.0.0.1", sv.port, timeout=TIMEOUT) as c:
        c.ehlo("client.test")
        c.mail(sender)
        for r in rcpts:
            c.rcpt(r)
        code, text = c.data(raw)
        return code, text.decode("utf-8", "replace")


def queued_id(text):
    m = re.search(r"queued as (\S+)", text)
    return m and m.group(1)


def test_serve_url_posts_the_payload():
    with HttpEndpoint() as ep, \
            http_serve(args=["--url", ep.url(), "--header", "X-Token: a:b:c"]) as sv:
        code, text = smtp_send(sv, rich(), rcpts=("a@example.net", "b@example.net"))
        eq(code, 250, "end of DATA (%s)" % text)
        req = ep.wait(1)[0]
        spool_emptied(ep, lambda: spool_new(sv), sv.proc, "serve's spool", TIMEOUT)
    p = json.loads(req["body"])
    eq(p["id"], header(req, "Idempotency-Key"), "id is the Idempotency-Key")
    eq(p["id"], queued_id(text), "id is the one in the 250 reply")
    eq(p["sender"], "sender@example.org", "sender")
    eq(p["recipients"], ["a@example.net", "b@example.net"], "recipients")
    eq(p["subject"], 'He said "hi" \\ — grüße, 日本', "subject")
    eq(p["body"].replace("\r\n", "\n").rstrip("\n"), "Plain text ünïcödé\nsecond line", "body")
    eq(p["attachments"], [{"name": "report.pdf", "content_type": "application/pdf",
                           "size": 1400}], "attachments")
    eq(header(req, "X-Token"), "a:b:c", "--header split at the first colon")


def test_serve_failed_flush_is_451_and_never_posted():
    """A journal flush that fails (tests/plugins/fs_faults.c): 451, no
    POST of that message, not even after a kill right then and a restart
    (the journal replayed); the messages before and after are POSTed."""
    trigger = os.path.join(mkdtemp("flush"), "fail-now")
    with HttpEndpoint() as ep:
        sv = http_serve(ep, env=fs_faults_env(SC_TEST_FAIL_FLUSH=trigger))
        code, before = smtp_send(sv, simple("before"))
        eq(code, 250, "before the failure (%s)" % before)
        open(trigger, "w").close()
        code, text = smtp_send(sv, simple("during"))
        eq(code, 451, "a failed flush is a temporary refusal (%s)" % text)
        # killed at once, before a checkpoint retires the failed journal file
        sv.stop(signal.SIGKILL)
        os.unlink(trigger)
        with http_serve(ep, state_dir=sv.state_dir) as sv2:
            code, last = smtp_send(sv2, simple("restarted"))
            eq(code, 250, "after the restart (%s)" % last)
            ep.wait(2)
            # the replayed spool, whatever it holds, POSTed before looking
            spool_emptied(ep, lambda: spool_new(sv2), sv2.proc, "serve's spool", TIMEOUT)
        posted = [(json.loads(r["body"])["subject"], header(r, "Idempotency-Key"))
                  for r in ep.requests() if r["status"] == 200]
    # "before"'s done record may go with the cut (journal.c, take_back):
    # then it is POSTed once more, with the same Idempotency-Key
    eq(sorted({subject for subject, _ in posted}), ["before", "restarted"],
       "POSTed: never the refused one")
    eq(len({key for subject, key in posted if subject == "before"}), 1,
       "one Idempotency-Key for every POST of the same message")


def test_serve_template_flag():
    with HttpEndpoint() as ep, \
            http_serve(args=["--url", ep.url("/m/{{ .id }}"), "--template",
                             '{"text": "{{subject}} from {{sender}}"}']) as sv:
        code, text = smtp_send(sv, simple(subject='a "quoted" one'))
        req = ep.wait(1)[0]
    eq(req["path"], "/m/" + queued_id(text), "url template")
    eq(json.loads(req["body"]), {"text": 'a "quoted" one from sender@example.org'}, "body")


def test_serve_content_type_header_sets_the_escaping():
    # smtp-pigeon sets the body's type with --header: it is content_type,
    # so the template is escaped for what the endpoint is told it gets
    with HttpEndpoint() as ep, \
            http_serve(args=["--url", ep.url(), "--header", "Content-Type: text/html",
                             "--template", "<p>{{subject}}</p>"]) as sv:
        smtp_send(sv, simple(subject="<b>x</b> & y"))
        req = ep.wait(1)[0]
    eq(header(req, "Content-Type"), "text/html", "the header sent")
    eq(req["body"], "<p>&lt;b&gt;x&lt;/b&gt; &amp; y</p>", "HTML escaping, as the type says")


def test_serve_sync_mode_replies_as_the_endpoint_answers():
    with HttpEndpoint() as ep, http_serve(ep, mode="sync") as sv:
        eq(smtp_send(sv, simple())[0], 250, "endpoint 200")
        ep.control(default={"status": 500})
        code, text = smtp_send(sv, simple())
        eq(code, 451, "endpoint 500 (%s)" % text)
        contains(text, "4.3.0", "451 text")
        ep.control(default={"status": 429, "retry_after": "30"})
        eq(smtp_send(sv, simple())[0], 451, "endpoint 429")
        ep.control(default={"status": 400})
        eq(smtp_send(sv, simple())[0], 554, "endpoint 400")
        ep.control(default={"status": 201})
        eq(smtp_send(sv, simple())[0], 250, "endpoint 201")
        reqs = ep.requests()
    eq([r["status"] for r in reqs], [200, 500, 429, 400, 201], "one POST each")
    eq(os.path.exists(os.path.join(sv.state_dir, "http-spool")), False, "nothing spooled")


def smtp_source(port, n, sessions):
    """Postfix's smtp-source sending n messages over `sessions` at once; a
    harness process, stopped at the end of the test whatever happens."""
    return harness._start_process(
        ["/usr/sbin/smtp-source", "-c", "-s", str(sessions), "-m", str(n), "-l", "2000",
         "-f", "load@example.org", "-t", "sink@example.net", "127.0.0.1:%d" % port],
        "smtp-source")


WITNESS_LIMIT = 1000  # messages; the load is over long before


def witness(port, out, stop):
    """A Python client beside smtp-source whose every 250 is on record: the
    ids in "queued as" must all reach the endpoint.  Bounded: it ends at
    stop, after WITNESS_LIMIT messages, or at the first error (the listener
    killed); every socket operation has a timeout."""
    i = 0
    while i < WITNESS_LIMIT and not stop.is_set():
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
                c.ehlo("witness.test")
                while i < WITNESS_LIMIT and not stop.is_set():
                    c.mail("witness@example.org")
                    c.rcpt("sink@example.net")
                    code, text = c.data(simple(subject="witness %d" % i))
                    i += 1
                    if code == 250:
                        out.append(queued_id(text.decode()))
        except (OSError, smtplib.SMTPException):
            return


def test_serve_kill9_during_smtp_source_load_loses_nothing():
    if not os.access("/usr/sbin/smtp-source", os.X_OK):
        skip("Postfix smtp-source not installed")
    with HttpEndpoint(default={"status": 200, "delay": 0.005}) as ep:
        sv = http_serve(ep, workers=2)
        load = smtp_source(sv.port, 1000, 10)
        seen, stop = [], threading.Event()
        w = threading.Thread(target=witness, args=(sv.port, seen, stop), name="witness",
                             daemon=True)
        w.start()
        try:
            try:
                wait_for(lambda: len(seen) >= 20 and len(ep.requests()) >= 200, TIMEOUT * 2,
                         "load under way", sv.proc)
            except AssertionError as e:
                raise AssertionError("%s\n  wanted 20 witnessed 250s and 200 POSTs, got %d and %d"
                                     % (e, len(seen), len(ep.requests())))
            sv.stop(signal.SIGKILL)
        finally:
            # on every path: a witness left running would outlive the test
            stop.set()
            w.join(TIMEOUT)
        true(not w.is_alive(), "the witness ended within %s s of the kill" % TIMEOUT)
        try:
            load.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError("smtp-source did not end within %s s of the kill" % TIMEOUT)
        with open(load.stderr_path, "rb") as f:  # its counter, and its errors
            counts = [int(x) for x in re.split(rb"[\r\n]+", f.read()) if x.isdigit()]
        source_done = max(counts) if counts else 0
        # the listener's "<id>: Delivered" lines: the sink said ACCEPT, so
        # the client got (or was about to get) 250; a witness may have had
        # its 250 just before the kill cut the line off
        accepted = set(re.findall(r"(?m)^(\S+): Delivered", sv.log())) | set(seen)
        spooled = len(spool_new(sv))
        with http_serve(ep, workers=2, state_dir=sv.state_dir) as sv2:
            spool_emptied(ep, lambda: spool_new(sv2), sv2.proc, "the spool after the restart",
                          TIMEOUT * 3)
        reqs = ep.requests()
    got = delivered_ids(reqs)
    eq(sorted(set(seen) - got), [], "witnessed 250s that never reached the endpoint")
    eq(sorted(accepted - got), [], "accepted messages that never reached the endpoint")
    keys = [header(r, "Idempotency-Key") for r in reqs]
    sys.stdout.write("# kill -9 at smtp-source's count %d + %d witness messages; %d accepted, "
                     "%d left in the spool, %d delivered in all, %d POSTs (%d repeats)\n"
                     % (source_done, len(seen), len(accepted), spooled, len(got), len(reqs),
                        len(keys) - len(set(keys))))
    for r in reqs:
        eq(json.loads(r["body"])["id"], header(r, "Idempotency-Key"), "payload id is the key")


# --------------------------------------------------------------------------
# end to end: the spool's journal (spool.c, spool_replay.c)

def spool_dir(sv):
    return os.path.join(sv.state_dir, "http-spool")


def send_numbered(sv, n, what):
    """n messages, each its own subject and body: {id from the 250: (subject,
    body)}; every one must be answered 250."""
    sent = {}
    for i in range(n):
        subject, body = "%s %d" % (what, i), "body of %s message %d\n" % (what, i)
        code, text = smtp_send(sv, simple(subject=subject, body=body))
        eq(code, 250, "end of DATA for %s %d (%s)" % (what, i, text))
        sent[queued_id(text)] = (subject, body)
    return sent


def posts_by_id(reqs):
    """{Idempotency-Key: [payload of each POST answered 200]}"""
    got = {}
    for r in reqs:
        if r["status"] == 200:
            p = json.loads(r["body"])
            eq(p["id"], header(r, "Idempotency-Key"), "payload id is the key")
            got.setdefault(p["id"], []).append(p)
    return got


def check_payloads(got, sent):
    for mid, (subject, body) in sent.items():
        p = got[mid][0]
        eq(p["subject"], subject, "subject of %s" % mid)
        eq(p["body"].replace("\r\n", "\n"), body, "body of %s" % mid)
        eq(p["sender"], "sender@example.org", "sender of %s" % mid)
        eq(p["recipients"], ["rcpt@example.net"], "recipients of %s" % mid)


def test_serve_kill9_then_lost_writeback_is_put_back_from_the_journal():
    """A 250 follows one fdatasync() of the journal; the spool's own files
    are flushed later by a checkpoint (about once a second). A power cut
    before it can lose their writeback; SIGKILL does not (the page cache
    survives it), so the test does the losing by hand, on messages whose
    records are still in the journal: .eml files deleted (one with its
    .env) and one emptied. The endpoint answers 503 until the kill, so
    every message is still in new/. The restart must POST each message
    answered 250 exactly once, as it was sent."""
    with HttpEndpoint(default={"status": 503}) as ep:
        sv = http_serve(ep, workers=2, retry_base_delay=0.05, retry_max_delay=0.2)
        sent = send_numbered(sv, 12, "journal")  # well within the first second
        # each is POSTed from memory first (spool_held.c) and written into
        # new/ when the endpoint says 503
        wait_for(lambda: sorted(f[:-4] for f in spool_new(sv)) == sorted(sent), TIMEOUT,
                 "every message in new/ after its first 503")
        sv.stop(signal.SIGKILL)
        spool = spool_dir(sv)
        recs = journal_records(os.path.join(spool, "journal"))
        adds = [m["id"] for m, _, _, _ in recs if m["op"] == "add"]
        true(len(adds) >= 3, "messages still in the journal when killed: %d" % len(adds))
        true(set(adds) <= set(sent), "the journal's adds are messages of this run")
        for m, body, _, _ in recs:
            if m["op"] == "add":
                eq(m["env"]["id"], m["id"], "the record's envelope is its message's")
                with open(os.path.join(spool, "new", m["id"] + ".eml"), "rb") as f:
                    eq(f.read(), body, "the journal holds the message as spooled")
        eq(sorted(f[:-4] for f in os.listdir(os.path.join(spool, "new")) if f.endswith(".eml")),
           sorted(sent), "every message accepted is in new/ (the endpoint said 503)")
        # the lost writeback
        os.unlink(os.path.join(spool, "new", adds[0] + ".eml"))
        os.unlink(os.path.join(spool, "new", adds[0] + ".env"))
        open(os.path.join(spool, "new", adds[1] + ".eml"), "wb").close()
        os.unlink(os.path.join(spool, "new", adds[2] + ".eml"))
        before = len(ep.requests())
        ep.control(default={"status": 200})
        with http_serve(ep, workers=2, state_dir=sv.state_dir) as sv2:
            spool_emptied(ep, lambda: spool_new(sv2), sv2.proc, "the spool after the restart",
                          TIMEOUT)
            eq(len(os.listdir(os.path.join(spool, "journal"))), 1,
               "the journal holds only its fresh file")
            contains(sv2.log(), "written again from the journal", "the log says what was redone")
        reqs = ep.requests()
    got = posts_by_id(reqs)
    eq(sorted(got), sorted(sent), "every message answered 250 reached the endpoint")
    eq(sorted(k for k, v in got.items() if len(v) != 1), [], "messages POSTed more than once")
    check_payloads(got, sent)
    sys.stdout.write("# %d accepted, %d in the journal when killed (3 put back), %d POSTs "
                     "answered 503 before, %d POSTs in all\n"
                     % (len(sent), len(adds), before, len(reqs)))


def test_serve_kill9_while_held_in_memory_replays_from_the_journal():
    """A small message is POSTed from memory before anything of it is in
    new/ (spool_held.c): until that POST delivers it, its journal record is
    its one durable copy. The endpoint never answers, so every message is
    still held (two in a POST, the rest queued) when serve is killed; the
    restart puts each back from the journal and POSTs it, as it was sent."""
    with HttpEndpoint(default={"delay": 10 * TIMEOUT}) as ep:
        sv = http_serve(ep, workers=2)
        sent = send_numbered(sv, 6, "held")
        ep.wait(2, what="the first two POSTs (never answered)")
        eq(spool_new(sv), [], "nothing in new/ while held")
        sv.stop(signal.SIGKILL)
        spool = spool_dir(sv)
        recs = journal_records(os.path.join(spool, "journal"))
        adds = {m["id"]: body for m, body, _, _ in recs if m["op"] == "add"}
        eq(sorted(adds), sorted(sent), "each message held is in the journal")
        before = len(ep.requests())
        ep.control(default={"status": 200})
        with http_serve(ep, workers=2, state_dir=sv.state_dir) as sv2:
            spool_emptied(ep, lambda: spool_new(sv2), sv2.proc, "the spool after the restart",
                          TIMEOUT)
            wait_for(lambda: len(ep.requests()) >= before + len(sent), TIMEOUT,
                     "a POST of each after the restart")
        reqs = ep.requests()[before:]
    got = posts_by_id(reqs)
    eq(sorted(got), sorted(sent), "every message answered 250 reached the endpoint")
    eq(sorted(k for k, v in got.items() if len(v) != 1), [], "POSTed more than once")
    check_payloads(got, sent)


def wait_done_records(sv, ids):
    """Until the journal holds a "done" record for each of ids. The
    endpoint logs a POST before serve's worker hears the 2xx and appends
    "done", so a kill right after the endpoint saw every POST can come
    before a record the test means to find (seen under ASan, and once in
    a plain build)."""
    jdir = os.path.join(spool_dir(sv), "journal")
    wait_for(lambda: set(ids) <= {m["id"] for m, _, _, _ in journal_records(jdir)
                                  if m["op"] == "done"},
             TIMEOUT, "a done record for each delivered message", sv.proc, interval=0.005)


def test_serve_delivered_is_not_posted_again_after_a_stop_or_a_kill():
    """A message POSTed (2xx) is journaled as done: after a SIGTERM (the
    journal checkpointed and emptied) and after a SIGKILL within the first
    second (its "add" and "done" still in the journal, the add replayed,
    then undone), the restart POSTs nothing again. With the spool's
    recycling of its files lost by hand (new/<id>.eml and .env back as
    they were), the "done" record still takes it out."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with HttpEndpoint() as ep:
            sv = http_serve(ep, workers=2)
            sent = send_numbered(sv, 3, "delivered")
            ep.wait(3)
            spool_emptied(ep, lambda: spool_new(sv), sv.proc, "the spool", TIMEOUT)
            spool = spool_dir(sv)
            if sig == signal.SIGKILL:
                wait_done_records(sv, sent)
            eq(sv.stop(sig), 0 if sig == signal.SIGTERM else -signal.SIGKILL, "exit status")
            recs = journal_records(os.path.join(spool, "journal"))
            if sig == signal.SIGTERM:
                eq(recs, [], "a stop checkpoints the journal")
            else:
                done = {m["id"] for m, _, _, _ in recs if m["op"] == "done"}
                both = [m["id"] for m, _, _, _ in recs if m["op"] == "add" and m["id"] in done]
                true(both, "a delivered message's add and done still in the journal")
                m, body = next((m, b) for m, b, _, _ in recs if m["id"] == both[0])
                with open(os.path.join(spool, "new", both[0] + ".eml"), "wb") as f:
                    f.write(body)
                with open(os.path.join(spool, "new", both[0] + ".env"), "w") as f:
                    json.dump(m["env"], f)
            with http_serve(ep, workers=2, state_dir=sv.state_dir) as sv2:
                time.sleep(0.5)  # a POST of the rescan would come within ms
                eq(spool_new(sv2), [], "nothing in new/ after the restart")
            got = posts_by_id(ep.requests())
        eq(sorted(got), sorted(sent), "delivered (%s)" % sig.name)
        eq(sorted(k for k, v in got.items() if len(v) != 1), [],
           "POSTed again after %s" % sig.name)
        check_payloads(got, sent)


def test_serve_a_lost_done_record_means_one_more_post_with_the_same_key():
    """At-least-once, as documented: a delivered message's "done" record
    is not waited for, so a crash can lose it (done here by cutting the
    journal file at that record, as a torn write would). The restart then
    puts the message back from its "add" and POSTs it again, with the same
    Idempotency-Key for the endpoint to drop."""
    with HttpEndpoint() as ep:
        sv = http_serve(ep, workers=1)
        # one message: a cut at its done record takes no other record
        sent = send_numbered(sv, 1, "at-least-once")
        ep.wait(1)
        spool_emptied(ep, lambda: spool_new(sv), sv.proc, "the spool", TIMEOUT)
        wait_done_records(sv, sent)
        sv.stop(signal.SIGKILL)
        recs = journal_records(os.path.join(spool_dir(sv), "journal"))
        adds = {m["id"] for m, _, _, _ in recs if m["op"] == "add"}
        cut = next(((m["id"], path, off) for m, _, path, off in recs
                    if m["op"] == "done" and m["id"] in adds), None)
        true(cut, "a delivered message's add and done still in the journal")
        lost, path, off = cut
        with open(path, "r+b") as f:
            f.truncate(off + 20)  # the record torn: replay stops before it
        with http_serve(ep, workers=1, state_dir=sv.state_dir) as sv2:
            ep.wait(2, what="the message whose done was lost, POSTed again")
            spool_emptied(ep, lambda: spool_new(sv2), sv2.proc, "the spool after the restart",
                          TIMEOUT)
        got = posts_by_id(ep.requests())
    eq(sorted(got), sorted(sent), "delivered")
    eq(sorted(k for k, v in got.items() if len(v) > 1), [lost],
       "POSTed again: only the message whose done was lost")
    eq(got[lost][0], got[lost][1], "the same payload, id and key both times")
    check_payloads(got, sent)


run(globals())
