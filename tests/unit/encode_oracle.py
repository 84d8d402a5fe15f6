#!/usr/bin/python3
"""Round-trip oracle for the header and body encoders (core/encode.c,
core/transfer.c).

Feeds cases to tests/unit/encode_dump (path from $ENCODE_DUMP) as JSON
lines and decodes every output with an independent implementation,
Python's email package (policy=default), binascii.a2b_qp and base64. A
case passes when decoding gives back the input exactly and the output
keeps the line limits: 78 columns for headers (header name included),
998 octets always, 76 for quoted-printable and base64 bodies.

Run it with Debian's /usr/bin/python3: the email package's RFC 2047/2231
decoders are what we compare against. Prints TAP and exits 0; failures
are "not ok" lines for Automake's TAP driver.
"""
import base64
import binascii
import email.policy
import json
import os
import re
import subprocess
import sys
from email.header import decode_header, make_header
from email.parser import Parser

DUMP = os.environ.get("ENCODE_DUMP", "./tests/unit/encode_dump")
EW_RE = re.compile(r"=\?([^?]*)\?([qQbB])\?([^?]*)\?=")
PHRASE_Q_SAFE = re.compile(r"^[A-Za-z0-9!*+\-/_=]*$")

LONG_ASCII = ("Security alert: suspicious sign-in detected for account "
              "jdoe from an unfamiliar location; the session was blocked "
              "and the password must be reset before the next login attempt "
              "by the user or an administrator on duty tonight")

SUBJECTS = [
    ("ascii unchanged", "Hello world", False),
    ("long ascii folded", LONG_ASCII, False),
    ("latin", "Café au lait", False),
    ("german", "Grüße aus München – Ärger mit Übergrößen und Maßbändern", False),
    ("cjk long", "日本語の件名はとても長いですがきちんと分割されるべきです" * 3, False),
    ("emoji", "🎉 Party time 🎉🎉🎉 with 👩‍👩‍👧‍👦 family and 🏳️‍🌈 flags", False),
    ("mixed scripts", "Alert Ωμέγα Кириллица עברית العربية 中文 한국어 ✓ done " * 2, False),
    ("whitespace edges", "  lead é trail  ", False),
    ("single char", "é", False),
    ("tabs", "a\tb é\t\tc\t", False),
    ("long blank run", "x" + " " * 50 + "é", False),
    ("blank only short", "   ", False),
    ("blank only long", " " * 40, False),
    ("ascii word past 998", "w" * 1200, False),
    ("soar style", "Re: [SOAR] Alert #123 — ünïcödé (urgent)?", False),
    ("q specials", "a_b=c?d é_f=g?h (x) \"q\"", False),
    ("greek cyrillic", "Ελληνικά και русский текст в одной строке для проверки", False),
    ("rtl", "שלום עולם مرحبا بالعالم", False),
    ("utf8_ok raw", "Café crème – 日本語 " * 6, True),
    ("utf8_ok ascii", LONG_ASCII, True),
    ("control char", "bell\x07 ring é", False),
    ("emoji run", "😀" * 60, False),
    ("combining", "e\u0301te\u0301 cafe\u0301 " * 8, False),
    ("look-alike read as typed", "=?utf-8?q?Caf=C3=A9?=", False),
    ("look-alike utf8_ok", "Re: =?utf-8?b?Q0VP?= says", True),
    ("look-alike in a word", "x=?utf-8?q?CEO?=y and =?iso-8859-1?q?=E9?=", False),
    ("ascii after non-ascii", "über " + "plain words " * 10, False),
    ("trailing ws after encoded", "ünï   ", False),
]

