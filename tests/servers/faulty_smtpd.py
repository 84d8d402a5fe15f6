#!/usr/bin/python3
"""A scripted, misbehaving SMTP server for fault tests (plain Python stdlib).

It speaks just enough ESMTP for libcurl (greeting, EHLO/HELO, STARTTLS,
AUTH PLAIN/LOGIN accepting any credentials, MAIL, RCPT, DATA, RSET, NOOP,
QUIT) and, at the stage named, misbehaves as told:

  --at STAGE=ACTION[:TEXT]   (repeatable; one action per stage)
    STAGE   greeting ehlo starttls auth mail rcpt data eod quit
            ("eod" is the reply to the end of the message data)
    ACTION  stall   never answer (keep reading, so the client's writes succeed)
            close   close the connection without a reply
            drip    send the reply (TEXT, or the normal one) --drip-rate
                    bytes per second
            reply   send TEXT instead of the normal reply
    TEXT    the reply, lines separated by a literal "\\n"
            (e.g. "554-5.7.1 blocked\\n554 5.7.1 see https://x.test")

Other switches:
  --ehlo-lines N      add N filler lines of --ehlo-line-len octets to EHLO
  --starttls-cert C K offer STARTTLS and do TLS with this certificate/key
  --offer-starttls    advertise STARTTLS even without a certificate
  --idle-close S      send "421 4.4.2 idle timeout" and close a connection
                      that received nothing for S seconds
  --rcpt-reply-len N  pad each RCPT reply to about N octets
  --rcpt-limit N      answer "452 4.5.3 Error: too many recipients" after N
                      RCPTs in one transaction (Postfix's smtpd_recipient_limit)
  --messages-per-connection N
                      after N messages on a connection, close it when the next
                      command arrives, without a reply (a close that crossed it)
  --from-message N    misbehave only once N messages were accepted (default 0)
  --max-sessions N    at most N connections at once: one more is greeted with
                      "421 4.7.0 too many connections" and closed (Exchange
                      Online's concurrent-connection limit, in small)
  --delay TEXT=S      (repeatable) hold the end-of-data reply S seconds for a
                      message whose data contains TEXT (e.g. its Subject)
  --drop TEXT         close the connection, without a reply, at the end of the
                      data of a message that contains TEXT (not accepted)
  --refuse-sender A   answer MAIL FROM:<A> with "421 4.7.0 too many
                      connections" and close (a server counting one sender's
                      sessions): the other senders' messages go through
  --lifetime S        exit after S seconds whatever happens (default 120)
  --ready FILE        JSON {"port": N, "pid": P} once listening
  --spool DIR         every accepted message as DIR/NNNN.json (written
                      atomically): "mail_from", "rcpt_tos", "data_b64" (the
                      data as sent, dot-unstuffed), "connection", "queue_id"
  --log FILE          one line per event: CONNECT <n>, C: <command>,
                      S: <reply line>, MESSAGE <bytes>, ACTION <stage> <action>,
                      DISCONNECT <n>, MESSAGE-ID <id> (of each accepted
                      message), REFUSED-SESSION <n>

It binds 127.0.0.1 on --port (0: any free one) and prints "PORT <n>" on
stdout once listening. SIGTERM/SIGINT stop it (exit 0), and so does the
death of the process that started it.
"""

import argparse
import asyncio
import base64
import json
import os
import signal
import ssl
import sys
import time

STAGES = ("greeting", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "eod", "quit")
ACTIONS = ("stall", "close", "drip", "reply")
MAX_LINE = 64 * 1024  # a command line longer than this closes the connection


class Log:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1, encoding="utf-8", errors="replace") if path else None

    def write(self, text):
        if self.f:
            self.f.write(text.replace("\r", "\\r").replace("\n", "\\n") + "\n")


class Stop(Exception):
    """This connection is over."""


