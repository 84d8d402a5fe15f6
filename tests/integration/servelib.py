"""Helpers for the `smtp-connector serve` tests: start the real listener
(with the maildir sink by default) on a port it reports, read back what it
stored with Python's mailbox module, and talk raw SMTP over a socket."""

import hashlib
import json
import mailbox
import os
import re
import signal
import socket
import subprocess
import time

import harness

LISTEN_RE = re.compile(r"smtp-connector serve listening at (\S+):(\d+)")


class Serve:
    """`smtp-connector serve` as a test peer. config: a dict written as the
    --config file; args: extra flags. The listen port is port 0 (the
    kernel picks it) unless the config says otherwise; .port is what the
    listener logged."""

    def __init__(self, config=None, args=(), maildir=True, env=None, state_dir=None):
        d = harness.mkdtemp("serve")
        self.dir = d
        self.maildir = os.path.join(d, "Maildir") if maildir else None
        # state_dir: another listener's, to restart on what it left (a spool)
        self.state_dir = state_dir or os.path.join(d, "state")
        argv = [harness.connector_path(), "serve", "--state-dir", self.state_dir]
        if config is not None:
            cfg = dict(config)
            cfg.setdefault("listen", [{"host": "127.0.0.1", "port": 0}])
            # tests leave clients mid-transaction: do not wait 30 s for them
            cfg["timeouts"] = dict(cfg.get("timeouts", {}))
            cfg["timeouts"].setdefault("shutdown_grace", 2)
            self.config_path = os.path.join(d, "serve.json")
            with open(self.config_path, "w") as f:
                json.dump(cfg, f)
            argv += ["--config", self.config_path]
        elif "--port" not in args:
            argv += ["--port", "0"]
        if self.maildir:
            argv += ["--maildir", self.maildir]
        argv += [str(a) for a in args]
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = harness._start_process(argv, "serve", env=full_env)
        self.ports = harness.wait_for(self._ports, harness.START_TIMEOUT, "serve", self.proc)
        self.port = self.ports[0]

    def _ports(self):
        found = [int(m.group(2)) for m in LISTEN_RE.finditer(self.log())]
        return found or None

    def log(self):
        with open(self.proc.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def messages(self):
        """[(key, mailbox.MaildirMessage)] of new/, oldest first."""
        md = mailbox.Maildir(self.maildir, factory=None, create=False)
        return sorted(md.items(), key=lambda kv: kv[0])

    def raw_files(self):
        new = os.path.join(self.maildir, "new")
        return [open(os.path.join(new, n), "rb").read() for n in sorted(os.listdir(new))]

    def index(self):
        p = os.path.join(self.maildir, "index.jsonl")
        if not os.path.exists(p):
            return []
        with open(p, encoding="utf-8") as f:
            return [json.loads(line) for line in f]

    def wait_messages(self, n, timeout=20):
        harness.wait_for(lambda: len(os.listdir(os.path.join(self.maildir, "new"))) >= n,
                         timeout, "%d messages in the Maildir" % n, self.proc)

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError("serve did not stop within %s s after %s" % (timeout, sig))
        if self.proc in harness._processes:
            harness._processes.remove(self.proc)
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        rc = self.stop()
        if exc_type is None:
            # 0 after SIGTERM; a sanitizer build reports a leak as 86
            harness.eq(rc, 0, "serve exit status after SIGTERM\n" + self.log()[-3000:])
            for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer", "ThreadSanitizer"):
                harness.not_contains(self.log(), bad, "serve stderr")


def fs_faults_env(**env):
    """env for a Serve with tests/plugins/fs_faults.c preloaded: the
    shim's switches (SC_TEST_NO_TMPFILE, SC_TEST_FAIL_FLUSH) as keywords."""
    b = os.environ.get("SMTP_CONNECTOR_BUILDDIR")
    if not b:
        harness.skip("SMTP_CONNECTOR_BUILDDIR not set (run via make check)")
    shim = os.path.join(b, "tests", "plugins", ".libs", "fs_faults.so")
    harness.true(os.path.exists(shim), "the shim %s was built (make check builds it)" % shim)
    env["LD_PRELOAD"] = shim
    # an ASan build wants its runtime first; the shim only wraps libc calls
    env["ASAN_OPTIONS"] = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                 "verify_asan_link_order=0"]))
    return env


def journal_records(jdir):
    """The records of a sink's journal files (doc/serve.md has the
    format), read here independently of the C reader: [(meta, body, file,
    offset of the record)]."""
    out = []
    names = [n for n in os.listdir(jdir) if n.endswith(".journal")]  # not the .spare files
    for name in sorted(names, key=lambda n: int(n.split(".")[0])):
        path = os.path.join(jdir, name)
        with open(path, "rb") as f:
            data = f.read()
        harness.eq(data[:4], b"SCJ1", "journal header of " + name)
        harness.eq(int.from_bytes(data[4:8], "little"), 2, "journal version of " + name)
        seed = hashlib.sha256(data[:32]).digest()
        harness.eq(seed, data[32:64], "header hash of " + name)
        off = 64
        # a record's hash ends with the file's seed; what follows the last
        # one in a reused file is an older generation's, hashed with another
        while off + 48 <= len(data) and data[off:off + 4] == b"SCJR":
            ml = int.from_bytes(data[off + 4:off + 8], "little")
            bl = int.from_bytes(data[off + 8:off + 16], "little")
            end = off + 16 + ml + bl
            if end + 32 > len(data) or \
                    hashlib.sha256(data[off:end] + seed).digest() != data[end:end + 32]:
                break
            out.append((json.loads(data[off + 16:off + 16 + ml]), data[off + 16 + ml:end], path,
                        off))
            off = end + 32
    return out


class Client:
    """A raw SMTP client over a socket: send bytes, read reply lines."""

    def __init__(self, port, host="127.0.0.1", timeout=10, greet=True):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buf = b""
        self.greeting = self.reply() if greet else None

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; unread: %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def reply(self):
        """(code, [lines]) of one (possibly multi-line) reply."""
        lines = []
        while True:
            ln = self.line()
            lines.append(ln)
            if len(ln) < 4 or ln[3] != "-":
                return int(ln[:3]), lines

    def cmd(self, text):
        self.send(text.encode() + b"\r\n")
        return self.reply()

    def closed(self, timeout=5):
        """True when the server closes the connection within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


def envelope_ok(c, sender="a@example.com", rcpts=("b@example.com",)):
    harness.eq(c.cmd("EHLO client.example")[0], 250, "EHLO")
    harness.eq(c.cmd("MAIL FROM:<%s>" % sender)[0], 250, "MAIL")
    for r in rcpts:
        harness.eq(c.cmd("RCPT TO:<%s>" % r)[0], 250, "RCPT")
    harness.eq(c.cmd("DATA")[0], 354, "DATA")


def body_of(msg):
    """The message as email.message.EmailMessage (CRLF normalised)."""
    return harness.parse_message(msg.as_bytes() if hasattr(msg, "as_bytes") else msg)


def wait_closed_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
        except OSError:
            return True
        time.sleep(0.05)
    return False