PHRASES = [
    ("atom", "Jane Doe", False),
    ("comma", "Doe, Jane", False),
    ("quotes", 'Jane "JD" Doe', False),
    ("backslash", "back\\slash", False),
    ("dots", "J. R. R. Tolkien", False),
    ("at and angle", "ops@corp <team>", False),
    ("latin", "Jérôme Dupont", False),
    ("cjk", "王小明", False),
    ("emoji", "🎉 Team", False),
    ("blanks kept", "  spaced  out ", False),
    ("long specials", "Security Operations Center, Incident Response Team (Tier 2), EMEA region", False),
    ("long non-ascii", "Équipe de réponse aux incidents de sécurité – Centre des opérations " * 2, False),
    ("utf8_ok latin", "Jérôme Dupont", True),
    ("utf8_ok special", "Dupont, Jérôme", True),
    ("look-alike", "=?utf-8?q?CEO?=", False),
    ("look-alike quoted", "=?utf-8?q?a\"b?= =?UTF-8?B?w6k=?=", False),
    ("look-alike utf8_ok", "=?utf-8?b?Q0VP?=", True),
]

PARAMS = [
    ("simple", "report.pdf"),
    ("escapes", 'we"ird\\name.txt'),
    ("euro", "€.pdf"),
    ("cyrillic long", "Отчёт о проверке безопасности за третий квартал 2024 года финальная версия.pdf"),
    ("ascii long", "incident-report-" + "x" * 100 + '-"final" copy.pdf'),
    ("emoji", "🎉 party 🎉.png"),
    ("spaces", "spaces in name.doc"),
    ("cjk", "報告書_最終版_2024年度第三四半期のセキュリティ監査結果.xlsx"),
    ("tspecials", "a;b=c(d)[e]<f>@g,h:i?j/k.txt"),
    ("look-alike", "=?utf-8?q?invoice.pdf?=.exe"),
]

QP = [
    ("plain", "Hello, world.\n", None),
    ("crlf and lf", "line one\r\nline two\nline three", None),
    ("trailing blanks", "ends with space \nends with tab\t\nend ", None),
    ("long line", "0123456789 " * 40, None),
    ("from and dot", "From here\n.dot\n..two\nFrom: not this", None),
    ("bare cr", "a\rb\r\n", None),
    ("equals and utf8", "x=1 é ü 日本 🎉 " * 10, None),
    ("exact 76", "a" * 76 + "\n" + "b" * 75 + " \n" + "c" * 77, None),
    ("binary", None, "00ff0d0a0a0d3d2020090a7f80"),
]

B64 = [
    ("empty", ""),
    ("one", "a"),
    ("57", "x" * 57),
    ("58", "y" * 58),
    ("long utf8", "Grüße 🎉 " * 100),
    ("binary", None, ),
]

ENCODINGS = [
    ("ascii short", "Hello\r\nworld\r\n", "7bit"),
    ("bare lf", "Hello\nworld\n.\n", "quoted-printable"),
    ("bare cr", "a\rb", "quoted-printable"),
    ("long line", "a" * 999, "quoted-printable"),
    ("998 ok", "a" * 998 + "\r\n", "7bit"),
    ("latin", "Café au lait with a little sugar, please.", "quoted-printable"),
    ("cjk", "日本語のテキスト", "base64"),
]

results = []


def tap(ok, desc, diag=()):
    results.append((ok, desc, list(diag)))


def dump(requests):
    proc = subprocess.run([DUMP], input="".join(json.dumps(r) + "\n" for r in requests),
                          capture_output=True, text=True, check=False)
    outs = [json.loads(line) for line in proc.stdout.splitlines()]
    if proc.returncode != 0 or len(outs) != len(requests):
        sys.stdout.write("1..1\nnot ok 1 - encode_dump ran\n# rc=%d stderr=%s\n"
                         % (proc.returncode, proc.stderr[-2000:]))
        sys.exit(0)
    return outs


def lines_of(text):
    return text.split("\r\n")