class Session:
    def __init__(self, srv, reader, writer, n):
        self.srv = srv
        self.o = srv.opts
        self.reader = reader
        self.writer = writer
        self.n = n
        self.tls = False
        self.rcpts = 0
        self.in_conn = 0
        self.mail_from = None
        self.rcpt_tos = []

    async def send(self, stage, normal):
        """Reply `normal` (a list of lines), or misbehave as --at says for stage."""
        action, text = self.o.rules.get(stage, (None, None))
        if self.srv.messages < self.o.from_message:
            action, text = None, None
        lines = text.split("\\n") if text is not None else normal
        if action:
            self.srv.log.write("ACTION %s %s" % (stage, action))
        if action == "stall":
            await self.drain_forever()
        if action == "close":
            raise Stop()
        data = "".join(line + "\r\n" for line in lines).encode("utf-8", "surrogateescape")
        for line in lines:
            self.srv.log.write("S: " + line)
        if action == "drip":
            delay = 1.0 / max(self.o.drip_rate, 0.001)
            for i in range(len(data)):
                self.writer.write(data[i:i + 1])
                await self.writer.drain()
                await asyncio.sleep(delay)
            return
        self.writer.write(data)
        await self.writer.drain()

    async def drain_forever(self):
        while True:
            chunk = await self.reader.read(65536)
            if not chunk:
                raise Stop()

    async def readline(self):
        try:
            if self.o.idle_close:
                line = await asyncio.wait_for(self.reader.readuntil(b"\n"), self.o.idle_close)
            else:
                line = await self.reader.readuntil(b"\n")
        except asyncio.TimeoutError:
            self.srv.log.write("IDLE-CLOSE")
            self.writer.write(b"421 4.4.2 faulty.test idle timeout\r\n")
            await self.writer.drain()
            raise Stop()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            raise Stop()
        return line.decode("utf-8", "replace").rstrip("\r\n")

    def ehlo_lines(self):
        caps = ["faulty.test greets you", "8BITMIME", "SMTPUTF8", "SIZE 33554432",
                "AUTH PLAIN LOGIN"]
        if (self.o.starttls_cert or self.o.offer_starttls) and not self.tls:
            caps.append("STARTTLS")
        pad = max(self.o.ehlo_line_len - 20, 1)
        caps += ["X-FILLER-%05d %s" % (i, "x" * pad) for i in range(self.o.ehlo_lines)]
        caps.append("HELP")
        return ["250-" + c for c in caps[:-1]] + ["250 " + caps[-1]]

    async def starttls(self):
        if not self.o.starttls_cert:
            await self.send("starttls", ["454 4.7.0 TLS not available"])
            return
        await self.send("starttls", ["220 2.0.0 Ready to start TLS"])
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*self.o.starttls_cert)
        try:
            await self.writer.start_tls(ctx)
        except (ssl.SSLError, ConnectionError, OSError):
            raise Stop()
        self.tls = True

    async def auth(self, arg):
        words = arg.split()
        mech = words[0].upper() if words else ""
        if mech == "PLAIN" and len(words) < 2:
            self.writer.write(b"334 \r\n")
            await self.readline()
        elif mech == "LOGIN":
            self.writer.write(b"334 VXNlcm5hbWU6\r\n")
            await self.readline()
            self.writer.write(b"334 UGFzc3dvcmQ6\r\n")
            await self.readline()
        elif mech != "PLAIN":
            self.writer.write(b"504 5.5.4 unrecognised authentication type\r\n")
            return
        await self.send("auth", ["235 2.7.0 Authentication successful"])

    async def data(self):
        await self.send("data", ["354 End data with <CR><LF>.<CR><LF>"])
        action, text = self.o.rules.get("data", (None, None))
        if text is not None and self.srv.messages >= self.o.from_message \
                and not text.startswith("354"):
            return  # DATA refused: no message follows
        size = 0
        lines = []
        while True:
            try:
                line = await self.reader.readuntil(b"\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                raise Stop()
            if line in (b".\r\n", b".\n"):
                break
            size += len(line)
            lines.append(line)
        data = b"".join(lines)
        if self.o.drop and self.o.drop.encode() in data:
            self.srv.log.write("ACTION eod drop")
            raise Stop()
        for text, seconds in self.o.delays:
            if text.encode() in data:
                await asyncio.sleep(seconds)
        self.srv.messages += 1
        self.in_conn += 1
        self.srv.spool(self, lines)
        self.srv.log.write("MESSAGE %d" % size)
        for line in lines:
            if line.lower().startswith(b"message-id:"):
                self.srv.log.write("MESSAGE-ID " + line[11:].strip().decode("ascii", "replace"))
                break
        await self.send("eod", ["250 2.0.0 Ok: queued as FAULTY%d" % self.srv.messages])

    async def run(self):
        await self.send("greeting", ["220 faulty.test ESMTP"])
        while True:
            line = await self.readline()
            if self.o.messages_per_connection and self.in_conn >= self.o.messages_per_connection:
                # a per-connection limit, with the close crossing the next command
                self.srv.log.write("LIMIT-CLOSE")
                raise Stop()
            self.srv.log.write("C: " + (line.split(" ", 2)[0] + " [redacted]"
                                        if line.upper().startswith("AUTH ") else line))
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if verb in ("EHLO", "HELO"):
                await self.send("ehlo", self.ehlo_lines() if verb == "EHLO"
                                else ["250 faulty.test"])
            elif verb == "STARTTLS":
                await self.starttls()
            elif verb == "AUTH":
                await self.auth(arg)
            elif verb == "MAIL" and self.o.refuse_sender and \
                    path_of(arg).lower() == self.o.refuse_sender.lower():
                self.srv.log.write("REFUSED-SENDER %d" % self.n)
                self.writer.write(b"421 4.7.0 faulty.test too many connections\r\n")
                await self.writer.drain()
                raise Stop()
            elif verb == "MAIL":
                self.rcpts = 0
                self.mail_from = path_of(arg)
                self.rcpt_tos = []
                await self.send("mail", ["250 2.1.0 Ok"])
            elif verb == "RCPT" and self.o.rcpt_limit and self.rcpts >= self.o.rcpt_limit:
                self.writer.write(b"452 4.5.3 Error: too many recipients\r\n")
            elif verb == "RCPT":
                self.rcpts += 1
                self.rcpt_tos.append(path_of(arg))
                text = "250 2.1.5 Ok"
                if self.o.rcpt_reply_len > len(text):
                    text += " " + "r" * (self.o.rcpt_reply_len - len(text) - 1)
                await self.send("rcpt", [text])
            elif verb == "DATA":
                await self.data()
            elif verb in ("RSET", "NOOP"):
                self.writer.write(b"250 2.0.0 Ok\r\n")
            elif verb == "QUIT":
                await self.send("quit", ["221 2.0.0 Bye"])
                raise Stop()
            else:
                self.writer.write(b"502 5.5.2 Error: command not recognized\r\n")
            await self.writer.drain()


class Server:
    def __init__(self, opts):
        self.opts = opts
        self.log = Log(opts.log)
        self.connections = 0
        self.messages = 0
        self.open = 0

    def spool(self, session, lines):
        """The accepted message as --spool DIR/NNNN.json, for the test to
        read back what it received (dot-stuffing undone, RFC 5321 4.5.2)."""
        if not self.opts.spool:
            return
        data = b"".join(ln[1:] if ln.startswith(b".") else ln for ln in lines)
        queue_id = "%04d" % self.messages
        record = {"mail_from": session.mail_from, "rcpt_tos": list(session.rcpt_tos),
                  "data_b64": base64.b64encode(data).decode(), "connection": session.n,
                  "queue_id": queue_id}
        path = os.path.join(self.opts.spool, queue_id + ".json")
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.replace(path + ".tmp", path)

    async def handle(self, reader, writer):
        self.connections += 1
        n = self.connections
        self.log.write("CONNECT %d" % n)
        if self.opts.max_sessions and self.open >= self.opts.max_sessions:
            self.log.write("REFUSED-SESSION %d" % n)
            try:
                writer.write(b"421 4.7.0 faulty.test too many connections\r\n")
                await writer.drain()
                writer.close()
            except Exception:  # noqa: BLE001 - the client may be gone already
                pass
            self.log.write("DISCONNECT %d" % n)
            return
        self.open += 1
        try:
            await Session(self, reader, writer, n).run()
        except (Stop, ConnectionError, ssl.SSLError):
            pass
        finally:
            self.open -= 1
            self.log.write("DISCONNECT %d" % n)
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - a broken transport is closed anyway
                pass


def path_of(arg):
    """The address of "FROM:<a@b> SIZE=1" / "TO:<a@b>" (what is between
    the angle brackets; the rest after the colon when there are none)."""
    rest = arg.partition(":")[2].strip()
    if rest.startswith("<"):
        return rest[1:].partition(">")[0]
    return rest.split(" ", 1)[0]


def parse_rule(spec):
    stage, sep, rest = spec.partition("=")
    action, _, text = rest.partition(":")
    if not sep or stage not in STAGES or action not in ACTIONS:
        sys.exit("--at wants STAGE=ACTION[:TEXT] with STAGE in %s and ACTION in %s, got %r"
                 % ("/".join(STAGES), "/".join(ACTIONS), spec))
    if action == "reply" and not text:
        sys.exit("--at %s: reply needs a TEXT" % spec)
    return stage, (action, text if text else None)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--at", action="append", default=[], metavar="STAGE=ACTION[:TEXT]")
    p.add_argument("--drip-rate", type=float, default=2.0, help="bytes per second")
    p.add_argument("--ehlo-lines", type=int, default=0)
    p.add_argument("--ehlo-line-len", type=int, default=80)
    p.add_argument("--rcpt-reply-len", type=int, default=0)
    p.add_argument("--from-message", type=int, default=0)
    p.add_argument("--rcpt-limit", type=int, default=0)
    p.add_argument("--messages-per-connection", type=int, default=0)
    p.add_argument("--max-sessions", type=int, default=0)
    p.add_argument("--delay", action="append", default=[], metavar="TEXT=S")
    p.add_argument("--drop")
    p.add_argument("--refuse-sender")
    p.add_argument("--starttls-cert", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--offer-starttls", action="store_true")
    p.add_argument("--idle-close", type=float, default=0)
    p.add_argument("--lifetime", type=float, default=120)
    p.add_argument("--ready")
    p.add_argument("--log")
    p.add_argument("--spool")
    opts = p.parse_args(argv)
    opts.rules = dict(parse_rule(r) for r in opts.at)
    opts.delays = []
    for d in opts.delay:
        text, sep, seconds = d.rpartition("=")
        if not sep or not text:
            sys.exit("--delay wants TEXT=SECONDS, got %r" % d)
        opts.delays.append((text, min(float(seconds), 30.0)))
    return opts


async def main(argv):
    opts = parse_args(argv)
    if opts.spool:
        os.makedirs(opts.spool, exist_ok=True)
    srv = Server(opts)
    loop = asyncio.get_running_loop()
    server = await asyncio.start_server(srv.handle, host="127.0.0.1", port=opts.port,
                                        reuse_address=True, limit=MAX_LINE)
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    parent = os.getppid()
    deadline = time.monotonic() + opts.lifetime

    def watch():  # bounded: stop at the deadline or when our parent is gone
        if os.getppid() != parent or time.monotonic() > deadline:
            stop.set()
        else:
            loop.call_later(0.5, watch)
    loop.call_later(0.5, watch)
    if opts.ready:
        tmp = opts.ready + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"port": port, "pid": os.getpid()}, f)
        os.replace(tmp, opts.ready)
    print("PORT %d" % port, flush=True)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
    sys.exit(0)
