#!/usr/bin/python3
"""Reading received messages (core/inbound/, sc_inbound_summary) side by
side with Python's email parser doing the same job (policy.default:
subject, get_body(('plain', 'html')).get_content(), the attachments'
decoded sizes), on the same files:

  big    one message: a 1 MiB text body and a 50 MiB base64 attachment
  many   2,000 small multipart/alternative messages (one process each side)

Prints wall time, CPU time and peak RSS (/usr/bin/time) of each side. Not a
test: nothing is asserted. Run from a build directory:

  /usr/bin/python3 ../bench/inbound.py [--dump tests/unit/inbound_dump] [--mb 50]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from email import policy

PY_READER = r'''
import email, sys
from email import policy
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        m = email.message_from_binary_file(f, policy=policy.default)
    b = m.get_body(preferencelist=("plain", "html"))
    text = b.get_content() if b is not None else ""
    sizes = [len(p.get_payload(decode=True) or b"") for p in m.iter_attachments()]
    print(len(text), sum(sizes), str(m.get("Subject", ""))[:20])
'''


def run(argv):
    """(wall s, cpu s, peak RSS MiB) of one child, from /usr/bin/time: the
    child's own peak, not the pages it shared with this process at fork."""
    with tempfile.NamedTemporaryFile("r") as t:
        p = subprocess.run(["/usr/bin/time", "-o", t.name, "-f", "%e %U %S %M"] + argv,
                           stdout=subprocess.DEVNULL, check=False)
        if p.returncode != 0:
            sys.exit("%s failed" % argv[0])
        wall, user, sys_, kb = t.read().split()[-4:]
    return float(wall), float(user) + float(sys_), int(kb) / 1024


def big_message(path, mb):
    m = EmailMessage()
    m["Subject"] = "Großer Anhang"
    m["From"] = "a@example.org"
    m.set_content(("Zeile mit Umlauten: äöü ß " * 4 + "\n") * 10000)
    m.add_attachment(os.urandom(mb << 20), maintype="application",
                     subtype="octet-stream", filename="blob.bin")
    with open(path, "wb") as f:
        f.write(m.as_bytes(policy=policy.SMTP))


def small_message(path, i):
    m = EmailMessage()
    m["Subject"] = "Message %d — réunion" % i
    m["From"] = "a@example.org"
    m.set_content("Hello %d,\nplain text.\n" % i)
    m.add_alternative("<p>Hello %d</p>\n" % i, subtype="html")
    with open(path, "wb") as f:
        f.write(m.as_bytes(policy=policy.SMTP))


def row(name, side, r):
    print("%-6s %-22s %8.3f s wall %8.3f s cpu %8.1f MiB peak RSS" % (name, side, *r))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump", default="./tests/unit/inbound_dump")
    ap.add_argument("--mb", type=int, default=50)
    ap.add_argument("--many", type=int, default=2000)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench_inbound.")
    try:
        big = os.path.join(tmp, "big.eml")
        big_message(big, a.mb)
        print("big: %.1f MiB file" % (os.path.getsize(big) / 2**20))
        row("big", "inbound_dump", run([a.dump, "--max-body", str(1 << 20), big]))
        row("big", "python email", run([sys.executable, "-c", PY_READER, big]))
        files = []
        for i in range(a.many):
            files.append(os.path.join(tmp, "s%05d.eml" % i))
            small_message(files[-1], i)
        print("many: %d files" % len(files))
        row("many", "inbound_dump", run([a.dump] + files))
        row("many", "python email", run([sys.executable, "-c", PY_READER] + files))
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
