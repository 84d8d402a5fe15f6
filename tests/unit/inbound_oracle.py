#!/usr/bin/python3
"""Differential test: sc_inbound_summary() (core/inbound/, through
inbound_dump) against Python's email parser (policy.default) on a corpus
this script generates with Python's own email package: EmailMessage with
set_content / add_alternative / add_related / add_attachment, non-ASCII
subjects and file names (RFC 2047, RFC 2231 with continuations), bodies
in utf-8, iso-8859-1, windows-1252, shift_jis, koi8-r, iso-2022-jp and
big5 under 7bit, 8bit, quoted-printable and base64, nested multiparts,
forwarded messages, CRLF and LF-only files.

Compared per message: subject, message_id, the From header; body (Python's get_body(('plain',
'html')).get_content(); line ends as "\\n" on both sides, since the
summary promises "\\n"); attachments in order (name = get_filename(),
content type, size = decoded bytes, counting a line end as one byte
where the part is not base64, as the summary does). Each file is read
a second time with max_body 37: the body must then be a prefix of the
whole one, within the bound, and flagged body_truncated exactly when
something was left out. Prints TAP, one
case per message; exits 0 so the TAP driver does the counting.

Env: INBOUND_DUMP (default ./tests/unit/inbound_dump),
INBOUND_ORACLE_KEEP=DIR keeps the corpus there.
"""
import email
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from email import policy
from email.message import EmailMessage

DUMP = os.environ.get("INBOUND_DUMP", "./tests/unit/inbound_dump")
CUT = 37  # a max_body that falls inside most bodies, and inside characters

SUBJECTS = [
    "plain ascii subject",
    "Grüße aus Köln",
    "Réunion à 15h — café offert",
    "日本語の件名です",
    "Привет, мир",
    "emoji 🎉 party 🚀",
    'quotes " and \\ backslash',
    "a long subject " * 8 + "that folds über several lines",
    "  leading and trailing  ",
    "tab\tinside",
    "=?not an encoded word?=",
    "",
]

# (charset, text it can encode)
TEXTS = [
    ("utf-8", "Hello,\nthis is plain text.\n\nBye.\n"),
    ("utf-8", "Ünïcödé everywhere: 你好, שלום, 🎉\nsecond line\n"),
    ("iso-8859-1", "Café, naïve, façade, smørrebrød\nzweite Zeile: Grüße\n"),
    ("windows-1252", "“Smart quotes” cost 5 € – or so…\n"),
    ("shift_jis", "日本語のメールです。\nカタカナ、ひらがな、漢字。\n"),
    ("koi8-r", "Съешь же ещё этих мягких французских булок.\n"),
    ("iso-2022-jp", "こんにちは、世界。\n"),
    ("big5", "中文郵件測試\n"),
    ("utf-8", "trailing spaces   \nand tabs\t\nlong " + "x" * 200 + "\n"),
    ("utf-8", "no final newline"),
    ("utf-8", "=3D looks encoded =?utf-8?q?x?= but is not\n--not-a-boundary\n"),
]

NAMES = [
    "report.pdf",
    "Übersicht März.xlsx",
    "日本語のファイル名.txt",
    "a very long file name " * 5 + "éé.bin",
    'quote"s and spaces.dat',
    "emoji-🎉.png",
]

CTES = [None, "quoted-printable", "base64", "8bit", "7bit"]


def text_part(msg, rnd, subtype="plain", method="set_content"):
    cs, text = rnd.choice(TEXTS)
    cte = rnd.choice(CTES)
    if subtype == "html":
        text = "<html><body><p>" + text.replace("\n", "<br>\n") + "</p></body></html>\n"
    if cte == "7bit":
        # 7bit only for what is ASCII; else let Python choose.
        try:
            text.encode("ascii")
        except UnicodeEncodeError:
            cte = None
    if cte == "8bit" and cs == "iso-2022-jp":
        cte = None
    kw = {"subtype": subtype, "charset": cs}
    if cte:
        kw["cte"] = cte
    getattr(msg, method)(text, **kw)


def attachment(msg, rnd):
    kind = rnd.randrange(4)
    name = rnd.choice(NAMES)
    if kind == 0:
        data = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 3000)))
        msg.add_attachment(data, maintype="application", subtype="octet-stream",
                           filename=name)
    elif kind == 1:
        data = b"\x89PNG\r\n\x1a\n" + bytes(rnd.randrange(256) for _ in range(500))
        msg.add_attachment(data, maintype="image", subtype="png", filename=name)
    elif kind == 2:
        cs, text = rnd.choice(TEXTS)
        msg.add_attachment(text, subtype="plain", charset=cs, filename=name,
                           cte=rnd.choice(["base64", "quoted-printable"]))
    else:
        inner = EmailMessage()
        inner["Subject"] = rnd.choice(SUBJECTS)
        inner["From"] = "inner@example.org"
        text_part(inner, rnd)
        msg.add_attachment(inner)


