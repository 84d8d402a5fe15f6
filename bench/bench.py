#!/usr/bin/python3
"""smtp-connector benchmark (issue 3, "Tests and benchmark"). Run through
bench/run.sh, which starts smtp-sink and stops it at the end; see README.md.

Measures, side by side in one run, on loopback:
  (a) one `send email` per process vs the curl CLI vs a Python smtplib
      script doing what the SOAR app does           target: connector <= 1.2x curl
  (b) N mails as JSON Lines in one process vs smtp-source -d (one session)
                                                    target: >= 70 % of smtp-source's rate
  (c) a 200 MB vault attachment (non-SHA-1 id, SHA-1 id) vs curl uploading
      the same message pre-encoded                  target: peak RSS < 16 MiB
  (d) start-up cost breakdown, and one StartTLS send to aiosmtpd with a
      generated CA (CA loading: hashed directory vs bundle file)

Every process is timed from fork to exit by this script (time.perf_counter
around subprocess.Popen/wait); the commands of a group run interleaved,
round robin, so that drift and noise on a shared VM hit all of them alike.
Peak RSS comes from /usr/bin/time -v.
"""

import argparse
import atexit
import base64
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

PYTHON = "/usr/bin/python3"
TIME = "/usr/bin/time"
SMTP_SOURCE = "/usr/sbin/smtp-source"
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
SYSTEM_CA_DIR = "/etc/ssl/certs"
SENDER = "bench@example.com"
RCPT = "rcpt@example.com"

# A ~1 KB plain-text body (14 lines of 72 characters + line ends).
BODY = "".join("Line %02d of the benchmark message: the quick brown fox jumps over it.\n" % i
               for i in range(14))

T0 = time.monotonic()


def log(msg):
    sys.stderr.write("[bench %6.1fs] %s\n" % (time.monotonic() - T0, msg))
    sys.stderr.flush()


class BenchError(Exception):
    pass


# --------------------------------------------------------------------------
# running and timing processes

class Cmd:
    def __init__(self, key, label, argv, stdin=None, expect_rc=0, env=None, stdout=None):
        self.key, self.label, self.argv = key, label, list(argv)
        self.stdin, self.expect_rc, self.env, self.stdout = stdin, expect_rc, env, stdout


def run_once(cmd, env, want_cpu=False):
    """Wall seconds of one run of cmd, from fork to reaped exit (and, with
    want_cpu, (wall, user+sys CPU seconds of the process and its children))."""
    fin = open(cmd.stdin, "rb") if cmd.stdin else subprocess.DEVNULL
    fout = open(cmd.stdout, "wb") if cmd.stdout else subprocess.DEVNULL
    ferr = tempfile.TemporaryFile()
    try:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd.argv, stdin=fin, stdout=fout, stderr=ferr,
                             env=cmd.env or env)
        _, status, ru = os.wait4(p.pid, 0)
        dt = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != cmd.expect_rc:
            ferr.seek(0)
            raise BenchError("%s: exit status %s (expected %s): %s\n  stderr: %s"
                             % (cmd.label, p.returncode, cmd.expect_rc, " ".join(cmd.argv),
                                ferr.read().decode("utf-8", "replace")[-1500:]))
    finally:
        ferr.close()
        if fin is not subprocess.DEVNULL:
            fin.close()
        if fout is not subprocess.DEVNULL:
            fout.close()
    if want_cpu:
        return dt, ru.ru_utime + ru.ru_stime
    return dt


def interleaved(cmds, runs, warmup, env, what):
    """Run every command runs times, round robin (rotating the start), after
    warmup runs each; return {key: [seconds...]}."""
    log("%s: %d warm-up + %d timed runs of %d commands, interleaved"
        % (what, warmup, runs, len(cmds)))
    for _ in range(warmup):
        for c in cmds:
            run_once(c, env)
    times = {c.key: [] for c in cmds}
    cpu = {c.key: [] for c in cmds}
    for i in range(runs):
        k = i % len(cmds)
        for c in cmds[k:] + cmds[:k]:
            w, u = run_once(c, env, want_cpu=True)
            times[c.key].append(w)
            cpu[c.key].append(u)
    return times, cpu


def stats(xs):
    xs = sorted(xs)
    p90 = statistics.quantiles(xs, n=10, method="inclusive")[8] if len(xs) > 1 else xs[0]
    return {"median": statistics.median(xs), "p90": p90, "mean": statistics.fmean(xs),
            "min": xs[0], "n": len(xs)}


