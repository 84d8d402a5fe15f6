"""Integration-test harness for smtp-connector: real peers, the binary, TAP.

Test scripts are plain Python files run with /usr/bin/python3 (Debian's, which
has python3-aiosmtpd and python3-jsonschema).  A script defines functions
named test_* and ends with ``harness.run(globals())``; see README.md here.

Everything a test starts binds to 127.0.0.1 only and is stopped (terminate,
wait, kill) when its ``with`` block ends, even when the test fails; anything
left over is stopped at exit.  Each test file gets one temporary directory,
removed at exit (kept when HARNESS_KEEP_TMP=1), and each test function gets a
fresh sub-directory of it: ``tmpdir()``.
"""

import atexit
import base64
import email
import email.policy
import glob
import json
import os
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import types

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
SERVERS = os.path.join(TESTS, "servers")
# the source tree (make check sets it; a test run by hand from the tree finds it)
SRCDIR = os.environ.get("SMTP_CONNECTOR_SRCDIR") or os.path.dirname(TESTS)
PYTHON = "/usr/bin/python3"  # Debian's: has aiosmtpd; the first python3 on PATH may not
NODE = shutil.which("node") or "/usr/bin/node"
SMTP_SINK = "/usr/sbin/smtp-sink"
START_TIMEOUT = 20.0  # seconds a peer may take to become ready
# seconds a test waits for what a peer or the connector does; longer under
# $SMTP_CONNECTOR_WRAPPER (valgrind)
TIMEOUT = 60.0 if os.environ.get("SMTP_CONNECTOR_WRAPPER") else 20.0


# --------------------------------------------------------------------------
# temporary directories, ports, processes

_TMP_ROOT = None
_current_test_dir = None
_processes = []


def test_root():
    """This test file's temporary directory (created on first use)."""
    global _TMP_ROOT
    if _TMP_ROOT is None:
        name = os.path.splitext(os.path.basename(sys.argv[0] or "harness"))[0]
        _TMP_ROOT = tempfile.mkdtemp(prefix="smtpc-%s-" % name)
        os.chmod(_TMP_ROOT, 0o755)  # smtp-sink runs as nobody and must reach its dump dir
        atexit.register(_cleanup_root)
    return _TMP_ROOT


def _cleanup_root():
    for proc in list(_processes):
        _stop_process(proc)
    if _TMP_ROOT and os.path.isdir(_TMP_ROOT):
        if os.environ.get("HARNESS_KEEP_TMP"):
            sys.stdout.write("# kept temporary files in %s\n" % _TMP_ROOT)
        else:
            shutil.rmtree(_TMP_ROOT, ignore_errors=True)


def mkdtemp(prefix="d"):
    """A new directory inside this test file's temporary directory."""
    path = tempfile.mkdtemp(prefix=prefix + "-", dir=test_root())
    os.chmod(path, 0o755)
    return path


