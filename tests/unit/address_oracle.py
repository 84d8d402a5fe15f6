#!/usr/bin/python3
"""Differential test: core/address.c (through addr_dump) against Python's
email.utils.getaddresses (strict, the default since CVE-2023-27043) on
tests/unit/address_corpus.txt. Prints TAP; exits 0 even when cases fail,
so the TAP driver does the counting.

Corpus format, one case per line (blank lines and lines starting with
"#" are skipped; only the trailing newline is stripped):

  <input>                      agree with Python: the same (display, addr)
                               pairs, or an error where Python returns its
                               failure value [('', '')]
  !expect-error <input>        we reject what Python accepts
  !differs <input> ==> <json>  we accept, with this [[display, addr], ...]

A tag whose difference has gone (Python now gives the same answer) fails
too, so the corpus keeps saying where the rules really differ.

Env: ADDR_DUMP (default ./tests/unit/addr_dump), ADDR_CORPUS (default:
address_corpus.txt next to this script).
"""
import json
import os
import subprocess
import sys
from email.utils import getaddresses

HERE = os.path.dirname(os.path.abspath(__file__))
DUMP = os.environ.get("ADDR_DUMP", "./tests/unit/addr_dump")
CORPUS = os.environ.get("ADDR_CORPUS", os.path.join(HERE, "address_corpus.txt"))
PY_FAIL = [["", ""]]


def load_cases(path):
    cases = []
    with open(path, encoding="utf-8", newline="\n") as f:
        for lineno, line in enumerate(f, 1):
            line = line[:-1] if line.endswith("\n") else line
            if not line.strip() or line.startswith("#"):
                continue
            kind, expect = "agree", None
            if line.startswith("!expect-error "):
                kind, line = "error", line[len("!expect-error "):]
            elif line.startswith("!differs "):
                kind, line = "differs", line[len("!differs "):]
                line, _, expect = line.rpartition(" ==> ")
                expect = json.loads(expect)
            cases.append((lineno, kind, line, expect))
    return cases


def run_dump(inputs):
    proc = subprocess.run([DUMP], input="".join(s + "\n" for s in inputs),
                          capture_output=True, text=True, encoding="utf-8",
                          check=False)
    outs = [json.loads(l) for l in proc.stdout.splitlines()]
    if proc.returncode != 0 or len(outs) != len(inputs):
        raise RuntimeError("%s exited %d with %d of %d lines; stderr: %s" % (
            DUMP, proc.returncode, len(outs), len(inputs), proc.stderr[-2000:]))
    return outs


def python_view(text):
    return [[d, a] for d, a in getaddresses([text])]


def judge(kind, ours, py, expect):
    """None when fine, else the reason it is not."""
    got = ours["list"] if ours["ok"] else None
    if kind == "agree":
        if py == PY_FAIL:
            return None if got is None else "Python rejects it, we accept"
        return None if got == py else "differs from Python"
    if kind == "error":
        if got is not None:
            return "expected an error"
        return "Python rejects it too: drop the tag" if py == PY_FAIL else None
    if got != expect:
        return "differs from the expected list"
    return "Python agrees now: drop the tag" if py == expect else None


def main():
    try:
        cases = load_cases(CORPUS)
        outs = run_dump([c[2] for c in cases])
    except (OSError, RuntimeError, ValueError) as e:
        print("Bail out! %s" % e)
        return 0
    print("1..%d" % len(cases))
    for n, ((lineno, kind, text, expect), ours) in enumerate(zip(cases, outs), 1):
        py = python_view(text)
        why = judge(kind, ours, py, expect)
        name = "line %d: %s" % (lineno, text.replace("#", "?"))
        if why is None:
            print("ok %d - %s" % (n, name))
            continue
        print("not ok %d - %s" % (n, name))
        print("# %s" % why)
        print("# ours:   %s" % json.dumps(ours, ensure_ascii=False))
        print("# python: %s" % json.dumps(py, ensure_ascii=False))
        if expect is not None:
            print("# expect: %s" % json.dumps(expect, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
