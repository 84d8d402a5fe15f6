#!/usr/bin/python3
"""Requests on stdin are streamed (doc/interface.md, "Reading stdin"):

  - a request written while the pipe stays open gets its result line before
    stdin is closed (a platform may write a request and wait for it), also a
    pretty-printed one;
  - a JSON Lines line that is not JSON gets its own exit-2 result between
    the results of its neighbours, and reading resumes on the next line;
  - a pretty-printed object and JSON Lines mix, several objects may share a
    line, and a document cut off by the end of the input "ends too early";
  - memory stays flat with the length of the batch: peak RSS (VmHWM) for
    2,000 requests is within 2 MiB of that for 200.
"""
import json
import os
import shlex
import signal
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (TIMEOUT, Aiosmtpd, LineReader, asset, connector_path,  # noqa: E402
                     contains, eq, free_port, run, run_connector, tmpdir, true)

TC = "test connectivity"


class Connector:
    """The connector with stdin and stdout as pipes we drive line by line."""

    def __init__(self):
        env = dict(os.environ)
        env.setdefault("SMTP_CONNECTOR_STATE_DIR", os.path.join(tmpdir(), "state"))
        wrapper = shlex.split(os.environ.get("SMTP_CONNECTOR_WRAPPER", ""))
        self.argv = wrapper + [connector_path()]
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env, start_new_session=True)
        self.out = LineReader(self.proc, lambda: " (%s)" % " ".join(self.argv))

    def write(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def readline(self, timeout=TIMEOUT, what="a result line"):
        """One line of stdout as JSON, or fail after timeout seconds."""
        return json.loads(self.out.line(timeout, what + " with stdin still open"))

    def peak_rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        raise AssertionError("no VmHWM in /proc/%d/status" % self.proc.pid)

    def sanitized(self):
        """Under ASan (its quarantine keeps freed memory) RSS says nothing."""
        with open("/proc/%d/maps" % self.proc.pid) as f:
            return "libasan" in f.read()

    def close(self):
        """Close stdin; return the exit status and the rest of stdout."""
        self.proc.stdin.close()
        try:
            # bounded: a connector that keeps stdout open fails here, not hangs
            rest = self.out.rest(TIMEOUT, "the rest of stdout after stdin was closed")
            rc = self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            raise AssertionError("the connector did not exit after stdin was closed")
        finally:
            self.proc.stdout.close()
        return rc, rest

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def bad_to(i=0):
    """A request that fails in the send email plugin before any connection."""
    return {"action": "send email",
            "asset": asset(free_port(), auth_type="Passwordless", sender_address="s@corp.example"),
            "parameters": {"to": "not an address %d" % i, "body": "x"}}


def message(res):
    return res["action_results"][0]["message"] if res["action_results"] else res["message"]


def test_answers_before_stdin_is_closed():
    with Aiosmtpd() as srv:
        ok = {"action": TC, "asset": asset(srv.port, auth_type="Passwordless")}
        c = Connector()
        try:
            c.write(json.dumps(ok) + "\n")
            r1 = c.readline(what="the first result")
            eq(r1["status"], "success", "first result\n%s" % r1)
            eq(c.proc.poll(), None, "still running, waiting for more")
            c.write(json.dumps(bad_to(2)) + "\n")
            r2 = c.readline(what="the second result")
            eq(r2["status"], "failed", "second result")
            contains(message(r2), "not an address 2", "second result's message")
            # a pretty-printed request on the open pipe is answered as well
            c.write(json.dumps(ok, indent=2) + "\n")
            r3 = c.readline(what="the pretty-printed request's result")
            eq(r3["status"], "success", "third result\n%s" % r3)
            rc, rest = c.close()
        finally:
            c.kill()
        eq(rest, b"", "nothing more after stdin was closed")
        eq(rc, 1, "exit status: the worst of 0, 1 and 0")
        true(srv.commands(), "the server was reached")


def test_broken_line_between_two_good_ones():
    with Aiosmtpd() as srv:
        ok = json.dumps({"action": TC, "asset": asset(srv.port, auth_type="Passwordless")})
        r = run_connector(stdin_text=ok + "\n{\"action\": not json\n" + ok + "\n")
        eq(r.rc, 2, "exit status: the worst of 0, 2 and 0\n%s" % r)
        eq([x["status"] for x in r.results], ["success", "failed", "success"], "results\n%s" % r)
        contains(r.results[1]["message"], "not valid JSON at line 2, column 12", "message")
        eq(r.results[1]["action_results"], [], "no action results for the broken line")
        # the same on an open pipe: the broken line is answered at once
        c = Connector()
        try:
            c.write(ok + "\n")
            eq(c.readline()["status"], "success", "first")
            c.write("this is not JSON\n")
            res = c.readline(what="the broken line's result")
            contains(res["message"], "not valid JSON at line 2, column 1, near \"this is not JSON\"",
                     "message")
            c.write(ok + "\n")
            eq(c.readline()["status"], "success", "third")
            rc, rest = c.close()
        finally:
            c.kill()
        eq((rc, rest), (2, b""), "exit status and no further output")


def test_pretty_printed_and_json_lines_mix():
    with Aiosmtpd() as srv:
        ok = {"action": TC, "asset": asset(srv.port, auth_type="Passwordless")}
        bad = bad_to(7)
        text = (json.dumps(ok, indent=2) + "\n" + json.dumps(bad) + "\n"
                + json.dumps(ok) + " " + json.dumps(bad, indent=1) + "\n")
        r = run_connector(stdin_text=text)
        eq(r.rc, 1, "exit status\n%s" % r)
        eq([x["status"] for x in r.results], ["success", "failed", "success", "failed"],
           "results in order\n%s" % r)
        contains(message(r.results[1]), "not an address 7", "the JSON Lines object's result")
        contains(message(r.results[3]), "not an address 7", "the last, pretty-printed object")


def test_cut_off_at_the_end_of_input():
    bad = json.dumps(bad_to(1))
    for cut in ('{"action": "send email", "asset": {\n', '{"action": "send email", "asset": {"ser'):
        r = run_connector(stdin_text=bad + "\n" + cut)
        eq(r.rc, 2, "exit status\n%s" % r)
        eq(len(r.results), 2, "two results\n%s" % r)
        contains(r.results[1]["message"], "ends too early (line 2)", "message")
    # a string left open at the end of a line is not mistaken for the end
    r = run_connector(stdin_text=bad + "\n{\"action\": \"send\n" + bad + "\n")
    eq([x["status"] for x in r.results], ["failed", "failed", "failed"], "results\n%s" % r)
    contains(r.results[1]["message"], "not valid JSON at line 3", "message")


def _peak_rss(n):
    """VmHWM after n requests have all been answered (stdin still open)."""
    lines = "".join(json.dumps(bad_to(i)) + "\n" for i in range(n)).encode()
    c = Connector()
    try:
        # write from a thread: results fill stdout while requests are written
        w = threading.Thread(target=lambda: (c.proc.stdin.write(lines), c.proc.stdin.flush()))
        w.start()
        for i in range(n):
            res = c.readline(what="result %d of %d" % (i + 1, n))
            if i in (0, n - 1):
                contains(message(res), "not an address %d" % i, "result %d" % i)
        w.join()
        kib, asan = c.peak_rss_kib(), c.sanitized()
        rc, rest = c.close()
    finally:
        c.kill()
    eq((rc, rest), (1, b""), "exit status and no further output")
    return kib, asan


def test_memory_is_flat_with_batch_length():
    small, asan = _peak_rss(200)
    large, _ = _peak_rss(2000)
    sys.stdout.write("# peak RSS: %d KiB for 200 requests, %d KiB for 2000\n" % (small, large))
    if asan or os.environ.get("SMTP_CONNECTOR_WRAPPER"):
        return  # ASan's quarantine and valgrind keep freed memory: nothing to compare
    true(large - small <= 2048, "peak RSS grows by %d KiB from 200 to 2000 requests (at most 2048)"
         % (large - small))


if __name__ == "__main__":
    run(globals())
