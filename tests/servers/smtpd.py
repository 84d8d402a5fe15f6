#!/usr/bin/python3
"""A real SMTP server for smtp-connector's integration tests, built on aiosmtpd.

Run it with Debian's /usr/bin/python3 (which has python3-aiosmtpd 1.4).  It
listens on 127.0.0.1 only, records what it received, and can be told to
misbehave in the ways a real MTA does (refuse a recipient, ask to retry later,
reject the message, require authentication, close the connection...).

Outputs, all optional:
  --spool DIR   every accepted message as DIR/NNNN.json (written atomically):
                {"mail_from", "rcpt_tos", "mail_options", "rcpt_options",
                 "data_b64", "tls", "auth_login", "smtputf8", "connection",
                 "queue_id"}
  --log FILE    every line the client sent outside DATA, one per line, exactly
                as received (AUTH secrets included), plus marker lines:
                CONNECT, CONNECT-TLS (implicit TLS), TLS-START, TLS-DONE,
                TLS-FAILED, DISCONNECT
  --ready FILE  JSON {"port": N, "pid": P}, written once listening

See --help for the behaviour switches.  SIGTERM/SIGINT stop it cleanly (exit 0).
"""

import argparse
import asyncio
import base64
import json
import os
import re
import signal
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, MISSING, TLSSetupException

HOSTNAME = "smtpd.test"  # fixed: socket.getfqdn() can stall without DNS


def atomic_write(path, data):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class CommandLog:
    """Appends received lines (bytes, as sent, without CRLF) and markers."""

    def __init__(self, path):
        self.f = open(path, "ab", buffering=0) if path else None

    def write(self, line):
        if self.f is not None:
            if isinstance(line, str):
                line = line.encode()
            self.f.write(line + b"\n")


class Handler:
    def __init__(self, opts, cmdlog):
        self.opts = opts
        self.log = cmdlog
        self.seq = 0
        self.users = {}
        for spec in opts.auth or []:
            user, sep, password = spec.partition(":")
            if not sep:
                sys.exit("--auth wants USER:PASS, got %r" % spec)
            self.users[user.encode()] = password.encode()
        self.xoauth2 = {}
        for spec in opts.xoauth2 or []:
            user, sep, token = spec.partition(":")
            if not sep:
                sys.exit("--xoauth2 wants USER:TOKEN, got %r" % spec)
            self.xoauth2[user] = token

    # EHLO: the new (5-argument) hook replaces aiosmtpd's list, so it must also
    # record the HELO name itself.
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        out = []
        for r in responses:
            if r.startswith("250-AUTH") and (
                    r.strip() == "250-AUTH" or not self.users and not self.xoauth2):
                continue  # nothing to authenticate against: do not offer AUTH
            out.append(r)
        return out

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.opts.refuse_mail and re.search(self.opts.refuse_mail, address):
            return "550 5.7.1 <%s>: Sender address rejected: Access denied" % address
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.opts.refuse_rcpt and re.search(self.opts.refuse_rcpt, address):
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        if self.opts.tempfail_rcpt and re.search(self.opts.tempfail_rcpt, address):
            return ("450 4.2.0 <%s>: Recipient address rejected: "
                    "Mailbox temporarily unavailable, try again later" % address)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        if self.opts.refuse_data:
            return "554 5.6.0 Message rejected"
        self.seq += 1
        queue_id = "%04d" % self.seq
        login = None
        if session.authenticated and isinstance(session.auth_data, LoginPassword):
            login = session.auth_data.login.decode("utf-8", "replace")
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "mail_options": list(envelope.mail_options),
            "rcpt_options": list(envelope.rcpt_options),
            "data_b64": base64.b64encode(envelope.original_content).decode(),
            "tls": server.is_tls(),
            "auth_login": login,
            "smtputf8": bool(envelope.smtp_utf8),
            "connection": server.conn_no,
            "queue_id": queue_id,
        }
        if self.opts.spool:
            atomic_write(os.path.join(self.opts.spool, queue_id + ".json"),
                         json.dumps(record, indent=1).encode())
        server.messages_in_conn += 1
        if self.opts.close_after and server.messages_in_conn >= self.opts.close_after:
            server.close_after_reply = True
        return "250 2.0.0 Ok: queued as %s" % queue_id

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            want = self.users.get(auth_data.login)
            if want is not None and want == auth_data.password:
                return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)


