#!/usr/bin/python3
"""Issue 11's measurement: the cost of an action against a server D ms
away (bench/latency_proxy.py in front of aiosmtpd with STARTTLS + AUTH),
in wall time and in round trips (server replies waited on), side by side:

  1. one send email per process, StartTLS + AUTH PLAIN: the connector vs
     curl --ssl-reqd --user ... -T msg vs Python smtplib doing what the
     SOAR app does (EHLO, STARTTLS, EHLO, login, sendmail, no QUIT);
  2. test connectivity, Passwordless and Basic, vs curl (NOOP) and smtplib;
  3. a batch: --batch mails (1,000) as JSON Lines with max_connections 1, 4
     and 8 vs Postfix smtp-source -d -s 1 and -s 8, all through the relay in
     front of smtp-sink (ssl_config None, Passwordless), printing msgs/s,
     round trips and peak RSS (/usr/bin/time -f %M); then the same
     connector runs on loopback without the relay (--loopback-batch mails,
     10,000), with --baseline BIN beside it when given (an older build, for
     "the one-session rate is not lower than before"; it also gets a row in
     scenario 1).

usage: latency.py --connector BIN [--delay-ms 25] [--runs 10] [--scenarios 1,2,3]
                  [--batch 1000] [--loopback-batch 10000] [--baseline BIN]
Prints a Markdown table; with --results FILE appends it there. Not a test:
nothing is asserted. Servers bind 127.0.0.1 only and are stopped at exit."""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness  # noqa: E402

USER, PASSWORD = "bench@corp.example", "bench-pass-1"
SENDER, RCPT = "soc@corp.example", "ir@corp.example"

SMTPLIB_SEND = r'''
import smtplib, ssl, sys
from email.mime.text import MIMEText
host, port, ca, user, pw, sender, rcpt, mode = sys.argv[1:9]
s = smtplib.SMTP(host, int(port))
s.ehlo()
s.starttls(context=ssl.create_default_context(cafile=ca))
s.ehlo()
if user:
    s.login(user, pw)
if mode == "send":
    m = MIMEText("latency bench body\n", "plain", "utf-8")
    m["Subject"], m["From"], m["To"] = "latency", sender, rcpt
    s.sendmail(sender, [rcpt], m.as_string())
else:
    s.noop()
    s.quit()
'''


class Proxy:
    def __init__(self, target, delay_ms, workdir):
        self.stats = os.path.join(workdir, "proxy-stats.json")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "latency_proxy.py"), "--target", str(target),
             "--delay-ms", str(delay_ms), "--stats", self.stats, "--max-seconds", "1800"],
            stdout=subprocess.PIPE)
        self.port = json.loads(self.proc.stdout.readline())["port"]

    seq = 0

    def turns(self):
        """The relay's turn count, asked for with SIGUSR1 (bounded wait)."""
        self.proc.send_signal(signal.SIGUSR1)
        for _ in range(1000):  # 10 s: the machine may be busy
            try:
                with open(self.stats) as f:
                    st = json.load(f)
                if st["seq"] > self.seq:
                    self.seq = st["seq"]
                    return st["turns"]
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.01)
        raise RuntimeError("latency_proxy.py did not report its counts")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def run_timed(argv, stdin=None, env=None):
    t = time.monotonic()
    r = subprocess.run(argv, input=stdin, capture_output=True, env=env, timeout=120)
    return time.monotonic() - t, r


def measure(proxy, argv, runs, stdin=None, env=None):
    times, turns, failures = [], [], 0
    for _ in range(runs):
        before = proxy.turns()
        time.sleep(0.05)
        dt, r = run_timed(argv, stdin, env)
        time.sleep(0.1 + 2 * proxy_delay / 1000.0)  # let the relay flush and count
        after = proxy.turns()
        if r.returncode != 0:
            failures += 1
            sys.stderr.write("failed: %s\n%s\n" % (argv[0], r.stdout.decode()[-500:] + r.stderr.decode()[-500:]))
        times.append(dt)
        turns.append(after - before)
    return statistics.median(times), statistics.median(turns), failures


proxy_delay = 25.0


def batch_input(port, n, conns):
    asset = {"server": "127.0.0.1", "port": port, "ssl_config": "None", "max_connections": conns}
    line = lambda i: json.dumps({"action": "send email", "asset": asset,  # noqa: E731
                                 "parameters": {"from": SENDER, "to": RCPT,
                                                "subject": "batch %d" % i,
                                                "body": "latency batch body %d" % i}})
    return "".join(line(i) + "\n" for i in range(n)).encode()