def tmpdir():
    """The current test function's own fresh directory."""
    global _current_test_dir
    if _current_test_dir is None:
        _current_test_dir = mkdtemp("test")
    return _current_test_dir


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago.

    The peers started here pick their own port (port 0) and report it, which
    has no race; use this only for something that cannot."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what, proc=None, interval=0.02):
    """Poll predicate() until true; fail after timeout, or at once if proc died."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError("%s: process exited with status %s before it was ready%s"
                                 % (what, proc.returncode, _stderr_tail(proc)))
        if time.monotonic() > deadline:
            raise AssertionError("%s: not ready after %.0f s%s"
                                 % (what, timeout, _stderr_tail(proc)))
        time.sleep(interval)
        interval = min(interval * 1.5, 0.2)


def _stderr_tail(proc):
    path = getattr(proc, "stderr_path", None) if proc is not None else None
    if path and os.path.exists(path):
        with open(path, "rb") as f:
            tail = f.read()[-2000:].decode("utf-8", "replace").strip()
        if tail:
            return "\n  stderr: " + tail.replace("\n", "\n  stderr: ")
    return ""


def _start_process(argv, name, **kw):
    err_path = os.path.join(mkdtemp(name), "stderr")
    err = open(err_path, "wb")
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                start_new_session=True, **kw)
    finally:
        err.close()
    proc.stderr_path = err_path
    proc.argv = argv
    _processes.append(proc)
    return proc


def _stop_process(proc, timeout=5.0):
    if proc in _processes:
        _processes.remove(proc)
    if proc.poll() is None:
        try:
            proc.terminate()
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                proc.kill()
            proc.wait(timeout)
        except OSError:
            pass
    return proc.returncode


class LineReader:
    """Lines of a child's stdout pipe, each within a bounded wait: a line
    that does not come fails the test, it never blocks it.  context(): more
    to say in a failure (a stderr tail)."""

    def __init__(self, proc, context=lambda: ""):
        self.proc = proc
        self.fd = proc.stdout.fileno()
        self.context = context
        self.buf = b""

    def _read(self, deadline, timeout, what):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([self.fd], [], [], left)[0]:
            raise AssertionError("no %s within %.0f s%s" % (what, timeout, self.context()))
        return os.read(self.fd, 65536)

    def line(self, timeout=None, what="a line"):
        """The next line (bytes, without its newline)."""
        timeout = TIMEOUT if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            chunk = self._read(deadline, timeout, what)
            if not chunk:
                raise AssertionError("stdout closed before %s; exit status %s%s"
                                     % (what, self.proc.wait(timeout), self.context()))
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def rest(self, timeout=None, what="the end of stdout"):
        """All that is left up to the end of stdout (bytes): once the child
        is gone, or has closed it."""
        timeout = TIMEOUT if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            chunk = self._read(deadline, timeout, what)
            if not chunk:
                break
            self.buf += chunk
        rest, self.buf = self.buf, b""
        return rest


def _read_json_file(path):
    with open(path) as f:
        return json.load(f)


def _tcp_listening(port):
    """True when something listens on 127.0.0.1:port (from /proc, no connection made)."""
    want = ":%04X" % port
    for table in ("/proc/net/tcp",):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if cols[1].endswith(want) and cols[3] == "0A":
                        return True
        except OSError:
            pass
    return False


# --------------------------------------------------------------------------
# TLS material

def make_ca(dir, name, san=("DNS:localhost", "IP:127.0.0.1"), days=7):
    """Create a CA and a server certificate signed by it, with the openssl CLI.

    Files go to dir/name/.  Returns a namespace with paths: ca_cert, ca_key,
    cert (server certificate), key (server key), chain (server cert + CA) and
    dir.  Every call makes new keys, so a second call gives an independent CA
    that does not trust the first one's certificates.  ``san`` is the server
    certificate's subjectAltName list (e.g. ("DNS:wrong.example",) for a
    name-mismatch test)."""
    out = os.path.join(dir, name)
    os.makedirs(out, exist_ok=True)
    p = lambda f: os.path.join(out, f)  # noqa: E731

    def openssl(*args):
        r = subprocess.run(["openssl"] + list(args), cwd=out, capture_output=True,
                           timeout=60)
        if r.returncode != 0:
            raise AssertionError("openssl %s failed: %s" % (args[0], r.stderr.decode()))

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", p("ca.key"), "-out", p("ca.crt"),
            "-days", str(days), "-subj", "/O=smtp-connector tests/CN=%s test CA" % name,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-addext", "subjectKeyIdentifier=hash")
    openssl("req", "-new", *ec, "-keyout", p("server.key"), "-out", p("server.csr"),
            "-subj", "/O=smtp-connector tests/CN=localhost")
    with open(p("server.ext"), "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectKeyIdentifier=hash\n"
                "authorityKeyIdentifier=keyid,issuer\n"
                "subjectAltName=%s\n" % ",".join(san))
    openssl("x509", "-req", "-in", p("server.csr"), "-CA", p("ca.crt"), "-CAkey", p("ca.key"),
            "-CAcreateserial", "-out", p("server.crt"), "-days", str(days),
            "-extfile", p("server.ext"))
    with open(p("chain.pem"), "wb") as f:
        for part in ("server.crt", "ca.crt"):
            with open(p(part), "rb") as g:
                f.write(g.read())
    for f in ("server.key", "ca.key"):
        os.chmod(p(f), 0o644)  # test keys; readable by peers that drop privileges
    return types.SimpleNamespace(dir=out, name=name, ca_cert=p("ca.crt"), ca_key=p("ca.key"),
                                 cert=p("server.crt"), key=p("server.key"),
                                 chain=p("chain.pem"))


_SHARED_CAS = {}


def shared_ca(name="main"):
    """make_ca() once per name for the whole test file (key generation is
    the slow part); shared_ca("other") is a CA independent of "main"."""
    if name not in _SHARED_CAS:
        _SHARED_CAS[name] = make_ca(mkdtemp("ca"), name)
    return _SHARED_CAS[name]


def _cert_pair(value):
    """(cert, key) from a make_ca() result or a 2-sequence."""
    if hasattr(value, "cert") and hasattr(value, "key"):
        return [value.cert, value.key]
    cert, key = value
    return [cert, key]


# --------------------------------------------------------------------------
# received messages

def parse_message(raw):
    """email.message_from_bytes(policy=email.policy.default), with CRLF line
    ends normalised to LF first so that get_content() gives Python text; the
    bytes as received stay available as "raw" in every message dict."""
    return email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)


def _spool_messages(pattern, envelope_keys):
    """The JSON spool records a peer wrote (data_b64 among their keys),
    oldest first, each with "raw" (bytes), "msg" (parsed), "envelope" (the
    envelope_keys grouped) and "path": what every peer's messages() returns."""
    out = []
    for path in sorted(glob.glob(pattern)):
        rec = _read_json_file(path)
        rec["raw"] = base64.b64decode(rec.pop("data_b64"))
        rec["msg"] = parse_message(rec["raw"])
        rec["envelope"] = {k: rec.get(k) for k in envelope_keys}
        rec["path"] = path
        out.append(rec)
    return out


def tree(part):
    """A MIME structure as ("multipart/mixed", [children...]), a leaf as
    its content type: one comparison asserts the whole shape."""
    if part.is_multipart():
        return (part.get_content_type(), [tree(p) for p in part.iter_parts()])
    return part.get_content_type()


def leaves(part):
    """The non-multipart parts of a message, in order."""
    if part.is_multipart():
        out = []
        for p in part.iter_parts():
            out += leaves(p)
        return out
    return [part]


