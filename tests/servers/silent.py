#!/usr/bin/python3
"""A TCP server on 127.0.0.1 that accepts connections and never says a word.

For timeout tests: a client waiting for the SMTP greeting (or a TLS
handshake, with implicit TLS) waits forever.  Connections are held open
until the client closes them or the server stops.

  --port N     port on 127.0.0.1 (0: any free one)
  --ready FILE written as JSON {"port": N, "pid": P} once listening
  --log FILE   one line per event: CONNECT, RECEIVED <n bytes>, DISCONNECT

SIGTERM/SIGINT stop it cleanly (exit 0).
"""

import argparse
import asyncio
import json
import os
import signal
import sys


class Silent(asyncio.Protocol):
    def __init__(self, log):
        self.log = log

    def _write(self, text):
        if self.log:
            with open(self.log, "a") as f:
                f.write(text + "\n")

    def connection_made(self, transport):
        self.transport = transport
        self._write("CONNECT")

    def data_received(self, data):
        self._write("RECEIVED %d" % len(data))

    def connection_lost(self, exc):
        self._write("DISCONNECT")


async def main(argv):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--ready")
    p.add_argument("--log")
    opts = p.parse_args(argv)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Silent(opts.log), host="127.0.0.1",
                                      port=opts.port, reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    parent = os.getppid()

    def watch_parent():  # stop when the test runner that started us is gone
        if os.getppid() != parent:
            stop.set()
        else:
            loop.call_later(1.0, watch_parent)
    loop.call_later(1.0, watch_parent)
    if opts.ready:
        tmp = opts.ready + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"port": port, "pid": os.getpid()}, f)
        os.replace(tmp, opts.ready)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
    sys.exit(0)