def timed_rss(argv, stdin, env, work):
    """Wall time, peak RSS (KiB, /usr/bin/time -f %M) and the run's result."""
    out = os.path.join(work, "rss.txt")
    t = time.monotonic()
    r = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out] + argv, input=stdin,
                       capture_output=True, env=env, timeout=1800)
    dt = time.monotonic() - t
    with open(out) as f:
        rss = int(f.read().split()[-1])
    return dt, rss, r


def batch_ok(r, n, connector):
    if r.returncode != 0:
        return False
    if not connector:
        return True
    lines = [json.loads(x) for x in r.stdout.decode().splitlines() if x.strip()]
    return len(lines) == n and all(x["status"] == "success" for x in lines)


def scenario3(a, env, work):
    rows = []
    with harness.SmtpSink(dump=False) as sink:
        proxy = Proxy(sink.port, a.delay_ms, work)
        try:
            cases = [("connector, max_connections %d" % c, [a.connector],
                      batch_input(proxy.port, a.batch, c), True) for c in (1, 4, 8)]
            cases += [("smtp-source -d -s %d -m %d" % (c, a.batch),
                       ["smtp-source", "-d", "-s", str(c), "-m", str(a.batch), "-f", SENDER,
                        "-t", RCPT, "127.0.0.1:%d" % proxy.port], None, False) for c in (1, 8)]
            for label, argv, stdin, conn in cases:
                before = proxy.turns()
                dt, rss, r = timed_rss(argv, stdin, env, work)
                time.sleep(0.2 + 2 * proxy_delay / 1000.0)
                turns = proxy.turns() - before
                ok = batch_ok(r, a.batch, conn)
                if not ok:
                    sys.stderr.write("failed: %s\n%s\n" % (label, r.stderr.decode()[-800:]))
                rows.append(("3", label, a.batch, dt, turns, rss, ok))
                sys.stderr.write("%-44s %8.2f s %7.1f msgs/s %6d round trips %6.1f MiB\n"
                                 % (label, dt, a.batch / dt, turns, rss / 1024.0))
        finally:
            proxy.stop()
        bins = [("connector", a.connector)] + ([("baseline", a.baseline)] if a.baseline else [])
        for name, binary in bins:
            for c in ((1, 8) if name == "connector" else (1,)):
                label = "loopback, no relay: %s, max_connections %d" % (name, c)
                stdin = batch_input(sink.port, a.loopback_batch, c)
                if name == "baseline":  # an older build refuses the new key
                    stdin = stdin.replace(b', "max_connections": 1', b"")
                dt, rss, r = timed_rss([binary], stdin, env, work)
                ok = batch_ok(r, a.loopback_batch, True)
                rows.append(("3", label, a.loopback_batch, dt, None, rss, ok))
                sys.stderr.write("%-44s %8.2f s %7.1f msgs/s %6.1f MiB\n"
                                 % (label, dt, a.loopback_batch / dt, rss / 1024.0))
        label = "loopback, no relay: smtp-source -d -s 1 -m %d" % a.loopback_batch
        dt, rss, r = timed_rss(["smtp-source", "-d", "-s", "1", "-m", str(a.loopback_batch),
                                "-f", SENDER, "-t", RCPT, "127.0.0.1:%d" % sink.port],
                               None, env, work)
        rows.append(("3", label, a.loopback_batch, dt, None, rss, r.returncode == 0))
    return rows