TIMING_HEADER = ["command", "median ms", "p90 ms", "min ms", "CPU ms (median)", "runs"]


def timing_rows(cmds, s, sc):
    return [(c.label, "%.2f" % (s[c.key]["median"] * 1e3), "%.2f" % (s[c.key]["p90"] * 1e3),
             "%.2f" % (s[c.key]["min"] * 1e3), "%.2f" % (sc[c.key]["median"] * 1e3), s[c.key]["n"])
            for c in cmds]


def time_v(argv, stdin, stdout, env, out_path):
    """Run argv under /usr/bin/time -v; return (wall seconds, peak RSS KiB,
    user+sys CPU seconds)."""
    tv = out_path
    cmd = Cmd("tv", argv[0], [TIME, "-v", "-o", tv] + argv, stdin=stdin, stdout=stdout)
    wall = run_once(cmd, env)
    with open(tv) as f:
        text = f.read()
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if not m:
        raise BenchError("no peak RSS in %s output:\n%s" % (TIME, text))
    cpu = sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([0-9.]+)", text))
    return wall, int(m.group(1)), cpu


# --------------------------------------------------------------------------
# machine and versions

def first_line(argv):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (r.stdout or r.stderr).strip().splitlines()[0]
    except Exception as e:  # noqa: BLE001 - informational only
        return "unknown (%s)" % e


def machine_info(connector):
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    osname = platform.platform()
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    osname = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    mem = ""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = "%.1f GiB" % (int(line.split()[1]) / 1048576)
    try:
        import aiosmtpd
        aio = aiosmtpd.__version__
    except Exception:  # noqa: BLE001
        aio = "?"
    git = first_line(["git", "-C", REPO, "describe", "--always", "--dirty"])
    return {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem": mem,
        "os": osname,
        "kernel": platform.release(),
        "connector": first_line([connector, "--version"]) + " (git %s)" % git,
        "curl": first_line(["curl", "--version"]),
        "openssl": first_line(["openssl", "version"]),
        "python": first_line([PYTHON, "--version"]),
        "postfix": first_line(["postconf", "-d", "mail_version"]),
        "aiosmtpd": aio,
    }


# --------------------------------------------------------------------------
# requests

def asset(port, **kw):
    a = {"server": "127.0.0.1", "port": port, "ssl_config": "None",
         "auth_type": "Passwordless", "sender_address": SENDER}
    a.update(kw)
    return a


def send_request(port, vault_dir=None, params=None, **asset_kw):
    p = {"to": RCPT, "subject": "benchmark message", "body": BODY}
    p.update(params or {})
    req = {"action": "send email", "asset": asset(port, **asset_kw), "parameters": p}
    if vault_dir:
        req["vault_dir"] = vault_dir
    return req


def write_json(path, obj):
    with open(path, "w") as f:
        f.write(json.dumps(obj) + "\n")
    return path


# --------------------------------------------------------------------------
# the benchmark

