#!/usr/bin/python3
"""The readable form of send event as a browser shows it: the HTML part
of a sample detection, received by aiosmtpd, rendered by headless
Chromium (Debian's chromium). Checks that the page's DOM holds the
tables with every key, that the browser requested nothing but the page
itself (no remote content, nothing that failed to load), and that the
screenshot is a real picture. SMTP_CONNECTOR_EVENT_PNG=path keeps the
screenshot (doc/event-readable.png is made that way)."""
import json
import os
import shutil
import subprocess
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Aiosmtpd, asset, contains, eq, run, run_connector, true  # noqa: E402

SAMPLE = {
    "cat": "Suspicious PowerShell",
    "detect_mtd": {"name": "encoded-powershell", "level": "high"},
    "detect": {
        "event": {
            "COMMAND_LINE": "powershell.exe -NoP -W Hidden -Enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQA",
            "FILE_PATH": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
            "HASH": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "PROCESS_ID": 4242,
            "USER_NAME": "CORP\\j.doe",
            "PARENT": {"FILE_PATH": "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE",
                       "PROCESS_ID": 4100},
        },
    },
    "routing": {"hostname": "ws-042.corp.example", "event_type": "NEW_PROCESS",
                "event_time": 1700000000123, "sid": "b2f8e6c4-1c2d-4e5f-9a7b-3c4d5e6f7a8b",
                "tags": ["vip", "finance"], "int_ip": "10.1.2.3"},
    "priority": 3,
}

CHROMIUM = shutil.which("chromium")


def chromium(*args, timeout=60):
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--user-data-dir=" + harness.mkdtemp("chrome")]
    return subprocess.run(base + list(args), capture_output=True, timeout=timeout)


def png_size(data):
    true(data[:8] == b"\x89PNG\r\n\x1a\n", "a PNG file")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def png_distinct_rows(data):
    """Rows that differ from the first one: a blank page has none."""
    w, h = png_size(data)
    pos, idat = 8, b""
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        if data[pos + 4:pos + 8] == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = len(raw) // h
    rows = {raw[i * stride + 1:(i + 1) * stride] for i in range(h)}
    return len(rows)


def page_requests(netlog):
    """URLs the page itself asked for: requests made in the page's
    network partition (file://), not the browser's own background ones."""
    with open(netlog, encoding="utf-8", errors="replace") as f:
        text = f.read()
    try:
        log = json.loads(text)
    except ValueError:  # an unterminated log (the browser exited first) still lists events
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    return sorted({e["params"].get("url", "?") for e in log.get("events", [])
                   if "file://" in str(e.get("params", {}).get("network_isolation_key", ""))})


def test_the_request_check_sees_a_remote_image():
    """The check above is not vacuous: an <img> with a remote src is seen."""
    if not CHROMIUM:
        harness.skip("chromium not installed (Debian: chromium)")
    d = harness.tmpdir()
    page = os.path.join(d, "remote.html")
    with open(page, "w", encoding="utf-8") as f:
        f.write('<html><body><img src="http://127.0.0.1:9/x.png"></body></html>')
    netlog = os.path.join(d, "net.json")
    chromium("--dump-dom", "--log-net-log=" + netlog, "file://" + page)
    eq(page_requests(netlog), ["http://127.0.0.1:9/x.png"], "requests of the page")


def readable_page():
    with Aiosmtpd() as srv:
        req = {"action": "send event", "asset": asset(srv.port),
               "parameters": [{"from": "lc@corp.example", "to": "soc@corp.example",
                               "event": SAMPLE, "readable": True, "attach_json": False}]}
        r = run_connector(req)
        eq(r.rc, 0, "exit status\n%s" % r)
        m = srv.wait_messages(1)[0]["msg"]
        return [p for p in m.walk() if p.get_content_type() == "text/html"][0].get_content()


def test_chromium_renders_the_readable_event():
    if not CHROMIUM:
        harness.skip("chromium not installed (Debian: chromium)")
    d = harness.tmpdir()
    page = os.path.join(d, "event.html")
    with open(page, "w", encoding="utf-8") as f:
        f.write(readable_page())
    url = "file://" + page
    netlog = os.path.join(d, "net.json")
    dom = chromium("--dump-dom", "--log-net-log=" + netlog, url)
    eq(dom.returncode, 0, "chromium --dump-dom exit status: %s" % dom.stderr[-2000:])
    html = dom.stdout.decode("utf-8")
    for key in ("COMMAND_LINE", "FILE_PATH", "HASH", "PARENT", "hostname", "event_time", "tags"):
        contains(html, "<th", "table header cells")
        contains(html, key, "key %s in the rendered DOM" % key)
    true(html.count("<table") >= 4, "nested tables in the DOM")
    contains(html, "2023-11-14 22:13:20.123 UTC", "epoch milliseconds shown as a date")
    true(page_requests(netlog) == [], "the page requested nothing (no remote content, "
         "nothing to fail): %s" % page_requests(netlog))
    shot = os.path.join(d, "event.png")
    s = chromium("--screenshot=" + shot, "--window-size=1000,900", "--hide-scrollbars", url)
    eq(s.returncode, 0, "chromium --screenshot exit status: %s" % s.stderr[-2000:])
    with open(shot, "rb") as f:
        data = f.read()
    eq(png_size(data), (1000, 900), "screenshot size")
    true(png_distinct_rows(data) > 100, "the screenshot shows a page, not a blank")
    keep = os.environ.get("SMTP_CONNECTOR_EVENT_PNG")
    if keep:
        shutil.copyfile(shot, keep)


if __name__ == "__main__":
    run(globals())