def main():
    global proxy_delay
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--connector", required=True)
    ap.add_argument("--delay-ms", type=float, default=25.0)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--results")
    ap.add_argument("--scenarios", default="1,2,3")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--loopback-batch", type=int, default=10000)
    ap.add_argument("--baseline", help="an older connector, beside the connector in scenario 1 "
                    "and in the loopback one-session row")
    a = ap.parse_args()
    wanted = set(a.scenarios.split(","))
    proxy_delay = a.delay_ms
    work = tempfile.mkdtemp(prefix="smtpc-latency-")
    ca = harness.make_ca(work, "latency")
    msg = os.path.join(work, "msg.eml")
    with open(msg, "w") as f:
        f.write("From: %s\r\nTo: %s\r\nSubject: latency\r\n\r\nlatency bench body\r\n" % (SENDER, RCPT))
    env = dict(os.environ, SMTP_CONNECTOR_STATE_DIR=os.path.join(work, "state"))
    rows = []
    with harness.Aiosmtpd(starttls=ca, auth={USER: PASSWORD}) as srv:
        proxy = Proxy(srv.port, a.delay_ms, work)
        try:
            def req(action, **kw):
                asset = dict({"server": "127.0.0.1", "port": proxy.port, "ssl_config": "StartTLS",
                              "ca_file": ca.ca_cert}, **kw)
                r = {"action": action, "asset": asset}
                if action == "send email":
                    r["parameters"] = [{"from": SENDER, "to": RCPT, "subject": "latency",
                                        "body": "latency bench body"}]
                return json.dumps(r).encode()
            url = "smtp://127.0.0.1:%d" % proxy.port
            py = "/usr/bin/python3"
            cases = [
                ("1", "send email, StartTLS + AUTH PLAIN: connector", [a.connector],
                 req("send email", username=USER, password=PASSWORD)),
                ("1", "curl --ssl-reqd --user -T msg", ["curl", "-sS", url, "--ssl-reqd", "--cacert",
                                                        ca.ca_cert, "--user", "%s:%s" % (USER, PASSWORD),
                                                        "--mail-from", SENDER, "--mail-rcpt", RCPT,
                                                        "-T", msg], None),
                ("1", "Python smtplib as the SOAR app", [py, "-c", SMTPLIB_SEND, "127.0.0.1",
                                                        str(proxy.port), ca.ca_cert, USER, PASSWORD,
                                                        SENDER, RCPT, "send"], None),
                ("2", "test connectivity, Passwordless: connector", [a.connector],
                 req("test connectivity")),
                ("2", "test connectivity, Basic: connector", [a.connector],
                 req("test connectivity", username=USER, password=PASSWORD)),
                ("2", "curl --ssl-reqd --user -X NOOP", ["curl", "-sS", url, "--ssl-reqd", "--cacert",
                                                         ca.ca_cert, "--user", "%s:%s" % (USER, PASSWORD),
                                                         "-X", "NOOP"], None),
                ("2", "Python smtplib: login + NOOP + QUIT", [py, "-c", SMTPLIB_SEND, "127.0.0.1",
                                                            str(proxy.port), ca.ca_cert, USER, PASSWORD,
                                                            SENDER, RCPT, "noop"], None),
            ]
            if a.baseline:
                cases.insert(1, ("1", "send email, StartTLS + AUTH PLAIN: baseline build",
                                 [a.baseline], req("send email", username=USER, password=PASSWORD)))
            for scen, label, argv, stdin in [c for c in cases if c[0] in wanted]:
                med, turns, fails = measure(proxy, argv, a.runs, stdin, env)
                rows.append((scen, label, med, turns, fails))
                sys.stderr.write("%-50s %7.1f ms  %s round trips\n" % (label, med * 1e3, turns))
        finally:
            proxy.stop()
    batch = scenario3(a, env, work) if "3" in wanted else []
    out = []
    if rows:
        out += ["", "### Against a server %.0f ms away (%.0f ms round trip), median of %d runs"
                % (a.delay_ms, 2 * a.delay_ms, a.runs), "",
                "| scenario | command | wall ms | round trips | failed runs |",
                "|---|---|---:|---:|---:|"]
    for scen, label, med, turns, fails in rows:
        out.append("| %s | %s | %.1f | %s | %d |" % (scen, label, med * 1e3, turns, fails))
    if batch:
        out += ["", "### Scenario 3: a batch, through the relay (%.0f ms each way) to smtp-sink, "
                "then on loopback; one run each" % a.delay_ms, "",
                "| command | mails | wall s | msgs/s | round trips | per mail | peak RSS MiB | ok |",
                "|---|---:|---:|---:|---:|---:|---:|---|"]
        for _, label, n, dt, turns, rss, ok in batch:
            out.append("| %s | %d | %.2f | %.1f | %s | %s | %.1f | %s |" % (
                label, n, dt, n / dt, "" if turns is None else turns,
                "" if turns is None else "%.2f" % (turns / n), rss / 1024.0,
                "yes" if ok else "**no**"))
    text = "\n".join(out) + "\n"
    print(text)
    if a.results:
        with open(a.results, "a") as f:
            f.write(text)


if __name__ == "__main__":
    main()