class _Peer:
    """Common start/stop plumbing of a peer process that writes a ready file."""

    name = "peer"
    proc = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def stop(self):
        if self.proc is not None:
            self.returncode = _stop_process(self.proc)

    def stderr_text(self):
        path = getattr(self.proc, "stderr_path", None)
        if path and os.path.exists(path):
            with open(path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        return ""

    def _wait_ready(self, ready):
        wait_for(lambda: os.path.exists(ready), START_TIMEOUT, self.name, self.proc)
        return _read_json_file(ready)


class Aiosmtpd(_Peer):
    """tests/servers/smtpd.py (aiosmtpd) as a context manager.

    Keyword options (all optional), mapped to smtpd.py's command line:
      port=N                  default 0: the server picks a free port (no race)
      starttls=CA|(cert,key)  offer STARTTLS (a make_ca() result works)
      require_starttls=True   530 until STARTTLS
      implicit_tls=CA|(cert,key)  TLS from the first byte (like port 465)
      auth="u:p" | ["u:p", ...] | {"u": "p"}   accepted credentials
      auth_mechs="PLAIN,LOGIN"  mechanisms offered (default both)
      xoauth2="u:token" | [...] | {"u": "token"}  static XOAUTH2 bearer tokens
      auth_required=True      530 5.7.0 for MAIL without AUTH
      refuse_rcpt=REGEX       550 5.1.1 ... User unknown
      tempfail_rcpt=REGEX     450 4.2.0 ...
      refuse_mail=REGEX       550 5.7.1 ... Sender address rejected
      refuse_data=True        554 5.6.0 Message rejected
      smtputf8=False          do not advertise SMTPUTF8 (default: advertise)
      close_after=N           close the connection after the Nth message's reply
      max_size=N              advertise/enforce SIZE N (0 = none; default 32 MiB)
      timeout=S               idle timeout per connection
    Attributes: .port, .host ("127.0.0.1"), .spool, .log_path, .returncode
    """

    name = "aiosmtpd"

    def __init__(self, **options):
        self.options = options
        self.dir = mkdtemp("aiosmtpd")
        self.spool = os.path.join(self.dir, "spool")
        self.log_path = os.path.join(self.dir, "commands.log")
        self.ready = os.path.join(self.dir, "ready.json")
        self.host = "127.0.0.1"
        self.port = None

    def argv(self):
        o = dict(self.options)
        argv = [PYTHON, os.path.join(SERVERS, "smtpd.py"), "--port", str(o.pop("port", 0) or 0),
                "--spool", self.spool, "--log", self.log_path, "--ready", self.ready]
        for key, value in o.items():
            flag = "--" + key.replace("_", "-")
            if key == "smtputf8":
                argv.append("--smtputf8" if value else "--no-smtputf8")
            elif key in ("starttls", "implicit_tls"):
                if value:
                    argv += [flag] + _cert_pair(value)
            elif key in ("auth", "xoauth2"):
                if isinstance(value, dict):
                    value = ["%s:%s" % kv for kv in value.items()]
                elif isinstance(value, str):
                    value = [value]
                for v in value:
                    argv += [flag, v]
            elif value is True:
                argv.append(flag)
            elif value is False or value is None:
                pass
            else:
                argv += [flag, str(value)]
        return argv

    def start(self):
        self.proc = _start_process(self.argv(), "aiosmtpd-proc")
        self.port = self._wait_ready(self.ready)["port"]
        return self

    def messages(self):
        """Accepted messages, oldest first: dicts with the spool record's keys
        (mail_from, rcpt_tos, mail_options, rcpt_options, tls, auth_login,
        smtputf8, connection, queue_id), plus "envelope" (those envelope keys
        again, grouped), "raw" (bytes) and "msg" (email.message.EmailMessage)."""
        return _spool_messages(os.path.join(self.spool, "[0-9]*.json"),
                               ("mail_from", "rcpt_tos", "mail_options", "rcpt_options",
                                "smtputf8"))

    def wait_messages(self, n, timeout=10):
        """Wait until at least n messages were accepted; return them."""
        wait_for(lambda: len(self.messages()) >= n, timeout,
                 "aiosmtpd: %d message(s)" % n, self.proc)
        return self.messages()

    def log_lines(self):
        """Lines the server received outside DATA, as str (undecodable bytes
        replaced), plus CONNECT/CONNECT-TLS/TLS-START/TLS-DONE/TLS-FAILED/
        DISCONNECT markers."""
        if not os.path.exists(self.log_path):
            return []
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace").splitlines()

    def commands(self):
        """log_lines() without the markers, verbs upper-cased: ["EHLO x", "MAIL FROM:<a>", ...]"""
        out = []
        for line in self.log_lines():
            if line in MARKERS:
                continue
            verb, sep, rest = line.partition(" ")
            out.append(verb.upper() + sep + rest)
        return out


MARKERS = {"CONNECT", "CONNECT-TLS", "TLS-START", "TLS-DONE", "TLS-FAILED", "DISCONNECT"}


class SmtpSink(_Peer):
    """Postfix's smtp-sink on 127.0.0.1 (``man smtp-sink``).

    options: a list of extra smtp-sink arguments, e.g. ["-Q", "RCPT"] (421 and
    disconnect after RCPT), ["-f", "DATA"] (5xx for DATA), ["-r", "MAIL"]
    (4xx for MAIL), ["-q", "."] (hang up after the final dot), ["-w", "5"].
    dump=True (default) captures each message with -d into .dump_dir;
    -u nobody is added when running as root.  port=None picks a free port
    (retried if another process took it meanwhile).  Attributes: .port, .host
    """

    name = "smtp-sink"

    def __init__(self, options=(), dump=True, port=None, hostname="smtp-sink.test"):
        self.options = list(options)
        self.dump = dump
        self.want_port = port
        self.hostname = hostname
        self.host = "127.0.0.1"
        self.port = None
        self.dir = mkdtemp("smtp-sink")
        self.dump_dir = os.path.join(self.dir, "dump")
        os.makedirs(self.dump_dir)
        os.chmod(self.dump_dir, 0o777)

    @staticmethod
    def available():
        return os.access(SMTP_SINK, os.X_OK)

    def start(self):
        if not self.available():
            raise Skip("postfix smtp-sink not installed (%s)" % SMTP_SINK)
        for attempt in range(5):
            port = self.want_port or free_port()
            argv = [SMTP_SINK, "-h", self.hostname]
            if os.geteuid() == 0:
                argv += ["-u", "nobody"]
            if self.dump:
                argv += ["-d", os.path.join(self.dump_dir, "%Y%m%d%H%M%S.")]
            argv += self.options + ["inet:127.0.0.1:%d" % port, "16"]
            self.proc = _start_process(argv, "smtp-sink-proc")
            try:
                wait_for(lambda: _tcp_listening(port), START_TIMEOUT, "smtp-sink", self.proc)
                self.port = port
                return self
            except AssertionError:
                _stop_process(self.proc)
                if self.want_port or "in use" not in self.stderr_text():
                    raise
        raise AssertionError("smtp-sink: no free port after 5 attempts")

    def dumps(self):
        """Captured messages, oldest first: dicts with "envelope" ({"mail_args",
        "rcpt_args", "helo"} from smtp-sink's X- headers), "raw" (the message
        as the client sent it, smtp-sink's own headers removed, LF line ends
        as smtp-sink writes them) and "msg" (parsed)."""
        files = [f for f in glob.glob(os.path.join(self.dump_dir, "*"))
                 if os.path.isfile(f)]
        files.sort(key=lambda f: (os.stat(f).st_mtime_ns, f))
        out = []
        for path in files:
            with open(path, "rb") as f:
                data = f.read()
            lines = data.split(b"\n")
            env = {"mail_args": None, "rcpt_args": [], "helo": None}
            i = 0
            while i < len(lines):
                line = lines[i]
                if line.startswith(b"X-Mail-Args: "):
                    env["mail_args"] = line[13:].decode("utf-8", "replace")
                elif line.startswith(b"X-Rcpt-Args: "):
                    env["rcpt_args"].append(line[13:].decode("utf-8", "replace"))
                elif line.startswith(b"X-Helo-Args: "):
                    env["helo"] = line[13:].decode("utf-8", "replace")
                elif line.startswith(b"Received: "):
                    i += 3  # smtp-sink's three-line Received: header ends its part
                    break
                i += 1
            raw = b"\n".join(lines[i:])
            if raw.endswith(b"\n\n"):
                raw = raw[:-1]  # the empty line smtp-sink appends
            out.append({"envelope": env, "raw": raw, "msg": parse_message(raw), "path": path})
        return out

    messages = dumps

    def wait_dumps(self, n, timeout=10):
        wait_for(lambda: len(self.dumps()) >= n, timeout, "smtp-sink: %d dump(s)" % n,
                 self.proc)
        return self.dumps()


class Silent(_Peer):
    """tests/servers/silent.py: accepts TCP connections and never speaks.
    Attributes: .port, .host, .log_lines() (CONNECT / RECEIVED n / DISCONNECT)."""

    name = "silent"

    def __init__(self, port=0):
        self.want_port = port
        self.dir = mkdtemp("silent")
        self.ready = os.path.join(self.dir, "ready.json")
        self.log_path = os.path.join(self.dir, "events.log")
        self.host = "127.0.0.1"
        self.port = None

    def start(self):
        self.proc = _start_process([PYTHON, os.path.join(SERVERS, "silent.py"),
                                    "--port", str(self.want_port), "--ready", self.ready,
                                    "--log", self.log_path], "silent-proc")
        self.port = self._wait_ready(self.ready)["port"]
        return self

    def log_lines(self):
        if not os.path.exists(self.log_path):
            return []
        with open(self.log_path) as f:
            return f.read().splitlines()


class Faulty(_Peer):
    """tests/servers/faulty_smtpd.py: a scripted misbehaving SMTP server;
    args are its command line (e.g. "--at", "mail=stall", "--max-sessions",
    "2"). Its event log counts connections; messages() is what it accepted,
    as Aiosmtpd.messages() gives it."""

    name = "faulty_smtpd"

    def __init__(self, *args):
        self.args = [str(a) for a in args]
        self.dir = mkdtemp("faulty")
        self.log_path = os.path.join(self.dir, "events.log")
        self.ready = os.path.join(self.dir, "ready.json")
        self.spool = os.path.join(self.dir, "spool")
        self.host = "127.0.0.1"

    def start(self):
        argv = [PYTHON, os.path.join(SERVERS, "faulty_smtpd.py"), "--log", self.log_path,
                "--ready", self.ready, "--spool", self.spool, "--lifetime", "300"] + self.args
        self.proc = _start_process(argv, "faulty-proc")
        self.port = self._wait_ready(self.ready)["port"]
        return self

    def events(self):
        if not os.path.exists(self.log_path):
            return []
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()

    def connections(self):
        return sum(1 for e in self.events() if e.startswith("CONNECT "))

    def messages(self):
        """Accepted messages, oldest first: dicts with the spool record's keys
        (mail_from, rcpt_tos, connection, queue_id) plus "envelope", "raw"
        and "msg", as Aiosmtpd.messages()."""
        return _spool_messages(os.path.join(self.spool, "[0-9]*.json"), ("mail_from", "rcpt_tos"))


class HttpEndpoint(_Peer):
    """tests/servers/http_endpoint.py: an HTTP/1.1 endpoint that records
    every request and answers as told (the http delivery plugin's peer).

    plan: the answers to give first, in order (actions: {"status",
    "retry_after", "delay", "close", "body"}); default: the answer after
    them ({"status": 200}); per_key: the plan applies to each
    Idempotency-Key on its own; tls: a make_ca() result (HTTPS with its
    chain); lifetime: seconds after which it exits whatever happens (it
    also exits when this process is gone); the default outlives every
    bounded wait of the longest test (a kill -9 under load), so that a slow
    run fails on what it waited for, not on an endpoint gone.  Attributes:
    .port, .host, .record (its JSON Lines file)."""

    name = "http_endpoint"

    def __init__(self, plan=None, default=None, per_key=False, tls=None, lifetime=30 * TIMEOUT):
        self.dir = mkdtemp("endpoint")
        self.record = os.path.join(self.dir, "requests.jsonl")
        self.ready = os.path.join(self.dir, "ready.json")
        self.scheme = "https" if tls else "http"
        self.host = "127.0.0.1"
        self.port = None
        self.argv = [PYTHON, os.path.join(SERVERS, "http_endpoint.py"), "--record", self.record,
                     "--ready", self.ready, "--plan", json.dumps(plan or []),
                     "--lifetime", str(lifetime)]
        if default is not None:
            self.argv += ["--default", json.dumps(default)]
        if per_key:
            self.argv.append("--per-key")
        if tls:
            self.argv += ["--tls", tls.chain, tls.key]

    def start(self):
        self.proc = _start_process(self.argv, "endpoint-proc")
        self.port = self._wait_ready(self.ready)["port"]
        return self

    def url(self, path="/hook"):
        return "%s://127.0.0.1:%d%s" % (self.scheme, self.port, path)

    def requests(self):
        """Every request so far, oldest first: dicts with time, method,
        path, headers ([[name, value], ...]), body, status (what was or is
        being answered; None for a closed connection), peer (client port).
        A line still being written is not one yet."""
        if not os.path.exists(self.record):
            return []
        with open(self.record) as f:
            return [json.loads(line) for line in f if line.endswith("\n")]

    def wait(self, n, timeout=TIMEOUT, what=None):
        """At least n requests, within timeout (fails at once if the
        endpoint died); returns them all."""
        wait_for(lambda: len(self.requests()) >= n, timeout,
                 "http_endpoint: %s" % (what or "%d request(s)" % n), self.proc)
        return self.requests()

    def control(self, plan=None, default=None, per_key=False):
        """Replace the plan, default and per_key from now on."""
        import urllib.request
        body = json.dumps({"plan": plan or [], "default": default, "per_key": per_key}).encode()
        if self.scheme == "https":
            raise AssertionError("control() speaks plain HTTP; this endpoint is HTTPS")
        req = urllib.request.Request("http://127.0.0.1:%d/__control" % self.port, data=body,
                                     method="PUT")
        with urllib.request.urlopen(req, timeout=5) as r:
            eq(r.status, 204, "http_endpoint control answer")


class OAuthPeers(_Peer):
    """tests/servers/oauth-peers.js: an OAuth 2.0 server (oauth2-mock-server)
    and an smtp-server offering AUTH PLAIN LOGIN XOAUTH2 that accepts only
    unexpired tokens the mock issued.

    Options: client_id, client_secret (the only client the token endpoint
    accepts), token_ttl=S (access token lifetime, default 3600),
    token_fault=None|"500"|"nonjson" (token endpoint misbehaves),
    user="u:pass" or list (PLAIN/LOGIN credentials), starttls=CA|(cert,key)
    (offer STARTTLS; AUTH and MAIL only after it), require_auth=True (default:
    530 for MAIL without AUTH).
    Attributes: .oauth_url (issuer), .token_url, .auth_url, .jwks_url,
    .smtp_port, .oauth_port, .port (= smtp_port), .host
    Methods: .messages(), .auth_attempts(), .token_requests(), .fetch_token(),
    .set_token_fault(mode)
    """

    name = "oauth-peers"

    def __init__(self, client_id="test-client", client_secret="test-secret", token_ttl=None,
                 token_fault=None, user=None, starttls=None, require_auth=True):
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_ttl = token_ttl
        self.token_fault = token_fault
        self.users = [user] if isinstance(user, str) else list(user or [])
        self.starttls = starttls
        self.require_auth = require_auth
        self.dir = mkdtemp("oauth")
        self.spool = os.path.join(self.dir, "spool")
        self.ready = os.path.join(self.dir, "ready.json")
        self.fault_file = os.path.join(self.dir, "token-fault")
        self.host = "127.0.0.1"

    def set_token_fault(self, mode):
        """From now on the token endpoint answers "500" or "nonjson"; None: normal again."""
        if mode is None:
            if os.path.exists(self.fault_file):
                os.unlink(self.fault_file)
        else:
            with open(self.fault_file + ".tmp", "w") as f:
                f.write(mode)
            os.replace(self.fault_file + ".tmp", self.fault_file)

    @staticmethod
    def node_modules():
        """tests/node_modules, or $SMTP_CONNECTOR_NODE_MODULES (make
        distcheck: a source tree unpacked from the tarball has none)."""
        return os.environ.get("SMTP_CONNECTOR_NODE_MODULES") or os.path.join(TESTS, "node_modules")

    @classmethod
    def available(cls):
        return (os.path.isdir(os.path.join(cls.node_modules(), "smtp-server"))
                and os.path.isdir(os.path.join(cls.node_modules(), "oauth2-mock-server"))
                and os.access(NODE, os.X_OK))

    def script(self):
        """oauth-peers.js where Node finds the modules: import() looks
        only in node_modules beside the script and above it."""
        here = os.path.join(SERVERS, "oauth-peers.js")
        if os.path.realpath(self.node_modules()) == os.path.realpath(os.path.join(TESTS, "node_modules")):
            return here
        d = mkdtemp("oauth-script")
        shutil.copyfile(here, os.path.join(d, "oauth-peers.js"))
        os.symlink(self.node_modules(), os.path.join(d, "node_modules"))
        return os.path.join(d, "oauth-peers.js")

    def start(self):
        if not self.available():
            raise Skip("tests/node_modules absent (run npm ci in tests/)")
        argv = [NODE, self.script(), "--oauth-port", "0",
                "--smtp-port", "0", "--spool", self.spool, "--ready", self.ready,
                "--client-id", self.client_id, "--client-secret", self.client_secret]
        if self.token_ttl is not None:
            argv += ["--token-ttl", str(self.token_ttl)]
        if self.token_fault:
            argv += ["--token-fault", self.token_fault]
        argv += ["--token-fault-file", self.fault_file]
        for u in self.users:
            argv += ["--user", u]
        if self.starttls:
            argv += ["--starttls"] + _cert_pair(self.starttls)
        if not self.require_auth:
            argv.append("--auth-optional")
        self.proc = _start_process(argv, "oauth-proc", cwd=TESTS)
        info = self._wait_ready(self.ready)
        self.oauth_url = info["oauth_url"]
        self.token_url = info["token_url"]
        self.auth_url = info["auth_url"]
        self.jwks_url = info["jwks_url"]
        self.smtp_url = info["smtp_url"]
        self.oauth_port = info["oauth_port"]
        self.smtp_port = self.port = info["smtp_port"]
        return self

    def _records(self, prefix):
        out = []
        for path in sorted(glob.glob(os.path.join(self.spool, prefix + "-*.json"))):
            out.append(_read_json_file(path))
        return out

    def messages(self):
        """Accepted messages: spool records (mail_from, rcpt_tos, tls,
        auth_login, auth_method...) plus "raw" and "msg" as Aiosmtpd.messages()."""
        return _spool_messages(os.path.join(self.spool, "msg-*.json"), ("mail_from", "rcpt_tos"))

    def auth_attempts(self):
        """Every AUTH attempt: {"method", "user", "ok", "reason", "tls"} (never a token)."""
        return self._records("auth")

    def token_requests(self):
        """Every token endpoint request: {"grant_type", "client_auth" ("basic",
        "post" or "none"), "client_id", "ok", "status", "scope"}."""
        return self._records("token")

    def fetch_token(self, grant_type="client_credentials", scope=None, basic=True,
                    client_id=None, client_secret=None, **form):
        """POST to the token endpoint with urllib, authenticating as this
        client (or client_id/client_secret) with HTTP Basic or, basic=False,
        in the form body; extra form fields as keywords (code=, redirect_uri=,
        code_verifier=, refresh_token=).  Returns (status, parsed-or-text body)."""
        import urllib.error
        import urllib.parse
        import urllib.request
        cid = self.client_id if client_id is None else client_id
        secret = self.client_secret if client_secret is None else client_secret
        fields = {"grant_type": grant_type}
        if scope:
            fields["scope"] = scope
        fields.update(form)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if basic:
            cred = "%s:%s" % (urllib.parse.quote_plus(cid), urllib.parse.quote_plus(secret))
            headers["Authorization"] = "Basic " + base64.b64encode(cred.encode()).decode()
        else:
            fields.setdefault("client_id", cid)
            fields.setdefault("client_secret", secret)
        req = urllib.request.Request(self.token_url, data=urllib.parse.urlencode(fields).encode(),
                                     headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status, body = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read()
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body.decode("utf-8", "replace")


# --------------------------------------------------------------------------
# the connector

def vault(files):
    """A new vault_dir: files maps id -> bytes, or (bytes, meta dict) to
    write the metadata next to it as <id>.json."""
    d = mkdtemp("vault")
    for vid, spec in files.items():
        content, meta = spec if isinstance(spec, tuple) else (spec, None)
        with open(os.path.join(d, vid), "wb") as f:
            f.write(content)
        if meta is not None:
            with open(os.path.join(d, vid + ".json"), "w") as f:
                json.dump(meta, f)
    return d


class Run:
    """What run_connector() saw: rc, stdout, stderr (str), results (parsed
    JSON lines of stdout), bad_lines (stdout lines that were not JSON), argv."""

    def __init__(self, argv, rc, stdout, stderr):
        self.argv = argv
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.results = []
        self.bad_lines = []
        for line in stdout.splitlines():
            if not line.strip():
                continue
            try:
                self.results.append(json.loads(line))
            except ValueError:
                self.bad_lines.append(line)

    @property
    def result(self):
        """The one result; fails unless stdout held exactly one JSON line."""
        if len(self.results) != 1 or self.bad_lines:
            raise AssertionError("expected exactly one JSON result line on stdout\n%s" % self)
        return self.results[0]

    def __str__(self):
        return ("  command: %s\n  exit status: %s\n  stdout: %s\n  stderr: %s"
                % (" ".join(shlex.quote(a) for a in self.argv), self.rc,
                   self.stdout.rstrip().replace("\n", "\n          "),
                   self.stderr.rstrip().replace("\n", "\n          ")))

    __repr__ = __str__


def connector_path():
    """The binary under test: $SMTP_CONNECTOR (absolute; set by make check).
    Skips the test when unset."""
    path = os.environ.get("SMTP_CONNECTOR")
    if not path:
        raise Skip("SMTP_CONNECTOR not set (run via make check, or export it)")
    if not os.access(path, os.X_OK):
        raise AssertionError("SMTP_CONNECTOR=%s is not an executable file" % path)
    return path


def run_connector(request=None, args=(), env=None, stdin_text=None, timeout=60):
    """Run the connector with request on stdin and return a Run.

    request: a dict (sent as one JSON object) or a list of dicts (JSON Lines);
    stdin_text: raw text sent instead (for malformed input).  args: extra
    command-line arguments.  env: variables to add (None as a value removes
    one); SMTP_CONNECTOR_STATE_DIR defaults to tmpdir()/state so tests do not
    share OAuth tokens or throttle state unless they pass the same dir.
    $SMTP_CONNECTOR_WRAPPER (e.g. "valgrind -q --error-exitcode=99") is
    prepended to the command when set.  Fails the test on timeout."""
    if stdin_text is None:
        if request is None:
            stdin_text = ""
        elif isinstance(request, (list, tuple)):
            stdin_text = "".join(json.dumps(r) + "\n" for r in request)
        else:
            stdin_text = json.dumps(request) + "\n"
    argv, rc, out, err = run_connector_bytes(stdin_text.encode("utf-8", "surrogateescape"),
                                             args, env, timeout)
    return Run(argv, rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


def run_connector_bytes(data, args=(), env=None, timeout=60):
    """run_connector() with stdin and the outputs as bytes, for a test of
    what bytes go in and come out: (argv, rc, stdout, stderr).  Its result
    lines are checked against schemas/result.json all the same."""
    binary = connector_path()
    full_env = dict(os.environ)
    full_env.setdefault("SMTP_CONNECTOR_STATE_DIR", os.path.join(tmpdir(), "state"))
    for k, v in (env or {}).items():
        if v is None:
            full_env.pop(k, None)
        else:
            full_env[k] = str(v)
    wrapper = shlex.split(os.environ.get("SMTP_CONNECTOR_WRAPPER", ""))
    argv = wrapper + [binary] + [str(a) for a in args]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=full_env, start_new_session=True)
    try:
        out, err = proc.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError("connector did not finish within %s s\n%s" % (
            timeout, Run(argv, None, out.decode("utf-8", "replace"),
                         err.decode("utf-8", "replace"))))
    check_results(Run(argv, proc.returncode, out.decode("utf-8", "replace"),
                      err.decode("utf-8", "replace")))
    return argv, proc.returncode, out, err


_result_validator = None


def check_results(run_):
    """Every result line of every action validates against schemas/result.json
    (python3-jsonschema): the contract is checked on each run, not on a sample.
    Lines of other documents (--list, authorize set-up output) are left alone."""
    global _result_validator
    if _result_validator is None:
        import jsonschema
        with open(os.path.join(SRCDIR, "schemas", "result.json"), encoding="utf-8") as f:
            schema = json.load(f)
        _result_validator = jsonschema.Draft202012Validator(schema)
    for res in run_.results:
        if isinstance(res, dict) and "action_results" in res:
            errors = sorted(_result_validator.iter_errors(res), key=lambda e: list(e.path))
            if errors:
                raise AssertionError("result does not match schemas/result.json: %s at %s\n%s"
                                     % (errors[0].message, "/".join(map(str, errors[0].path)),
                                        run_))


def asset(port, **kw):
    """An asset dict: server 127.0.0.1, the port, ssl_config "None", plus kw."""
    a = {"server": "127.0.0.1", "port": port, "ssl_config": "None"}
    a.update(kw)
    return a


def action_result(r):
    """The one action result of r: a Run (its one result line) or a result
    line already parsed (one of Run.results)."""
    res = r.result if isinstance(r, Run) else r
    ars = res.get("action_results", [])
    eq(len(ars), 1, "number of action_results\n%s" % r)
    return ars[0]


def message_of(r):
    """The message of r's one action result (r as action_result() takes it)."""
    return action_result(r)["message"]


def data0(r):
    """data[0] of an action result: r is a Run, a result line, or an action
    result itself."""
    ar = r if isinstance(r, dict) and "data" in r else action_result(r)
    data = ar.get("data")
    true(isinstance(data, list) and data, "data is a non-empty list", r)
    return data[0]


VERIFIER_PATH = os.path.join(SRCDIR, "doc", "verify_signature.py")
_verifier = None


def verifier():
    """doc/verify_signature.py (VERIFIER_PATH), the receivers' verifier, as
    a module (loaded once; test_signatures.py checks it against
    `smtp-connector verify`)."""
    global _verifier
    if _verifier is None:
        import importlib.util
        spec = importlib.util.spec_from_file_location("verify_signature", VERIFIER_PATH)
        _verifier = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(_verifier)
    return _verifier


# --------------------------------------------------------------------------
# assertions

class Skip(Exception):
    """Raised by skip(); the runner reports the test as ok # SKIP reason."""


def skip(reason):
    raise Skip(reason)


def _short(x, limit=2000):
    s = repr(x)
    return s if len(s) <= limit else s[:limit] + "...(%d chars)" % len(s)


def eq(actual, expected, what="value"):
    if actual != expected:
        raise AssertionError("%s: expected %s, got %s" % (what, _short(expected), _short(actual)))


def ne(actual, unexpected, what="value"):
    if actual == unexpected:
        raise AssertionError("%s: expected anything but %s" % (what, _short(unexpected)))


def true(cond, what="condition", context=None):
    if not cond:
        raise AssertionError("%s is false%s" % (what, "\n" + str(context) if context else ""))


def contains(haystack, needle, what=None):
    if needle not in haystack:
        raise AssertionError("%s: %s not found in %s" % (what or "contains", _short(needle),
                                                          _short(haystack)))


def not_contains(haystack, needle, what=None):
    if needle in haystack:
        raise AssertionError("%s: %s unexpectedly found in %s" % (
            what or "not_contains", _short(needle), _short(haystack)))


def raises(exc_type, fn, *args, **kw):
    """Call fn; fail unless it raises exc_type; return the exception."""
    try:
        fn(*args, **kw)
    except exc_type as e:
        return e
    raise AssertionError("%s did not raise %s" % (getattr(fn, "__name__", fn),
                                                  exc_type.__name__))


# --------------------------------------------------------------------------
# the TAP runner

THREAD_GRACE = 10.0  # seconds a test's own threads get to end after it returns


def _end_of_test(procs_before, threads_before):
    """What a test leaves behind, whether it passed or not: every process it
    started and did not stop is stopped now (so a failure mid-test cannot
    leave a peer or a listener running into the next test), and a thread
    it started that is still running after THREAD_GRACE fails it: Python
    waits for such a thread at exit, so it would hang the whole file
    instead of failing one test."""
    for proc in [p for p in _processes if p not in procs_before]:
        _stop_process(proc)
    left = [t for t in threading.enumerate()
            if t not in threads_before and t.is_alive() and not t.daemon]
    deadline = time.monotonic() + THREAD_GRACE
    for t in left:
        t.join(max(deadline - time.monotonic(), 0))
    left = [t.name for t in left if t.is_alive()]
    if left:
        raise AssertionError("the test left thread(s) running %.0f s after it returned: %s "
                             "(every loop of a test thread must be bounded)"
                             % (THREAD_GRACE, ", ".join(left)))

def run(namespace):
    """Run the test_* functions of namespace (pass globals()) in definition
    order and print TAP.  Command-line arguments, if any, select tests by
    name (substring).  Always exits 0: the TAP driver counts the results.
    HARNESS_NO_SKIP=1 (set by .ci/run, where every peer is installed)
    reports a skipped test as failed."""
    global _current_test_dir
    tests = [(name, fn) for name, fn in namespace.items()
             if name.startswith("test_") and callable(fn)
             and getattr(fn, "__module__", None) == namespace.get("__name__")]
    tests.sort(key=lambda t: getattr(getattr(t[1], "__code__", None), "co_firstlineno", 0))
    wanted = [a for a in sys.argv[1:] if not a.startswith("-")]
    if wanted:
        tests = [t for t in tests if any(w in t[0] for w in wanted)]
    # a runner stopped with SIGTERM (e.g. a make check timeout) still stops its peers
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    out = sys.stdout
    out.write("1..%d\n" % len(tests))
    out.flush()
    passed = failed = skipped = 0
    for n, (name, fn) in enumerate(tests, 1):
        _current_test_dir = None
        started = time.monotonic()
        procs_before = list(_processes)
        threads_before = set(threading.enumerate())
        try:
            try:
                fn()
            finally:
                _end_of_test(procs_before, threads_before)
        except Skip as e:
            if os.environ.get("HARNESS_NO_SKIP") == "1":
                # CI installs every peer: a skip there would be a silent pass
                failed += 1
                out.write("not ok %d - %s\n# skipped, but HARNESS_NO_SKIP=1: %s\n"
                          % (n, name, str(e).replace("\n", " ")))
            else:
                skipped += 1
                out.write("ok %d - %s # SKIP %s\n" % (n, name, str(e).replace("\n", " ")))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # noqa: B902 - report everything, keep going
            failed += 1
            out.write("not ok %d - %s\n" % (n, name))
            for line in traceback.format_exc().rstrip().splitlines():
                out.write("# %s\n" % line)
        else:
            passed += 1
            out.write("ok %d - %s\n" % (n, name))
            took = time.monotonic() - started
            if took > 2:
                out.write("# %s took %.1f s\n" % (name, took))
        out.flush()
    out.write("# %d passed, %d failed, %d skipped\n" % (passed, failed, skipped))
    out.flush()
    if [t for t in threading.enumerate() if t.is_alive() and not t.daemon
            and t is not threading.main_thread()]:
        # a test failed for a thread it left running: Python would wait for
        # it at exit, forever; stop the peers and leave without it
        _cleanup_root()
        out.write("# exiting with a test's thread still running (its test failed above)\n")
        out.flush()
        os._exit(0)
    sys.exit(0)