def fold_problems(out, first_col, soft, ascii_only):
    """Line-limit and folding checks shared by every header kind."""
    probs = []
    lines = lines_of(out)
    widths = [len(lines[0].encode()) + first_col] + [len(l.encode()) for l in lines[1:]]
    if soft and max(widths) > 78:
        probs.append("line of %d columns" % max(widths))
    for w, l in zip(widths, lines):
        if EW_RE.search(l) and w > 76:
            probs.append("line of %d octets with an encoded word (RFC 2047: 76)" % w)
    if max(widths) > 998:
        probs.append("line of %d octets" % max(widths))
    if "\r" in out.replace("\r\n", "") or "\n" in out.replace("\r\n", ""):
        probs.append("bare CR or LF")
    for l in lines[1:]:
        if not l or l[0] not in " \t" or not l.strip():
            probs.append("fold not CRLF WSP text: %r" % l[:20])
    if ascii_only and not out.isascii():
        probs.append("non-ASCII output")
    for m in EW_RE.finditer(out):
        if len(m.group(0)) > 75:
            probs.append("encoded word of %d chars" % len(m.group(0)))
        raw = (base64.b64decode(m.group(3)) if m.group(2) in "bB"
               else binascii.a2b_qp(m.group(3).replace("_", " ").encode(), header=True))
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            probs.append("UTF-8 split in %s" % m.group(0))
    return probs


def check_subject(case, out):
    desc, value, utf8_ok = case
    header = "Subject: " + out + "\r\n\r\n"
    got = Parser(policy=email.policy.default).parsestr(header)["Subject"]
    # Readers strip the blanks between "Subject:" and the value; when the
    # encoder leaves leading blanks literal they are lost in any reader.
    want = value.lstrip(" \t") if out[:1] in (" ", "\t") else value
    probs = [] if got == want else ["decoded %r" % got]
    long_word = any(len(w) > 40 and w.isascii() for w in re.split(r"[ \t]+", value)) \
        and len(max(re.split(r"[ \t]+", value), key=len)) <= 960
    probs += fold_problems(out, 9, not long_word, not utf8_ok)
    if desc == "ascii unchanged" and out != value:
        probs.append("ASCII changed")
    if utf8_ok and EW_RE.search(out) and not EW_RE.search(value):
        probs.append("encoded words with utf8_ok")
    return probs


def display_name(phrase, parsed):
    """The display name a conforming reader shows for `phrase`.

    Python < 3.14's address parser keeps the blank between two adjacent
    encoded words of a phrase (CPython gh-128110, fixed by PR #130749),
    against RFC 2047 6.2; Debian 12 ships 3.11. For a phrase made only of
    encoded words, decode it with email.header, which follows 6.2."""
    words = phrase.split()
    if len(words) > 1 and all(EW_RE.fullmatch(w) for w in words):
        return str(make_header(decode_header(phrase)))
    return parsed


def check_phrase(case, out):
    _, value, utf8_ok = case
    if "\r" in out or "\n" in out:
        return ["CR/LF in phrase"]
    msg = Parser(policy=email.policy.default).parsestr("To: " + out + " <a@example.com>\r\n\r\n")
    addrs = msg["To"].addresses
    probs = []
    want = value
    if len(addrs) != 1 or display_name(out, addrs[0].display_name) != want:
        probs.append("parsed %r" % [(a.display_name, a.addr_spec) for a in addrs])
    if not utf8_ok and not out.isascii():
        probs.append("non-ASCII output")
    for m in EW_RE.finditer(out):
        if m.group(2) in "qQ" and not PHRASE_Q_SAFE.match(m.group(3)):
            probs.append("Q text not phrase-safe: %s" % m.group(0))
        if len(m.group(0)) > 75:
            probs.append("encoded word too long")
    return probs


def check_address(case, out):
    _, value, utf8_ok = case
    msg = Parser(policy=email.policy.default).parsestr("To: " + out + "\r\n\r\n")
    raw = re.findall(r"(.*?) <([^>]*)>(?:, |$)", out.replace("\r\n", ""))
    got = [(display_name(r[0], a.display_name), a.addr_spec)
           for r, a in zip(raw, msg["To"].addresses)]
    want_name = value
    want = [(want_name, "a@example.com"), (want_name, "b@example.com")]
    probs = [] if got == want else ["parsed %r" % got]
    return probs + fold_problems(out, 4, True, not utf8_ok)