class LoggingSMTP(SMTP):
    """aiosmtpd's SMTP, plus a raw transcript of what the client sent."""

    conn_counter = 0

    def __init__(self, handler, cmdlog, implicit_tls, **kw):
        super().__init__(handler, **kw)
        self.cmdlog = cmdlog
        self.implicit_tls = implicit_tls
        self.in_data = False
        self.rxbuf = b""
        self.messages_in_conn = 0
        self.close_after_reply = False
        LoggingSMTP.conn_counter += 1
        self.conn_no = LoggingSMTP.conn_counter

    def is_tls(self):
        return self.implicit_tls or self._tls_protocol is not None

    # -- transcript -------------------------------------------------------
    def connection_made(self, transport):
        upgrading = self.transport is not None and self._original_transport is not None
        super().connection_made(transport)
        if upgrading:
            self.rxbuf = b""
            self.cmdlog.write("TLS-DONE")
        else:
            self.cmdlog.write("CONNECT-TLS" if self.implicit_tls else "CONNECT")

    def connection_lost(self, error):
        self.cmdlog.write("DISCONNECT")
        super().connection_lost(error)

    def data_received(self, data):
        self.rxbuf += data
        while True:
            nl = self.rxbuf.find(b"\n")
            if nl < 0:
                break
            line, self.rxbuf = self.rxbuf[:nl + 1], self.rxbuf[nl + 1:]
            if self.in_data:
                if line in (b".\r\n", b".\n"):
                    self.in_data = False
            else:
                self.cmdlog.write(line.rstrip(b"\r\n"))
        if len(self.rxbuf) > 65536 and not self.in_data:
            self.cmdlog.write(self.rxbuf[:200] + b"...(overlong line)")
            self.rxbuf = b""
        elif self.in_data and len(self.rxbuf) > 65536:
            self.rxbuf = self.rxbuf[-8:]
        super().data_received(data)

    async def push(self, status):
        text = status.decode("ascii", "replace") if isinstance(status, bytes) else status
        if text.startswith("354"):
            self.in_data = True  # set before the client can see the reply
        await super().push(status)
        if self.close_after_reply and not text.startswith("354"):
            self.close_after_reply = False
            if self.transport is not None:
                self.transport.close()

    async def smtp_STARTTLS(self, arg):
        if self.tls_context and not arg and self._tls_protocol is None:
            self.cmdlog.write("TLS-START")
        try:
            await super().smtp_STARTTLS(arg)
        except TLSSetupException:
            self.cmdlog.write("TLS-FAILED")
            raise

    # -- XOAUTH2 with static tokens (--xoauth2 USER:TOKEN) -------------------
    async def auth_XOAUTH2(self, _, args):
        if len(args) == 1:
            blob = await self.challenge_auth("", encode_to_b64=False)
            if blob is MISSING:
                return AuthResult(success=False, handled=True)
        else:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except Exception:
                await self.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        user = token = None
        for field in blob.decode("utf-8", "replace").split("\x01"):
            if field.startswith("user="):
                user = field[5:]
            elif field.lower().startswith("auth=bearer "):
                token = field[12:].strip()
        handler = self.event_handler
        if user is not None and token and handler.xoauth2.get(user) == token:
            return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
        err = base64.b64encode(json.dumps(
            {"status": "401", "schemes": "bearer", "scope": "https://mail.test/"}).encode())
        await self.push(b"334 " + err)
        await self._reader.readline()  # the client's empty line
        return AuthResult(success=False, handled=False)


def watch_parent(loop, stop):
    """Stop when the process that started us is gone (a killed test runner)."""
    parent = os.getppid()

    def check():
        if os.getppid() != parent:
            stop.set()
        else:
            loop.call_later(1.0, check)
    loop.call_later(1.0, check)