def build(rnd, i):
    msg = EmailMessage()
    msg["From"] = rnd.choice(["a@example.org", "Jörg Müller <jm@example.org>"])
    msg["To"] = "b@example.org"
    msg["Subject"] = rnd.choice(SUBJECTS)
    msg["Message-ID"] = "<%d.oracle@example.org>" % i
    shape = i % 6
    if shape == 0:
        text_part(msg, rnd)
    elif shape == 1:
        text_part(msg, rnd)
        text_part(msg, rnd, "html", "add_alternative")
    elif shape == 2:
        text_part(msg, rnd, "html")
        if rnd.random() < 0.5:
            attachment(msg, rnd)
    elif shape == 3:
        text_part(msg, rnd)
        for _ in range(rnd.randrange(1, 4)):
            attachment(msg, rnd)
    elif shape == 4:
        # mixed [ alternative [ plain, related [ html, image ] ], files ]
        text_part(msg, rnd)
        text_part(msg, rnd, "html", "add_alternative")
        html = msg.get_payload()[1]
        html.add_related(b"GIF89a" + bytes(rnd.randrange(256) for _ in range(100)),
                         maintype="image", subtype="gif", cid="<img1@example.org>")
        for _ in range(rnd.randrange(1, 3)):
            attachment(msg, rnd)
    else:
        # html first, plain second: the plain one is still the body
        text_part(msg, rnd, "html")
        msg.make_alternative()
        p = EmailMessage()
        text_part(p, rnd)
        msg.attach(p)
    return msg


def leaves(part):
    """Leaf parts in order, a message/rfc822 part being one leaf."""
    if part.get_content_maintype() == "multipart" and part.is_multipart():
        for sub in part.iter_parts():
            yield from leaves(sub)
    else:
        yield part


def python_view(data):
    msg = email.message_from_bytes(data, policy=policy.default)
    body = msg.get_body(preferencelist=("plain", "html"))
    text = body.get_content() if body is not None else ""
    atts = []
    for p in leaves(msg):
        if p is body:
            continue
        if not (p.is_attachment() or p.get_content_maintype() != "text"):
            continue
        if p.get_content_type() == "message/rfc822":
            size = None  # re-serialised by Python: not comparable
        else:
            raw = p.get_payload(decode=True) or b""
            if p.get("Content-Transfer-Encoding", "").lower() != "base64":
                raw = raw.replace(b"\r\n", b"\n")
            size = len(raw)
        atts.append({"name": p.get_filename() or "",
                     "content_type": p.get_content_type(), "size": size})
    mid = str(msg.get("Message-ID", "")).strip().lstrip("<").rstrip(">") or None
    return {"subject": str(msg.get("Subject", "")), "message_id": mid,
            "from": str(msg.get("From", "")),
            "body": text.replace("\r\n", "\n"), "attachments": atts}


def judge_cut(cut, py):
    """The summary with a small max_body: a prefix of the whole body, cut
    before a whole character, flagged exactly when something is left out."""
    body, whole = cut["body"], py["body"]
    if len(body.encode()) > CUT:
        return "body of %d bytes over max_body %d" % (len(body.encode()), CUT)
    if not whole.startswith(body):
        return "cut body %r is not a prefix of %r" % (body[:80], whole[:80])
    if cut.get("body_truncated", False) != (body != whole):
        return "body_truncated %r with %d of %d characters" % (
            cut.get("body_truncated"), len(body), len(whole))
    return ""


def judge(ours, py, cut):
    if ours.get("error"):
        return "dump error: " + ours["error"]
    diffs = [judge_cut(cut, py)] if judge_cut(cut, py) else []
    if ours["subject"] != py["subject"]:
        diffs.append("subject %r != python %r" % (ours["subject"], py["subject"]))
    if ours["message_id"] != py["message_id"]:
        diffs.append("message_id %r != python %r" % (ours["message_id"], py["message_id"]))
    if ours["headers"].get("From") != py["from"]:
        diffs.append("From %r != python %r" % (ours["headers"].get("From"), py["from"]))
    if ours["body"] != py["body"]:
        diffs.append("body %r != python %r" % (ours["body"][:300], py["body"][:300]))
    oa = ours["attachments"]
    if len(oa) != len(py["attachments"]):
        diffs.append("%d attachments != python %d" % (len(oa), len(py["attachments"])))
    for a, b in zip(oa, py["attachments"]):
        if b["size"] is None:
            a = dict(a, size=None)
        if a != b:
            diffs.append("attachment %r != python %r" % (a, b))
    return "; ".join(diffs)


def main():
    rnd = random.Random(20261202)
    keep = os.environ.get("INBOUND_ORACLE_KEEP")
    tmp = keep or tempfile.mkdtemp(prefix="inbound_oracle.")
    os.makedirs(tmp, exist_ok=True)
    files = []
    for i in range(240):
        msg = build(rnd, i)
        crlf = i % 3 != 2
        data = msg.as_bytes(policy=policy.SMTP if crlf else policy.default)
        path = os.path.join(tmp, "m%03d.eml" % i)
        with open(path, "wb") as f:
            f.write(data)
        files.append(path)
    runs = []
    for max_body in (1 << 20, CUT):
        proc = subprocess.run([DUMP, "--max-body", str(max_body)] + files,
                              capture_output=True, text=True, encoding="utf-8",
                              errors="strict", check=False)
        lines = proc.stdout.splitlines()
        if proc.returncode != 0 or len(lines) != len(files):
            print("1..1\nnot ok 1 - %s exited %d with %d of %d lines: %s" % (
                DUMP, proc.returncode, len(lines), len(files), proc.stderr[-2000:]))
            return 0
        runs.append(lines)
    print("1..%d" % len(files))
    failed = 0
    for n, (path, line, cut) in enumerate(zip(files, *runs), 1):
        with open(path, "rb") as f:
            data = f.read()
        why = judge(json.loads(line), python_view(data), json.loads(cut))
        name = os.path.basename(path)
        if why:
            failed += 1
            print("not ok %d - %s: %s" % (n, name, why))
        else:
            print("ok %d - %s" % (n, name))
    if not keep:
        if failed:
            print("# corpus kept in %s" % tmp)
        else:
            shutil.rmtree(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
