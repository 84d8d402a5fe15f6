#!/usr/bin/python3
"""An HTTP endpoint for the http delivery plugin's tests: records every
request and answers as the test says.

Binds 127.0.0.1 (port 0 by default: any free one); once it listens it
writes the --ready file and prints the port on stdout, one line (for
bench/).  HTTP/1.1 with keep-alive, one thread per connection
(ThreadingHTTPServer).

  --ready FILE    JSON {"port": N, "pid": P}, written atomically once it
                  listens (what tests/integration/harness.py waits for)

  --record FILE   one JSON line per request: time, method, path, headers
                  ([[name, value], ...] as received), body (text; bytes that
                  are not UTF-8 replaced), status (what was answered; null
                  when the connection was closed instead), peer (client port,
                  so a test can see connections being reused), in_flight
                  (requests being answered when it came, itself included)
  --plan JSON     the answers to give first, in order: a list of actions
  --default JSON  the answer once the plan is used up ({"status": 200})
  --per-key       the plan applies to each Idempotency-Key separately (the
                  first answers to each message), not to the requests overall
  --lifetime S    exit after S seconds whatever happens (default 600), and
                  as soon as the process that started it is gone
  --tls CERT KEY  HTTPS: TLS with this certificate chain and key

An action is an object: "status" (int), "retry_after" (the header's value,
seconds or an HTTP-date), "delay" (seconds to wait before answering),
"close" (true: close the connection without answering), "body" (text).

PUT /__control with a JSON object {"plan", "default", "per_key"} replaces
them at run time (not recorded; answers 204).  SIGTERM stops it (exit 0).
"""

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class State:
    def __init__(self, record, plan, default, per_key):
        self.lock = threading.Lock()
        self.record = record
        self.in_flight = 0
        self.configure(plan, default, per_key)

    def configure(self, plan, default, per_key):
        self.plan = list(plan or [])
        self.default = default or {"status": 200}
        self.per_key = bool(per_key)
        self.used = {}  # key -> answers given from the plan
        self.count = 0

    def action(self, key):
        with self.lock:
            if self.per_key:
                n = self.used.get(key, 0)
                self.used[key] = n + 1
            else:
                n = self.count
                self.count += 1
            return self.plan[n] if n < len(self.plan) else self.default

    def write(self, entry):
        line = json.dumps(entry) + "\n"
        with self.lock:
            with open(self.record, "a") as f:
                f.write(line)
                f.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "http_endpoint/1"

    def log_message(self, fmt, *args):  # keep stderr for real trouble
        pass

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _answer(self, status, headers=(), body=b""):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_PUT(self):
        body = self._body()
        if self.path != "/__control":
            return self._answer(405)
        c = json.loads(body)
        st = self.server.state
        with st.lock:
            st.configure(c.get("plan"), c.get("default"), c.get("per_key"))
        self._answer(204)

    def do_POST(self):
        body = self._body()
        st = self.server.state
        with st.lock:
            st.in_flight += 1
            in_flight = st.in_flight
        try:
            self._post(st, body, in_flight)
        finally:
            with st.lock:
                st.in_flight -= 1

    def _post(self, st, body, in_flight):
        act = st.action(self.headers.get("Idempotency-Key", ""))
        entry = {"time": time.time(), "method": self.command, "path": self.path,
                 "headers": [[k, v] for k, v in self.headers.items()],
                 "body": body.decode("utf-8", "replace"),
                 "status": None if act.get("close") else act.get("status", 200),
                 "peer": self.client_address[1], "in_flight": in_flight}
        st.write(entry)
        if act.get("delay"):
            time.sleep(float(act["delay"]))
        if act.get("close"):
            self.close_connection = True
            return
        headers = []
        if "retry_after" in act:
            headers.append(("Retry-After", str(act["retry_after"])))
        self._answer(int(act.get("status", 200)), headers,
                     act.get("body", "").encode("utf-8"))

    do_GET = do_POST


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # a client that resets its connection (a killed listener) is a
        # test scenario, not an endpoint failure
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def watch(srv, lifetime):
    """Bounded: shut down at the end of the lifetime, or at once when the
    process that started it is gone (a test runner killed mid-test must
    not leave an endpoint behind)."""
    parent = os.getppid()
    deadline = time.monotonic() + lifetime
    while os.getppid() == parent and time.monotonic() < deadline:
        time.sleep(0.5)
    srv.shutdown()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--record", required=True)
    ap.add_argument("--plan", default="[]")
    ap.add_argument("--default", default='{"status": 200}')
    ap.add_argument("--per-key", action="store_true")
    ap.add_argument("--lifetime", type=float, default=600)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--ready")
    a = ap.parse_args()
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    if a.tls:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls[0], a.tls[1])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.state = State(a.record, json.loads(a.plan), json.loads(a.default), a.per_key)
    open(a.record, "a").close()
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    threading.Thread(target=watch, args=(srv, a.lifetime), daemon=True).start()
    if a.ready:
        tmp = a.ready + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"port": srv.server_address[1], "pid": os.getpid()}, f)
        os.replace(tmp, a.ready)
    sys.stdout.write("%d\n" % srv.server_address[1])
    sys.stdout.flush()
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