def tls_context(cert, key):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free one)")
    p.add_argument("--spool", help="directory for received messages (NNNN.json)")
    p.add_argument("--log", help="file for the transcript of received command lines")
    p.add_argument("--ready", help="written as JSON {port, pid} once listening")
    p.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"),
                   help="offer STARTTLS; AUTH is then offered only after TLS")
    p.add_argument("--require-starttls", action="store_true",
                   help="with --starttls: 530 for anything but EHLO/NOOP/STARTTLS/QUIT before TLS")
    p.add_argument("--implicit-tls", nargs=2, metavar=("CERT", "KEY"),
                   help="TLS from the first byte (SMTPS, as on port 465)")
    p.add_argument("--auth", action="append", metavar="USER:PASS",
                   help="accept these credentials (repeatable)")
    p.add_argument("--auth-mechs", default="PLAIN,LOGIN",
                   help="comma-separated SASL mechanisms to offer (PLAIN, LOGIN, XOAUTH2)")
    p.add_argument("--xoauth2", action="append", metavar="USER:TOKEN",
                   help="accept XOAUTH2 with this static bearer token (repeatable; "
                        "adds XOAUTH2 to the offered mechanisms)")
    p.add_argument("--auth-required", action="store_true",
                   help="530 5.7.0 Authentication required for MAIL/RCPT/DATA without AUTH")
    p.add_argument("--refuse-rcpt", metavar="REGEX", help="550 5.1.1 for matching recipients")
    p.add_argument("--tempfail-rcpt", metavar="REGEX", help="450 4.2.0 for matching recipients")
    p.add_argument("--refuse-mail", metavar="REGEX", help="550 5.7.1 for matching senders")
    p.add_argument("--refuse-data", action="store_true", help="554 5.6.0 after every DATA")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--smtputf8", dest="smtputf8", action="store_true", default=True,
                   help="advertise SMTPUTF8 (default)")
    g.add_argument("--no-smtputf8", dest="smtputf8", action="store_false",
                   help="do not advertise SMTPUTF8; non-ASCII commands get 500")
    p.add_argument("--close-after", type=int, metavar="N",
                   help="close the connection right after the reply to the Nth message")
    p.add_argument("--max-size", type=int, metavar="N", default=33554432,
                   help="advertise and enforce SIZE N (0: no limit, not advertised)")
    p.add_argument("--timeout", type=float, default=60, help="idle timeout per connection")
    opts = p.parse_args(argv)
    if opts.starttls and opts.implicit_tls:
        p.error("--starttls and --implicit-tls exclude each other")
    if opts.require_starttls and not opts.starttls:
        p.error("--require-starttls needs --starttls")
    mechs = [m.strip().upper() for m in opts.auth_mechs.split(",") if m.strip()]
    if opts.xoauth2 and "XOAUTH2" not in mechs:
        mechs.append("XOAUTH2")
    opts.mechs = mechs
    return opts


async def main(argv):
    opts = parse_args(argv)
    if opts.spool:
        os.makedirs(opts.spool, exist_ok=True)
    cmdlog = CommandLog(opts.log)
    handler = Handler(opts, cmdlog)
    starttls_ctx = tls_context(*opts.starttls) if opts.starttls else None
    implicit_ctx = tls_context(*opts.implicit_tls) if opts.implicit_tls else None
    exclude = [m for m in ("PLAIN", "LOGIN", "XOAUTH2") if m not in opts.mechs]

    def factory():
        return LoggingSMTP(
            handler, cmdlog, implicit_ctx is not None,
            hostname=HOSTNAME,
            ident="ESMTP aiosmtpd (smtp-connector tests)",
            data_size_limit=opts.max_size or None,
            enable_SMTPUTF8=opts.smtputf8,
            tls_context=starttls_ctx,
            require_starttls=opts.require_starttls,
            # auth only after STARTTLS; with implicit TLS (where aiosmtpd does not
            # know it is secured) or no TLS at all, allow it on the connection
            auth_require_tls=starttls_ctx is not None,
            auth_required=opts.auth_required,
            auth_exclude_mechanism=exclude,
            authenticator=handler.authenticate,
            timeout=opts.timeout,
        )

    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, host="127.0.0.1", port=opts.port,
                                      ssl=implicit_ctx, reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watch_parent(loop, stop)
    if opts.ready:
        atomic_write(opts.ready, json.dumps({"port": port, "pid": os.getpid()}).encode())
    await stop.wait()
    server.close()


if __name__ == "__main__":
    import logging
    import warnings
    # aiosmtpd warns about AUTH without TLS and logs every session; the
    # transcript (--log) is what the tests read.  --verbose via env for debugging.
    warnings.simplefilter("ignore")
    logging.basicConfig(stream=sys.stderr, format="smtpd: %(message)s",
                        level=logging.DEBUG if os.environ.get("SMTPD_DEBUG") else logging.ERROR)
    asyncio.run(main(sys.argv[1:]))
    sys.exit(0)
