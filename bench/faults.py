#!/usr/bin/python3
"""Time the connector against tests/servers/faulty_smtpd.py, stage x behaviour.

Usage: bench/faults.py BINARY [TIMEOUT]   (BINARY: build/smtp-connector)
Prints a Markdown table: stage, behaviour, wall time, connections the
server saw, exit status and the failure message. Run it before and after a
change to compare (bench/results.md holds the figures).
"""
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "..", "tests", "servers", "faulty_smtpd.py")
STAGES = ["greeting", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "eod"]
BEHAVIOURS = ["stall", "drip", "close", "reply"]
TEXT = {"greeting": "554 5.7.1 faulty.test: your IP is on a block list",
        "ehlo": "550 5.7.1 faulty.test: EHLO refused by policy",
        "starttls": "454 4.7.0 TLS not available due to temporary reason",
        "auth": "535 5.7.8 faulty.test: credentials invalid",
        "mail": "451 4.3.0 faulty.test: sender check temporarily failed",
        "rcpt": "550 5.1.1 faulty.test: no such user",
        "data": "554 5.3.0 faulty.test: no DATA now",
        "eod": "554 5.7.1 faulty.test: message refused by content filter"}


def run(binary, stage, behaviour, timeout, plugins):
    d = tempfile.mkdtemp(prefix="faults-")
    log = os.path.join(d, "log")
    rule = "%s=%s" % (stage, behaviour)
    if behaviour == "reply":
        rule += ":" + TEXT[stage]
    extra = ["--offer-starttls"] if stage == "starttls" else []
    srv = subprocess.Popen(["/usr/bin/python3", SERVER, "--at", rule, "--drip-rate", "4",
                            "--log", log, "--lifetime", "60"] + extra, stdout=subprocess.PIPE)
    port = int(srv.stdout.readline().split()[1])
    a = {"server": "127.0.0.1", "port": port, "ssl_config": "None", "timeout": timeout,
         "sender_address": "soar@corp.example"}
    if stage == "starttls":
        a["ssl_config"] = "StartTLS"
    if stage == "auth":
        a.update(auth_type="Basic", username="u", password="p")
    req = {"action": "send email", "asset": a,
           "parameters": {"to": "x@corp.example", "subject": "s", "body": "b"}}
    env = dict(os.environ, SMTP_CONNECTOR_PLUGIN_PATH=plugins,
               SMTP_CONNECTOR_STATE_DIR=os.path.join(d, "state"))
    t0 = time.monotonic()
    p = subprocess.run([binary], input=json.dumps(req).encode(), capture_output=True, env=env,
                       timeout=120)
    took = time.monotonic() - t0
    srv.terminate()
    srv.wait()
    with open(log) as f:
        conns = sum(1 for line in f if line.startswith("CONNECT"))
    try:
        res = json.loads(p.stdout.decode().splitlines()[-1])
        msg = res["action_results"][0]["message"]
    except (ValueError, IndexError, KeyError):
        msg = p.stdout.decode()[-200:]
    return took, conns, p.returncode, msg


def main():
    binary = os.path.abspath(sys.argv[1])
    timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 3
    plugins = os.path.join(os.path.dirname(binary), "plugins")
    print("timeout = %g s\n" % timeout)
    print("| stage | behaviour | wall s | conns | exit | message |")
    print("|---|---|---|---|---|---|")
    for stage in STAGES:
        for b in BEHAVIOURS:
            took, conns, rc, msg = run(binary, stage, b, timeout, plugins)
            print("| %s | %s | %.1f | %d | %d | %s |" % (stage, b, took, conns, rc,
                                                      msg.replace("|", "\\|").replace("\n", " ")))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