def check_param(case, out):
    _, value = case
    msg = Parser(policy=email.policy.default).parsestr(
        "Content-Disposition: attachment;\r\n " + out + "\r\n\r\n")
    got = msg.get_filename()
    got2 = msg["Content-Disposition"].params.get("filename")
    probs = [] if got == value and got2 == value else ["decoded %r / %r" % (got, got2)]
    return probs + fold_problems(out, 1, True, True)


def body_lines(out, limit):
    probs = []
    if not out.endswith("\r\n") and out:
        pass
    for l in out.split("\r\n"):
        if len(l) > limit:
            probs.append("line of %d chars" % len(l))
        if "\r" in l or "\n" in l:
            probs.append("bare CR/LF in output")
    return probs


def check_qp(data, out):
    want = re.sub(rb"\r?\n", b"\r\n", data)
    got = binascii.a2b_qp(out.encode("ascii"))
    probs = [] if got == want else ["decoded %r" % got[:200]]
    probs += body_lines(out, 76)
    for l in out.split("\r\n"):
        if l[:1] == "." or l.startswith("From "):
            probs.append("unsafe line start %r" % l[:10])
        if l[-1:] in (" ", "\t"):
            probs.append("trailing blank %r" % l[-10:])
    return probs


def check_b64(data, out):
    got = base64.b64decode(out.replace("\r\n", ""))
    probs = [] if got == data else ["decoded differently"]
    lines = out.split("\r\n")
    if out and (lines[-1] != "" or any(len(l) != 76 for l in lines[:-2])):
        probs.append("line layout %r" % [len(l) for l in lines])
    return probs + body_lines(out, 76)


def run_headers():
    reqs = [{"kind": "subject", "value": v, "utf8_ok": u} for _, v, u in SUBJECTS]
    reqs += [{"kind": "phrase", "value": v, "utf8_ok": u} for _, v, u in PHRASES]
    reqs += [{"kind": "address", "value": v, "utf8_ok": u} for _, v, u in PHRASES]
    reqs += [{"kind": "param", "value": v} for _, v in PARAMS]
    outs = iter(dump(reqs))
    for kind, cases, check in (("subject", SUBJECTS, check_subject),
                               ("phrase", PHRASES, check_phrase),
                               ("address list", PHRASES, check_address),
                               ("param", PARAMS, check_param)):
        for case in cases:
            res = next(outs)
            out = res.get("output")
            if out is None:
                tap(False, "%s: %s" % (kind, case[0]), [str(res)])
                continue
            try:
                probs = check(case, out)
            except Exception as e:  # a parser exception is a failure too
                probs = ["exception %r" % e]
            tap(not probs, "%s: %s" % (kind, case[0]), probs + ([repr(out)] if probs else []))


def run_bodies():
    binary = bytes(range(256)) * 3
    qp_data = [(d, v.encode() if v is not None else bytes.fromhex(h)) for d, v, h in QP]
    b64_data = [(c[0], c[1].encode() if c[1] is not None else binary) for c in B64]
    reqs = [{"kind": "qp", "hex": b.hex()} for _, b in qp_data]
    reqs += [{"kind": "base64", "hex": b.hex()} for _, b in b64_data]
    reqs += [{"kind": "encoding", "value": v} for _, v, _ in ENCODINGS]
    outs = iter(dump(reqs))
    for desc, data in qp_data:
        out = next(outs)["output"]
        probs = check_qp(data, out)
        tap(not probs, "qp: " + desc, probs + ([repr(out)] if probs else []))
    for desc, data in b64_data:
        out = next(outs)["output"]
        probs = check_b64(data, out)
        tap(not probs, "base64: " + desc, probs)
    for desc, _, want in ENCODINGS:
        out = next(outs)["output"]
        tap(out == want, "encoding: %s is %s" % (desc, want), ["got " + out])


def main():
    run_headers()
    run_bodies()
    print("1..%d" % len(results))
    for i, (ok, desc, diag) in enumerate(results, 1):
        print("%s %d - %s" % ("ok" if ok else "not ok", i, desc))
        if not ok:
            for d in diag:
                print("# " + d.replace("\n", "\n# "))
    return 0


if __name__ == "__main__":
    sys.exit(main())
