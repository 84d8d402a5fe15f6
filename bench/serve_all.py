#!/usr/bin/python3
"""Issue 9's benchmark, side by side in one run (bench/serve_all.sh runs it).

Rounds of, alternating: `smtp-source -s S -m N -l L` against Postfix
smtp-sink (it discards: the ceiling), against `serve --maildir` (fsync on:
the default), and against `serve` with the http sink in spool mode POSTing
to bench/http_count (a libevent endpoint on the same machine). Per mode:
msgs/s, % of the same round's smtp-sink rate, serve's CPU per message and
peak RSS, and for spool mode how long after the last 250 the endpoint had
the last message. Then serve's RSS with 100 concurrent sessions held
mid-DATA and around one 100 MiB message, for both sinks. Prints Markdown.

Every serve gets fresh directories, and nothing is removed until the end:
on ext4 without a journal (this VM) creating a file scans the inodes of
its block group deleted in the last minute or more (recently_deleted() in
perf), so removing one round's 20,000 files would slow the next round's
creations; that would measure the benchmark, not serve (serve_all.sh also
puts the runs in block groups of their own, chattr +T).

--connector may be given twice (A/B): each serve mode then runs once per
binary in every round, labelled by --label.
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_lib import cpu_seconds, smtp_source, status_field, wait_port  # noqa: E402


def post_log(path):
    """{Idempotency-Key: first POST time} from bench/http_count's log."""
    out = {}
    with open(path) as f:
        for line in f:
            if line.endswith("\n"):
                key, t = line.split()
                out.setdefault(key, float(t))
    return out