class Bench:
    def __init__(self, args):
        self.a = args
        self.bin = args.connector
        self.port = args.port
        self.work = args.workdir
        self.env = dict(os.environ)
        self.env["SMTP_CONNECTOR_STATE_DIR"] = os.path.join(self.work, "state")
        self.env.pop("SMTP_CONNECTOR_PLUGIN_PATH", None)  # the installed plugin dir
        self.sections = []   # (title, markdown lines)
        self.targets = []    # (name, measured, target, verdict)
        self.notes = []

    def p(self, *parts):
        return os.path.join(self.work, *parts)

    # ---------------------------------------------------------------- helpers
    def capture_message(self):
        """The exact message the connector sends for the (a) request, captured
        by a plain aiosmtpd, so that curl uploads the same bytes."""
        import harness
        with harness.Aiosmtpd() as srv:
            req = write_json(self.p("capture.json"), send_request(srv.port))
            run_once(Cmd("cap", "connector (capture)", [self.bin], stdin=req), self.env)
            raw = srv.wait_messages(1)[0]["raw"]
        with open(self.p("msg.eml"), "wb") as f:
            f.write(raw)
        with open(self.p("body.txt"), "w") as f:
            f.write(BODY)
        log("captured the connector's message: %d bytes (curl sends the same file)" % len(raw))
        return len(raw)

    def table(self, title, header, rows):
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
        for r in rows:
            lines.append("| " + " | ".join(str(x) for x in r) + " |")
        self.sections.append((title, lines))
        print("\n## %s\n" % title)
        print("\n".join(lines))
        sys.stdout.flush()

    def target(self, name, measured, target, ok):
        self.targets.append((name, measured, target, "PASS" if ok else "MISS"))

    # ------------------------------------------------------- (a) + (d) one-shot
    def oneshot(self):
        msg_len = self.msg_len
        port = self.port
        req = write_json(self.p("send.json"), send_request(port))
        bad = write_json(self.p("invalid.json"), send_request(port, params={"to": "bad<<@"}))
        tc = write_json(self.p("tc.json"), {"action": "test connectivity",
                                            "asset": asset(port), "parameters": {}})
        curl_send = ["curl", "-sS", "smtp://127.0.0.1:%d" % port, "--mail-from", SENDER,
                     "--mail-rcpt", RCPT, "--upload-file", self.p("msg.eml")]
        py = [PYTHON, os.path.join(HERE, "soar_smtplib.py"), "127.0.0.1", str(port), SENDER,
              RCPT, "benchmark message", self.p("body.txt")]
        cmds = [
            Cmd("true", "/bin/true (spawn floor of this timer)", ["/bin/true"]),
            Cmd("curl_version", "curl --version (reference: exec, linking, curl_global_init, version strings)", ["curl", "--version"]),
            Cmd("version", "connector --version (exec + dynamic linking of 36 libraries)", [self.bin, "--version"]),
            Cmd("invalid", "connector send email, malformed `to` (plugins, JSON, validation; no network)",
                [self.bin], stdin=bad, expect_rc=1),
            Cmd("tc", "connector test connectivity, Passwordless (connect, EHLO, NOOP, QUIT)",
                [self.bin], stdin=tc),
            Cmd("send", "**connector send email** (%d-byte message)" % msg_len, [self.bin], stdin=req),
            Cmd("curl", "**curl CLI** sending the same message", curl_send),
            Cmd("python", "**Python smtplib**, as the SOAR app (one python3 process)", py),
        ]
        t, cpu = interleaved(cmds, self.a.runs, 5, self.env, "(a)+(d) one process per action")
        s = {k: stats(v) for k, v in t.items()}
        sc = {k: stats(v) for k, v in cpu.items()}
        self.table("(a) + (d) One action per process (smtp-sink, loopback, ssl_config None, Passwordless)",
                   TIMING_HEADER, timing_rows(cmds, s, sc))
        ratio = s["send"]["median"] / s["curl"]["median"]
        ratio90 = s["send"]["p90"] / s["curl"]["p90"]
        self.target("(a) one send per process: connector / curl CLI (median wall)",
                    "%.2f ms / %.2f ms = **%.2fx** (p90 %.2fx; CPU %.2fx); Python smtplib %.1f ms = %.1fx curl"
                    % (s["send"]["median"] * 1e3, s["curl"]["median"] * 1e3, ratio, ratio90,
                       sc["send"]["median"] / sc["curl"]["median"],
                       s["python"]["median"] * 1e3, s["python"]["median"] / s["curl"]["median"]),
                    "<= 1.2x", ratio <= 1.2)
        d = {k: s[k]["median"] * 1e3 for k in s}
        u = {k: sc[k]["median"] * 1e3 for k in sc}

        def step(x, y):
            return "%+.2f ms wall / %+.2f ms CPU" % (d[x] - d[y], u[x] - u[y])
        self.notes.append(
            "Start-up breakdown (differences of medians): spawn floor of the timer %.2f ms; "
            "exec + dynamic linking of the connector's 36 libraries (`--version` - floor) %s; "
            "test connectivity - `--version` (curl_global_init, 4 small plugins, JSON, TCP connect, "
            "EHLO, NOOP, QUIT) %s; malformed-`to` request - `--version` (loads the send email "
            "plugin, parses and validates; no network; libxml2 is loaded only for HTML bodies) %s; "
            "send email - test connectivity (that plugin, the message, MAIL/RCPT/DATA) %s. "
            "For comparison curl: `--version` %.2f ms, "
            "send %.2f ms."
            % (d["true"], step("version", "true"), step("tc", "version"), step("invalid", "version"),
               step("send", "tc"), d["curl_version"], d["curl"]))
        self.oneshot_stats = s

    # ----------------------------------------------------------------- (d) TLS
    def tls(self):
        import harness
        ca = harness.make_ca(self.p(), "benchca")
        bundle = self.p("bundle+benchca.pem")
        with open(bundle, "wb") as out:
            for src in (SYSTEM_BUNDLE, ca.ca_cert):
                with open(src, "rb") as f:
                    out.write(f.read())
        ncerts = open(bundle).read().count("BEGIN CERTIFICATE")
        with harness.Aiosmtpd(starttls=ca) as srv:
            port = srv.port
            r_ca = write_json(self.p("tls-ca.json"),
                              send_request(port, ssl_config="StartTLS", ca_file=ca.ca_cert))
            r_bundle = write_json(self.p("tls-bundle.json"),
                                  send_request(port, ssl_config="StartTLS", ca_file=bundle))
            r_plain = write_json(self.p("tls-plain.json"), send_request(port))
            r_nov = write_json(self.p("tls-noverify.json"),
                               send_request(port, ssl_config="StartTLS", verify_server_cert=False))
            curl = ["curl", "-sS", "smtp://127.0.0.1:%d" % port, "--mail-from", SENDER,
                    "--mail-rcpt", RCPT, "--upload-file", self.p("msg.eml")]
            cmds = [
                Cmd("c_plain", "connector, ssl_config None (same server; no TLS)", [self.bin],
                    stdin=r_plain),
                Cmd("c_ca", "**connector StartTLS**, ca_file = test CA (+ hashed %s, lazy)"
                    % SYSTEM_CA_DIR, [self.bin], stdin=r_ca),
                Cmd("c_bundle", "connector StartTLS, ca_file = system bundle + test CA (%d certs parsed)"
                    % ncerts, [self.bin], stdin=r_bundle),
                Cmd("c_noverify", "connector StartTLS, verify_server_cert false (no CA store)",
                    [self.bin], stdin=r_nov),
                Cmd("u_plain", "curl, no TLS", curl),
                Cmd("u_ca", "curl --ssl-reqd --cacert test CA", curl + ["--ssl-reqd", "--cacert", ca.ca_cert]),
                Cmd("u_bundle", "curl --ssl-reqd --cacert system bundle + test CA",
                    curl + ["--ssl-reqd", "--cacert", bundle]),
            ]
            t, cpu = interleaved(cmds, self.a.tls_runs, 3, self.env,
                                 "(d) StartTLS to aiosmtpd with a generated CA")
            got = len(srv.messages())
        s = {k: stats(v) for k, v in t.items()}
        sc = {k: stats(v) for k, v in cpu.items()}
        self.table("(d) One StartTLS send per process to aiosmtpd (generated P-256 CA), vs no TLS",
                   TIMING_HEADER, timing_rows(cmds, s, sc))
        m = {k: s[k]["median"] * 1e3 for k in s}
        c = {k: sc[k]["median"] * 1e3 for k in sc}
        self.notes.append(
            "TLS (aiosmtpd received %d messages): StartTLS with verification against a 1-certificate "
            "ca_file costs the connector %+.1f ms wall / %+.1f ms CPU over no TLS (curl: %+.1f / %+.1f ms); "
            "without verification %+.1f / %+.1f ms. Parsing the %d-certificate system bundle as ca_file "
            "costs %+.1f ms wall / %+.1f ms CPU more per process (curl: %+.1f / %+.1f ms): that is what "
            "the connector avoids by trusting the hashed %s (CURLOPT_CAPATH, looked up lazily by "
            "issuer hash) instead of the bundle file."
            % (got, m["c_ca"] - m["c_plain"], c["c_ca"] - c["c_plain"],
               m["u_ca"] - m["u_plain"], c["u_ca"] - c["u_plain"],
               m["c_noverify"] - m["c_plain"], c["c_noverify"] - c["c_plain"], ncerts,
               m["c_bundle"] - m["c_ca"], c["c_bundle"] - c["c_ca"],
               m["u_bundle"] - m["u_ca"], c["u_bundle"] - c["u_ca"], SYSTEM_CA_DIR))

    # -------------------------------------------------------------- (b) batch
    def batch(self):
        n = self.a.mails
        jl = self.p("batch.jsonl")
        a = asset(self.port)
        with open(jl, "w") as f:
            for i in range(n):
                f.write(json.dumps({"action": "send email", "asset": a,
                                    "parameters": {"to": RCPT, "subject": "benchmark %d" % i,
                                                   "body": BODY}}) + "\n")
        out = self.p("batch.out")
        src = [SMTP_SOURCE, "-d", "-m", str(n), "-s", "1", "-l", "1000", "127.0.0.1:%d" % self.port]
        floor = self.build_curl_batch()
        clients = ["c", "s"] + (["f", "fd"] if floor else [])
        log("(b) %d mails as JSON Lines in one process vs smtp-source -d, %d rounds"
            % (n, self.a.batch_rounds))
        res = {k: [] for k in clients}
        for r in range(self.a.batch_rounds):
            for who in clients if r % 2 == 0 else clients[::-1]:
                if who == "c":
                    w, kib, cpu = time_v([self.bin], jl, out, self.env, self.p("batch.time"))
                    with open(out) as f:
                        lines = f.readlines()
                    ok = sum(1 for ln in lines if json.loads(ln).get("status") == "success")
                    if len(lines) != n or ok != n:
                        raise BenchError("(b) connector: %d result lines, %d successful, of %d"
                                         % (len(lines), ok, n))
                elif who == "s":
                    w, kib, cpu = time_v(src, None, None, self.env, self.p("source.time"))
                else:
                    argv = [floor, "127.0.0.1", str(self.port), str(n), self.p("msg.eml")]
                    w, kib, cpu = time_v(argv + (["debugcb"] if who == "fd" else []), None, None,
                                         self.env, self.p("floor.time"))
                res[who].append((w, kib, cpu))
                log("(b) %s: %.2f s" % (who, w))
        conn, source = res["c"], res["s"]
        cm = statistics.median(w for w, _, _ in conn)
        sm = statistics.median(w for w, _, _ in source)
        ccpu = statistics.median(c for _, _, c in conn)
        scpu = statistics.median(c for _, _, c in source)
        crate, srate = n / cm, n / sm
        # peak RSS against batch size: the requests are all read and parsed first
        small = max(1, n // 10)
        jl_small = self.p("batch-small.jsonl")
        with open(jl) as f, open(jl_small, "w") as g:
            for i, line in enumerate(f):
                if i >= small:
                    break
                g.write(line)
        _, kib_small, _ = time_v([self.bin], jl_small, out, self.env, self.p("batch.time"))
        kib = max(k for _, k, _ in conn)
        rows = [
            ("**connector**, %d JSON Lines requests, one process, one SMTP session" % n,
             "%.0f" % crate, "%.2f" % cm, "%.0f" % (cm / n * 1e6), "%.0f" % (ccpu / n * 1e6),
             " / ".join("%.2f" % w for w, _, _ in conn), "%.1f" % (kib / 1024)),
            ("**smtp-source -d -m %d -s 1 -l 1000** (one session, sequential)" % n,
             "%.0f" % srate, "%.2f" % sm, "%.0f" % (sm / n * 1e6), "%.0f" % (scpu / n * 1e6),
             " / ".join("%.2f" % w for w, _, _ in source),
             "%.1f" % (max(k for _, k, _ in source) / 1024)),
        ]
        for key, label in (("f", "libcurl floor: one reused easy handle, same message (bench/curl_batch.c)"),
                           ("fd", "libcurl floor + VERBOSE with a no-op DEBUGFUNCTION (as the connector)")):
            if res.get(key):
                fm = statistics.median(w for w, _, _ in res[key])
                fc = statistics.median(c for _, _, c in res[key])
                rows.append((label, "%.0f" % (n / fm), "%.2f" % fm, "%.0f" % (fm / n * 1e6),
                             "%.0f" % (fc / n * 1e6), " / ".join("%.2f" % w for w, _, _ in res[key]),
                             "%.1f" % (max(k for _, k, _ in res[key]) / 1024)))
        self.table("(b) %d mails over one connection (median of %d rounds)" % (n, self.a.batch_rounds),
                   ["client", "msgs/s", "wall s", "wall us/msg", "CPU us/msg", "all rounds s",
                    "peak RSS MiB"], rows)
        ratio = crate / srate
        floor_txt = ""
        if res.get("fd"):
            frate = n / statistics.median(w for w, _, _ in res["fd"])
            floor_txt = ("; libcurl floor (with debug callback) %.0f msgs/s = %.0f%% of smtp-source"
                         % (frate, frate / srate * 100))
        self.target("(b) JSON Lines batch: connector rate / smtp-source rate",
                    "%.0f / %.0f msgs/s = **%.0f%%** (CPU per message %.0f vs %.0f us)%s"
                    % (crate, srate, ratio * 100, ccpu / n * 1e6, scpu / n * 1e6, floor_txt),
                    ">= 70%", ratio >= 0.70)
        self.notes.append(
            "Batch memory: peak RSS %.1f MiB for %d requests vs %.1f MiB for %d, i.e. about %.1f KiB "
            "per request (requests are read, run and freed one at a time, so memory stays flat)."
            % (kib / 1024, n, kib_small / 1024, small, (kib - kib_small) / max(1, n - small)))

    def build_curl_batch(self):
        """Compile bench/curl_batch.c (the libcurl floor); None if no compiler."""
        cc = shutil.which("cc") or shutil.which("gcc")
        exe = self.p("curl_batch")
        if not cc:
            return None
        r = subprocess.run([cc, "-O2", "-o", exe, os.path.join(HERE, "curl_batch.c"), "-lcurl"],
                           capture_output=True, text=True)
        if r.returncode:
            log("(b) cannot build curl_batch.c, no libcurl floor row: %s" % r.stderr.strip()[:300])
            return None
        return exe

    # --------------------------------------------------------- (c) attachment
    def attachment(self):
        mb = self.a.attach_mb
        size = mb * 1024 * 1024
        vault = self.p("vault")
        os.makedirs(vault, exist_ok=True)
        plain_id = "bench-attachment-%dmb" % mb
        path = os.path.join(vault, plain_id)
        log("(c) writing a %d MiB random vault file" % mb)
        h = hashlib.sha1()
        chunk = 4 * 1024 * 1024
        with open(path, "wb") as f:
            left = size
            while left:
                b = os.urandom(min(chunk, left))
                h.update(b)
                f.write(b)
                left -= len(b)
        sha = h.hexdigest()
        # SHA-1 reference speed (OpenSSL, through hashlib), from the page cache
        t0 = time.perf_counter()
        h2 = hashlib.sha1()
        with open(path, "rb") as f:
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                h2.update(b)
        sha_ref = time.perf_counter() - t0
        os.link(path, os.path.join(vault, sha))
        meta = json.dumps({"name": "attachment.bin", "content_type": "application/octet-stream"})
        for vid in (plain_id, sha):
            with open(os.path.join(vault, vid + ".json"), "w") as f:
                f.write(meta)
        body = "See the attached file.\n"
        r_plain = write_json(self.p("att-plain.json"),
                             send_request(self.port, vault_dir=vault,
                                          params={"body": body, "attachments": plain_id}))
        r_sha = write_json(self.p("att-sha.json"),
                           send_request(self.port, vault_dir=vault,
                                        params={"body": body, "attachments": sha}))
        # curl: the same shape, pre-encoded (base64, 76 columns, CRLF)
        eml = self.p("att.eml")
        log("(c) writing the pre-encoded message for curl")
        with open(eml, "wb") as out, open(path, "rb") as f:
            out.write(("From: %s\r\nTo: %s\r\nSubject: attachment\r\nMIME-Version: 1.0\r\n"
                       "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n"
                       "Content-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n--b\r\n"
                       "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
                       "Content-Disposition: attachment; filename=\"attachment.bin\"\r\n\r\n"
                       % (SENDER, RCPT, body.rstrip("\n"))).encode())
            while True:
                b = f.read(57 * 18000)
                if not b:
                    break
                enc = base64.b64encode(b)
                out.write(b"\r\n".join(enc[i:i + 76] for i in range(0, len(enc), 76)) + b"\r\n")
            out.write(b"--b--\r\n")
        eml_size = os.path.getsize(eml)
        base = ["curl", "-sS", "smtp://127.0.0.1:%d" % self.port, "--mail-from", SENDER,
                "--mail-rcpt", RCPT]
        curl_t = base + ["--upload-file", eml]
        # the libcurl path the connector uses: curl_mime, file part, base64 encoder
        curl_f = base + ["-H", "Subject: attachment", "-F", "=%s;type=text/plain" % body.strip(),
                         "-F", "=@%s;encoder=base64;type=application/octet-stream" % path]
        order = ["plain", "sha", "curl", "curl_f"]
        runs = {k: [] for k in order}
        for r in range(self.a.attach_rounds):
            for key in (order if r % 2 == 0 else order[::-1]):
                if key in ("curl", "curl_f"):
                    w, k, c = time_v(curl_t if key == "curl" else curl_f, None, None, self.env,
                                     self.p("att-%s.time" % key))
                else:
                    outp = self.p("att-%s.out" % key)
                    w, k, c = time_v([self.bin], r_plain if key == "plain" else r_sha, outp,
                                     self.env, self.p("att-%s.time" % key))
                    with open(outp) as f:
                        res = json.loads(f.read())
                    if res.get("status") != "success":
                        raise BenchError("(c) connector (%s id) failed: %s" % (key, res.get("message")))
                runs[key].append((w, k, c))
                log("(c) %s: %.2f s, %.1f MiB" % (key, w, k / 1024))
        # the hash check alone: a 40-hex id whose content does not match is hashed in full and
        # refused before connecting; a missing id is refused at once
        bad_id = "0" * 40
        os.link(path, os.path.join(vault, bad_id))
        r_bad = write_json(self.p("att-badsha.json"),
                           send_request(self.port, vault_dir=vault,
                                        params={"body": body, "attachments": bad_id}))
        r_missing = write_json(self.p("att-missing.json"),
                               send_request(self.port, vault_dir=vault,
                                            params={"body": body, "attachments": "no-such-id"}))
        ht, hc = interleaved([Cmd("bad", "connector, SHA-1 mismatch", [self.bin], stdin=r_bad, expect_rc=1),
                              Cmd("missing", "connector, missing id", [self.bin], stdin=r_missing,
                                  expect_rc=1)], 5, 1, self.env, "(c) SHA-1 check alone")
        hash_wall = statistics.median(ht["bad"]) - statistics.median(ht["missing"])
        hash_cpu = statistics.median(hc["bad"]) - statistics.median(hc["missing"])
        os.unlink(os.path.join(vault, bad_id))
        med = {k: statistics.median(w for w, _, _ in v) for k, v in runs.items()}
        cpu = {k: statistics.median(c for _, _, c in v) for k, v in runs.items()}
        peak = {k: max(kib for _, kib, _ in v) for k, v in runs.items()}
        labels = {
            "plain": "**connector**, vault id `%s` (no hash check)" % plain_id,
            "sha": "**connector**, vault id = its SHA-1 (content hashed first)",
            "curl": "**curl --upload-file**, same message pre-encoded (%.0f MiB)" % (eml_size / 1048576),
            "curl_f": "curl -F '=@file;encoder=base64' (libcurl's curl_mime encoder, as the connector)",
        }
        rows = [(labels[k], "%.2f" % med[k], "%.2f" % cpu[k], "%.0f" % (mb / med[k]),
                 "%.1f" % (peak[k] / 1024)) for k in order]
        rows.append(("connector SHA-1 check alone (40-hex id that does not match, refused before "
                     "connecting, minus a missing id)", "%.2f" % hash_wall, "%.2f" % hash_cpu,
                     "%.0f" % (mb / hash_wall) if hash_wall > 0 else "", ""))
        self.table("(c) %d MiB attachment, one process each (median of %d rounds; max peak RSS)"
                   % (mb, self.a.attach_rounds),
                   ["client", "wall s", "CPU s", "MiB/s of attachment", "peak RSS MiB"], rows)
        worst = max(peak["plain"], peak["sha"])
        self.target("(c) %d MiB attachment: connector peak RSS" % mb,
                    "**%.1f MiB** (non-SHA-1 id) / %.1f MiB (SHA-1 id); curl %.1f MiB"
                    % (peak["plain"] / 1024, peak["sha"] / 1024, peak["curl"] / 1024),
                    "< 16 MiB", worst < 16 * 1024)
        self.notes.append(
            "Attachment: the SHA-1 check costs %.2f s wall / %.2f s CPU for %d MiB, measured alone "
            "(hashlib/OpenSSL hashes the same file in %.2f s here); within a whole send the SHA-1-id "
            "run differs from the other by %+.2f s, inside the run-to-run noise. The connector streams %d MiB in %.2f s vs %.2f s for curl sending "
            "the pre-encoded bytes; curl's own curl_mime base64 path takes %.2f s: libcurl 7.88's "
            "encoder reads a file part 256 bytes at a time and hands ~340 encoded bytes per read, "
            "each sent with its own send(), which is why the connector encodes attachments "
            "itself behind curl_mime_data_cb (see README, 'Findings')."
            % (hash_wall, hash_cpu, mb, sha_ref, med["sha"] - med["plain"], mb, med["plain"],
               med["curl"], med["curl_f"]))
        for f in (path, os.path.join(vault, sha), eml):
            os.unlink(f)

    # ------------------------------------------------------------------ report
    def report(self, info, elapsed):
        t = ["| target | measured | goal | verdict |", "|---|---|---|---|"]
        for name, measured, goal, verdict in self.targets:
            t.append("| %s | %s | %s | **%s** |" % (name, measured, goal, verdict))
        print("\n## Targets\n")
        print("\n".join(t))
        print()
        for n in self.notes:
            print("- " + n)
        machine = ("%s; %s vCPU %s; %s RAM; kernel %s"
                   % (info["os"], info["nproc"], info["cpu"], info["mem"], info["kernel"]))
        versions = ("%s; %s; %s; %s; Postfix %s (smtp-sink/smtp-source); aiosmtpd %s"
                    % (info["connector"], info["curl"], info["openssl"], info["python"],
                       info["postfix"].split("=")[-1].strip(), info["aiosmtpd"]))
        md = ["# smtp-connector benchmark results", "",
              "Written by `bench/run.sh` (see `bench/README.md`); do not edit by hand.", "",
              "- Date: %s" % info["date"],
              "- Machine: %s" % machine,
              "- Versions: %s" % versions,
              "- Settings: %d runs per one-shot command, %d per TLS command, %d mails in the batch "
              "(%d rounds), %d MiB attachment (%d rounds); whole run %.0f s."
              % (self.a.runs, self.a.tls_runs, self.a.mails, self.a.batch_rounds,
                 self.a.attach_mb, self.a.attach_rounds, elapsed),
              "- Load average (1/5/15 min) at start %s, at end %s%s."
              % ("/".join("%.2f" % x for x in info["load_start"]),
                 "/".join("%.2f" % x for x in info["load_end"]),
                 " (**the machine was busy with other work: expect noisy wall times; compare CPU "
                 "columns and ratios of interleaved runs**)"
                 if max(info["load_start"][0], info["load_end"][0]) > 0.5 * info["nproc"] else ""),
              "- Times are wall clock from fork to exit, measured by bench/bench.py; the commands of "
              "each group ran interleaved. Loopback, server on the same VM.", "",
              "## Targets", ""] + t + [""]
        for title, lines in self.sections:
            md += ["## " + title, ""] + lines + [""]
        md += ["## Notes", ""] + ["- " + n for n in self.notes] + [""]
        md += kept_sections(self.a.results, "## Faults")
        with open(self.a.results, "w") as f:
            f.write("\n".join(md))
        log("wrote %s" % self.a.results)


def kept_sections(path, prefix):
    """Sections of the old results file that other scripts wrote (bench/faults.py's
    before/after table), kept when this run rewrites the file."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    out, keep = [], False
    for line in lines:
        if line.startswith("## "):
            keep = line.startswith(prefix)
        if keep:
            out.append(line)
    return out + [""] if out else []


def on_signal(signum, frame):
    # SystemExit unwinds the with-blocks and runs the harness's atexit cleanup,
    # which stops aiosmtpd; run.sh stops smtp-sink.
    raise SystemExit(128 + signum)


def main():
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--connector", required=True)
    ap.add_argument("--port", type=int, required=True, help="smtp-sink's port on 127.0.0.1")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--tls-runs", type=int, default=60)
    ap.add_argument("--mails", type=int, default=10000)
    ap.add_argument("--batch-rounds", type=int, default=5)
    ap.add_argument("--attach-mb", type=int, default=200)
    ap.add_argument("--attach-rounds", type=int, default=3)
    ap.add_argument("--only", default="a,tls,b,c", help="comma list of: a (with d), tls, b, c")
    args = ap.parse_args()
    only = set(args.only.split(","))
    info = machine_info(args.connector)
    info["load_start"] = os.getloadavg()
    print("# smtp-connector benchmark, %s" % info["date"])
    print("machine: nproc=%s, CPU %s, %s RAM, %s, kernel %s"
          % (info["nproc"], info["cpu"], info["mem"], info["os"], info["kernel"]))
    for k in ("connector", "curl", "openssl", "python", "postfix", "aiosmtpd"):
        print("%-9s %s" % (k + ":", info[k]))
    la = info["load_start"]
    print("load:     %.2f %.2f %.2f%s" % (la[0], la[1], la[2],
          "  (WARNING: busy machine, wall times will be noisy)" if la[0] > 0.5 * info["nproc"] else ""))
    sys.stdout.flush()
    # The harness's peers (aiosmtpd) keep their files under tempfile's dir;
    # aiosmtpd fsyncs every spooled message, so use tmpfs when there is one.
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        tempfile.tempdir = tempfile.mkdtemp(prefix="smtpc-bench-", dir="/dev/shm")
        atexit.register(shutil.rmtree, tempfile.tempdir, True)
    b = Bench(args)
    try:
        b.msg_len = b.capture_message()
        if "a" in only:
            b.oneshot()
        if "tls" in only:
            b.tls()
        if "b" in only:
            b.batch()
        if "c" in only:
            b.attachment()
    except BenchError as e:
        log("FAILED: %s" % e)
        return 1
    info["load_end"] = os.getloadavg()
    b.report(info, time.monotonic() - T0)
    return 0 if all(v == "PASS" for *_, v in b.targets) else 3


if __name__ == "__main__":
    sys.exit(main())
