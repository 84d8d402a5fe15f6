#!/usr/bin/python3
"""A TCP relay on 127.0.0.1 that holds every chunk D ms in each direction
(order kept), so a local SMTP server looks like one a network away; and
counts round trips: a "turn" is the server answering after the client
spoke, i.e. one reply the client waited on (pipelined commands answered
together count once, as on a real network).

usage: latency_proxy.py --target PORT [--delay-ms 25] [--max-seconds 600]
                        [--stats FILE]
Prints {"port": N} on stdout when listening. Stops by itself after
--max-seconds, or on SIGTERM/SIGINT; writes {"connections", "turns",
"bytes_up", "bytes_down"} to --stats at exit and on SIGUSR1.
Binds 127.0.0.1 only."""
import argparse
import asyncio
import json
import signal
import sys
import time

STATS = {"connections": 0, "turns": 0, "bytes_up": 0, "bytes_down": 0, "seq": 0}
MAX_CHUNK = 65536
MAX_QUEUE = 4096  # chunks in flight per direction: bounded memory


def write_stats(path):
    STATS["seq"] += 1
    if path:
        with open(path + ".tmp", "w") as f:
            json.dump(STATS, f)
        import os
        os.replace(path + ".tmp", path)


async def pump(reader, writer, delay, up, state):
    """Copy reader -> writer, each chunk released `delay` s after it arrived."""
    q = asyncio.Queue(MAX_QUEUE)

    async def release():
        while True:
            due, data = await q.get()
            if data is None:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        try:
            writer.write_eof()
        except (OSError, RuntimeError):
            pass

    task = asyncio.ensure_future(release())
    try:
        while True:
            data = await reader.read(MAX_CHUNK)
            if not data:
                break
            if up:
                STATS["bytes_up"] += len(data)
                state["client_spoke"] = True
            else:
                STATS["bytes_down"] += len(data)
                if state["client_spoke"] or not state["greeted"]:
                    STATS["turns"] += 1  # the greeting is waited on too
                    state["client_spoke"] = False
                    state["greeted"] = True
            await q.put((time.monotonic() + delay, data))
    except (ConnectionError, OSError):
        pass
    await q.put((0, None))
    await task


async def handle(creader, cwriter, target, delay):
    STATS["connections"] += 1
    try:
        sreader, swriter = await asyncio.open_connection("127.0.0.1", target)
    except OSError:
        cwriter.close()
        return
    state = {"client_spoke": False, "greeted": False}
    await asyncio.gather(pump(creader, swriter, delay, True, state),
                         pump(sreader, cwriter, delay, False, state),
                         return_exceptions=True)
    for w in (cwriter, swriter):
        w.close()


async def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--target", type=int, required=True)
    ap.add_argument("--delay-ms", type=float, default=25.0)
    ap.add_argument("--max-seconds", type=float, default=600.0)
    ap.add_argument("--stats")
    a = ap.parse_args()
    srv = await asyncio.start_server(lambda r, w: handle(r, w, a.target, a.delay_ms / 1000.0),
                                     "127.0.0.1", 0)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, lambda: write_stats(a.stats))
    # the port only once SIGUSR1 is handled: an earlier one would kill us
    print(json.dumps({"port": srv.sockets[0].getsockname()[1]}), flush=True)
    try:
        await asyncio.wait_for(stop.wait(), a.max_seconds)
    except asyncio.TimeoutError:
        pass
    srv.close()
    write_stats(a.stats)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