class Serve:
    """One `serve` process with its own fresh directories under `work`."""

    def __init__(self, connector, work, delivery, limits=None):
        self.dir = work
        os.makedirs(work)
        cfg = {"listen": [{"host": "127.0.0.1", "port": 0}],
               "limits": dict({"connections": 500}, **(limits or {})), "delivery": delivery}
        path = os.path.join(work, "serve.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        self.log = os.path.join(work, "serve.log")
        with open(self.log, "w") as lf:
            # a build tree's plugins are in plugins/ beside the binary
            plugins = os.path.join(os.path.dirname(connector), "plugins")
            extra = ["--plugin-dir", plugins] if os.path.isdir(plugins) else []
            self.proc = subprocess.Popen(
                [connector, "serve", "--config", path, "--state-dir",
                 os.path.join(work, "state")] + extra, stdout=lf, stderr=lf,
                stdin=subprocess.DEVNULL)
        self.port = wait_port(self.log, self.proc)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(60)
        if rc != 0:
            sys.exit("serve exited %d: %s" % (rc, open(self.log).read()[-2000:]))


def measured(run, n):
    """What every mode's row takes from its smtp-source run."""
    return {"rate": n / run.wall, "wall": run.wall, "steal": run.steal,
            "loop_wait_us": run.wait_us}


def settle():
    """Write back what the last run left dirty before the next one starts:
    without it, a run after `fsync: false` paid for that run's writeback
    (the kernel's flusher, 30 s later, on the same two CPUs)."""
    os.sync()
    time.sleep(0.5)


def run_maildir(connector, work, a, settings=None, limits=None):
    settle()
    md = os.path.join(work, "md")
    sv = Serve(connector, work, dict({"plugin": "maildir", "dir": md}, **(settings or {})), limits)
    try:
        run = smtp_source(sv.port, a.messages, a.sessions, a.size, sv.proc.pid)
        cpu, hwm = cpu_seconds(sv.proc.pid), status_field(sv.proc.pid, "VmHWM")
    finally:
        sv.stop()
    stored = len(os.listdir(os.path.join(md, "new")))
    if stored != a.messages:
        sys.exit("maildir: %d of %d messages in new/" % (stored, a.messages))
    return dict(measured(run, a.messages), cpu_us=cpu / a.messages * 1e6, hwm=hwm)


def run_http(connector, work, a, limits=None):
    settle()
    os.makedirs(work)
    record = os.path.join(work, "requests.log")
    ep = subprocess.Popen([a.http_count, record], stdout=subprocess.PIPE,
                          stdin=subprocess.DEVNULL)
    try:
        ep_port = int(ep.stdout.readline())
        sv = Serve(connector, os.path.join(work, "serve"),
                   {"plugin": "http", "url": "http://127.0.0.1:%d/bench" % ep_port}, limits)
        try:
            run = smtp_source(sv.port, a.messages, a.sessions, a.size, sv.proc.pid)
            deadline = time.monotonic() + 600
            posts = post_log(record)
            while len(posts) < a.messages and time.monotonic() < deadline:
                time.sleep(0.05)
                posts = post_log(record)
            cpu, hwm = cpu_seconds(sv.proc.pid), status_field(sv.proc.pid, "VmHWM")
            ep_cpu = cpu_seconds(ep.pid)
        finally:
            sv.stop()
    finally:
        ep.terminate()
        ep.wait(10)
    if len(posts) < a.messages:
        sys.exit("http: the endpoint got %d of %d messages" % (len(posts), a.messages))
    return dict(measured(run, a.messages), cpu_us=cpu / a.messages * 1e6, hwm=hwm,
                last_post=max(posts.values()) - run.end, ep_cpu_us=ep_cpu / a.messages * 1e6)


RSS_CLIENT = r'''
import smtplib, sys, time
port, pid = int(sys.argv[1]), sys.argv[2]
def rss():
    for line in open("/proc/%s/status" % pid):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
conns = []
for i in range(100):
    s = smtplib.SMTP("127.0.0.1", port, timeout=60)
    s.ehlo("c%d" % i)
    s.mail("m%d@example.com" % i)
    s.rcpt("r@example.com")
    s.putcmd("data")
    s.getreply()
    s.send(b"Subject: held open\r\n\r\n" + (b"x" * 998 + b"\r\n") * 100)
    conns.append(s)
time.sleep(0.5)
r100 = rss()
for s in conns:
    s.send(b".\r\n")
    code = s.getreply()[0]
    assert code == 250, code
    s.quit()
before = rss()
line = b"y" * 998 + b"\r\n"
body = b"Subject: 100 MiB\r\n\r\n" + line * (100 * 1024 * 1024 // len(line))
s = smtplib.SMTP("127.0.0.1", port, timeout=300)
s.sendmail("big@example.com", ["r@example.com"], body)
s.quit()
print("%.1f %.1f %.1f" % (r100, before, rss()))
'''


def run_rss(connector, work, delivery, a):
    sv = Serve(connector, work, delivery, {"message_size": 209715200})
    try:
        idle = status_field(sv.proc.pid, "VmRSS")
        p = subprocess.run([sys.executable, "-c", RSS_CLIENT, str(sv.port), str(sv.proc.pid)],
                           capture_output=True, text=True)
        if p.returncode:
            sys.exit("the RSS client failed: " + p.stderr[-2000:])
        out = p.stdout.split()
        hwm = status_field(sv.proc.pid, "VmHWM")
    finally:
        sv.stop()
    r100, before, after = map(float, out)
    return {"idle": idle, "r100": r100, "before_big": before, "after_big": after, "hwm": hwm}


# --what-if: the same load against settings that each remove one cost
WHAT_IF_MAILDIR = (
    ("maildir-nofsync", {"fsync": False}, None),
    ("maildir-noindex", {"index": False}, None),
    ("maildir-w4", None, {"delivery_workers": 4}),
)
WHAT_IF_NAMES = {
    "maildir-nofsync": "what if: maildir, `fsync: false` (no flush at all)",
    "maildir-noindex": "what if: maildir, `index: false`",
    "maildir-w4": "what if: maildir, `delivery_workers: 4` (the default before)",
    "http-w4": "what if: spool mode, `delivery_workers: 4` (the default before)",
}


# a round whose runs all had at most this share of CPU time stolen is
# "quiet": its ratios are the machine's own, not its neighbours'
QUIET_STEAL = 5


def waits(xs):
    """The median of the runs' loop waits, or "-" without schedstat."""
    w = [x["loop_wait_us"] for x in xs if x["loop_wait_us"] is not None]
    return "%.0f us" % statistics.median(w) if w else "-"


def stolen(rnd):
    """The most CPU time stolen during one run of a round, in %."""
    return max(v["steal"] for v in rnd.values())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connector", action="append", required=True)
    ap.add_argument("--label", action="append")
    ap.add_argument("--sink-port", type=int, required=True)
    ap.add_argument("--sink-pid", type=int, help="smtp-sink's, for its wait for a CPU")
    ap.add_argument("--http-count", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--size", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-rss", action="store_true")
    ap.add_argument("--what-if", action="store_true",
                    help="also, each round: maildir without fsync, without the index, "
                         "and both sinks with 4 delivery workers (where the time goes)")
    a = ap.parse_args()
    labels = a.label or [os.path.basename(c) for c in a.connector]
    builds = list(zip(labels, a.connector))
    load0 = os.getloadavg()
    t_start = time.monotonic()
    rounds = []
    for r in range(a.rounds):
        res = {}
        settle()
        res["smtp-sink"] = measured(smtp_source(a.sink_port, a.messages, a.sessions, a.size,
                                                a.sink_pid), a.messages)
        for label, conn in builds:
            w = os.path.join(a.work, "r%d-%s" % (r, label))
            res[("maildir", label)] = run_maildir(conn, w + "-maildir", a)
            res[("http", label)] = run_http(conn, w + "-http", a)
            if a.what_if:
                for key, settings, limits in WHAT_IF_MAILDIR:
                    res[(key, label)] = run_maildir(conn, w + "-" + key, a, settings, limits)
                res[("http-w4", label)] = run_http(conn, w + "-http-w4", a,
                                                   {"delivery_workers": 4})
        rounds.append(res)
        print("round %d: %s" % (r + 1, ", ".join(
            "%s %.0f" % (k if isinstance(k, str) else "/".join(k), v["rate"])
            for k, v in res.items())), file=sys.stderr)
    rss = {}
    if not a.no_rss:
        label, conn = builds[-1]
        rss["maildir"] = run_rss(conn, os.path.join(a.work, "rss-maildir"),
                                 {"plugin": "maildir", "dir": os.path.join(a.work, "rss-md")}, a)
        ep = subprocess.Popen([a.http_count, os.path.join(a.work, "rss-requests.log")],
                              stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            port = int(ep.stdout.readline())
            rss["http"] = run_rss(conn, os.path.join(a.work, "rss-http"),
                                  {"plugin": "http", "url": "http://127.0.0.1:%d/b" % port}, a)
        finally:
            ep.terminate()
            ep.wait(10)
    load1 = os.getloadavg()

    med = statistics.median
    sink = [x["smtp-sink"]["rate"] for x in rounds]
    print("## serve side by side (bench/serve_all.sh)\n")
    print("- Date: %s; %d CPUs; load average (1/5/15 min) at start %s, at end %s; %.0f s"
          % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.cpu_count(),
             "/".join("%.2f" % x for x in load0), "/".join("%.2f" % x for x in load1),
             time.monotonic() - t_start))
    print("- Load: `smtp-source -s %d -m %d -l %d` (one message per connection); %d rounds, "
          "each mode once per round, alternating; medians below, every round after them"
          % (a.sessions, a.messages, a.size, a.rounds))
    print("- serve: default settings (fsync on; %s); spool mode POSTs to bench/http_count.c "
          "on the same machine" % "delivery_workers as the build's default")
    print("- CPU stolen: the share of the machine's CPU time the hypervisor took during a run "
          "(steal, /proc/stat), median of the runs")
    print("- loop's wait for a CPU: how long serve's event loop thread (smtp-sink: its one "
          "process) was runnable but not running, per message (/proc/PID/task/PID/schedstat), "
          "median of the runs\n")
    print("| mode | msgs/s | % of smtp-sink | serve CPU per message | serve peak RSS | "
          "last POST after the last 250 | CPU stolen | loop's wait for a CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print("| Postfix smtp-sink (discards: the ceiling) | %.0f | 100 %% | - | - | - | %.0f %% | %s |"
          % (med(sink), med([x["smtp-sink"]["steal"] for x in rounds]),
             waits([x["smtp-sink"] for x in rounds])))
    def row(key, name, bold):
        for label, _ in builds:
            xs = [x[(key, label)] for x in rounds]
            pct = med([x[(key, label)]["rate"] / x["smtp-sink"]["rate"] * 100 for x in rounds])
            lp = ("%.2f s (max %.2f)" % (med([x["last_post"] for x in xs]),
                                         max(x["last_post"] for x in xs))
                  if key == "http" else "-")
            print("| %s%s | %.0f | %s | %.0f us | %.1f MiB | %s | %.0f %% | %s |"
                  % (name, " (%s)" % label if len(builds) > 1 else "",
                     med([x["rate"] for x in xs]), ("**%.0f %%**" if bold else "%.0f %%") % pct,
                     med([x["cpu_us"] for x in xs]), max(x["hwm"] for x in xs), lp,
                     med([x["steal"] for x in xs]), waits(xs)))

    row("maildir", "serve --maildir", True)
    row("http", "serve --url, spool mode", True)
    if a.what_if:
        for key, name in WHAT_IF_NAMES.items():
            row(key, name, False)
    print("\nEvery round (msgs/s; % of that round's smtp-sink; the most CPU time the "
          "hypervisor stole during one of the round's runs, from /proc/stat):\n")
    print("| round | " + " | ".join(
        ["smtp-sink"] + ["%s%s" % (m, " " + l if len(builds) > 1 else "")
                         for m in ("maildir", "http") for l, _ in builds]) + " | stolen |")
    print("|---|" + "---:|" * (2 + 2 * len(builds)))
    for i, x in enumerate(rounds):
        s = x["smtp-sink"]["rate"]
        cells = ["%.0f" % s] + ["%.0f (%.0f %%)" % (x[(m, l)]["rate"], 100 * x[(m, l)]["rate"] / s)
                                for m in ("maildir", "http") for l, _ in builds]
        print("| %d | %s | %.0f %% |" % (i + 1, " | ".join(cells), stolen(x)))
    quiet = [x for x in rounds if stolen(x) <= QUIET_STEAL]
    if not quiet:
        print("\nNo round was quiet (every one had a run with more than %d %% of its CPU time "
              "stolen): the ratios above are the machine's state as much as serve's."
              % QUIET_STEAL)
    elif len(quiet) < len(rounds):
        print("\nMedians of the %d rounds in which no run had more than %d %% of its CPU time "
              "stolen: %s." % (len(quiet), QUIET_STEAL, "; ".join(
                  "%s%s %.0f %%" % (m, " " + l if len(builds) > 1 else "",
                                    med([100 * x[(m, l)]["rate"] / x["smtp-sink"]["rate"]
                                         for x in quiet]))
                  for m in ("maildir", "http") for l, _ in builds)))
    if rss:
        print("\nserve's RSS (VmRSS)%s: idle; with 100 sessions held open mid-DATA (100 kB "
              "sent by each); before and after one 100 MiB message; the peak (VmHWM) over it all."
              % (" (%s)" % builds[-1][0] if len(builds) > 1 else ""))
        print("\n| sink | idle | 100 concurrent sessions | before / after 100 MiB | peak |")
        print("|---|---:|---:|---:|---:|")
        for mode in ("maildir", "http"):
            x = rss[mode]
            print("| %s | %.1f MiB | %.1f MiB | %.1f / %.1f MiB | %.1f MiB |"
                  % (mode, x["idle"], x["r100"], x["before_big"], x["after_big"], x["hwm"]))


if __name__ == "__main__":
    main()
