#!/usr/bin/python3
"""schemas/ are JSON Schema 2020-12 documents, and the runtime agrees with a
real validator about which requests are usable.

  - every schemas/*.json, schemas/actions/*.json and schemas/sinks/*.json passes
    Draft202012Validator.check_schema (Debian's python3-jsonschema);
  - every schemas/examples/valid-*.json is accepted by the validator
    (request.json, with asset.json resolved from its "$ref", and each
    parameter set against actions/<identifier>.json) and by the runtime
    (pointed at a closed port: it must fail to connect, exit 1, never exit 2);
  - every schemas/examples/invalid-*.json is rejected by both, and the
    runtime's message names the field the validator complains about;
  - the schemas embedded in the binary and plugins (--list) are the files;
  - every "pattern" means the same to the runtime's regex engine (POSIX ERE,
    libc regcomp/regexec, called here through ctypes) as to Python's re,
    the ECMA-262-like dialect validators use, on a set of probe strings.

One TAP case per schema file and per example.
"""
import ctypes
import ctypes.util
import glob
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SRCDIR, contains, eq, free_port, run, run_connector, true  # noqa: E402

import jsonschema  # noqa: E402
from jsonschema import Draft202012Validator  # noqa: E402

SCHEMAS = os.path.join(SRCDIR, "schemas")
EXAMPLES = os.path.join(SCHEMAS, "examples")


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def schema_files():
    return sorted(glob.glob(os.path.join(SCHEMAS, "*.json"))
                  + glob.glob(os.path.join(SCHEMAS, "actions", "*.json"))
                  + glob.glob(os.path.join(SCHEMAS, "sinks", "*.json")))


def identifier_of(action):
    """As the runtime: "Send Email", "send-email", "send_email" -> "send_email"."""
    return re.sub(r"[ -]", "_", action).lower()


# --------------------------------------------------------------------------
# the Python side


def request_validator():
    """Draft 2020-12 validator for request.json with asset.json resolvable by
    its relative "$ref", with the referencing registry (jsonschema >= 4.18)
    or RefResolver (older, e.g. Debian 12's 4.10)."""
    request = load(os.path.join(SCHEMAS, "request.json"))
    asset = load(os.path.join(SCHEMAS, "asset.json"))
    try:
        from referencing import Registry, Resource
    except ImportError:
        store = {asset["$id"]: asset, request["$id"]: request}
        resolver = jsonschema.RefResolver(base_uri=request["$id"], referrer=request, store=store)
        return Draft202012Validator(request, resolver=resolver)
    registry = Registry().with_resources(
        [(s["$id"], Resource.from_contents(s)) for s in (request, asset)])
    return Draft202012Validator(request, registry=registry)


def python_errors(doc):
    """The validator's errors for a request document (empty list: valid)."""
    errors = list(request_validator().iter_errors(doc))
    if errors or not isinstance(doc, dict):
        return errors
    path = os.path.join(SCHEMAS, "actions", identifier_of(doc["action"]) + ".json")
    if not os.path.exists(path):
        raise AssertionError("no parameter schema %s for action %r" % (path, doc["action"]))
    v = Draft202012Validator(load(path))
    sets = doc.get("parameters", {})
    for i, p in enumerate(sets if isinstance(sets, list) else [sets]):
        for e in v.iter_errors(p):
            e.set_index = i
            errors.append(e)
    return errors


def field_of(error):
    """The field an error is about: the missing or unexpected key, else the
    last key on its path (None when the error is about the whole document)."""
    if error.validator == "required":
        m = re.match(r"'([^']+)' is a required property", error.message)
        if m:
            return m.group(1)
    if error.validator == "additionalProperties":
        m = re.search(r"'([^']+)' was unexpected", error.message)
        if m:
            return m.group(1)
    keys = [k for k in error.absolute_path if isinstance(k, str)]
    if keys:
        return keys[-1]
    return None


# --------------------------------------------------------------------------
# the runtime side

_installed = None


def installed_actions():
    global _installed
    if _installed is None:
        r = run_connector(args=("--list",))
        eq(r.rc, 0, "--list\n%s" % r)
        _installed = json.loads(r.stdout)
    return {a["identifier"] for a in _installed["actions"]}


def closed_port_request(doc):
    """The same request pointed at a closed loopback port with a short timeout."""
    d = json.loads(json.dumps(doc))
    d["asset"].update(server="127.0.0.1", port=free_port(), timeout=2)
    d["asset"].pop("ca_file", None)
    return d


# --------------------------------------------------------------------------
# tests


def make_check_schema(path):
    def t():
        s = load(path)
        eq(s.get("$schema"), "https://json-schema.org/draft/2020-12/schema", "$schema")
        Draft202012Validator.check_schema(s)
        true(s.get("$id", "").endswith("/" + os.path.relpath(path, SCHEMAS)),
             "$id ends with the file's path under schemas/", s.get("$id"))
    return t


def make_valid_example(path):
    def t():
        doc = load(path)
        errs = python_errors(doc)
        eq([e.message for e in errs], [], "the validator accepts %s" % os.path.basename(path))
        ident = identifier_of(doc["action"])
        # every action plugin is built with the connector: one that is
        # missing fails here rather than skipping (a skip passes in CI)
        true(ident in installed_actions(), "action plugin %s is installed (--list)" % ident)
        r = run_connector(closed_port_request(doc))
        true(r.rc not in (2, 3), "the runtime accepts it (exit %s, not 2)" % r.rc, r)
        eq(r.rc, 1, "exit status against a closed port\n%s" % r)
        res = r.result
        eq(res["identifier"], ident, "identifier")
        sets = doc.get("parameters", {})
        eq(len(res["action_results"]), len(sets) if isinstance(sets, list) else 1,
           "one action result per parameter set\n%s" % r)
        for ar in res["action_results"]:
            eq(ar["status"], "failed", "it failed at connecting")
            contains(ar["message"], "Connection to server failed", "failed at connect")
    return t


def make_invalid_example(path):
    def t():
        doc = load(path)
        errs = python_errors(doc)
        true(errs, "the validator rejects %s" % os.path.basename(path))
        # one mistake per example: with two, the runtime could refuse it for
        # the other one and the message check below would not tell
        eq(len(errs), 1, "validator errors for %s: %s" % (os.path.basename(path),
                                                          [e.message for e in errs]))
        if isinstance(doc, dict) and isinstance(doc.get("action"), str) and doc["action"]:
            ident = identifier_of(doc["action"])
            true(ident in installed_actions() or not os.path.exists(
                os.path.join(SCHEMAS, "actions", ident + ".json")),
                "action plugin %s is installed (--list)" % ident)
        r = run_connector(doc, timeout=30)
        eq(r.rc, 2, "the runtime rejects it as unusable\n%s" % r)
        res = r.result
        eq(res["status"], "failed", "status")
        fields = [f for f in (field_of(e) for e in errs) if f]
        if fields:
            # named as a key ("asset.port:", "\"body\" is required"), not
            # just somewhere in the text ("to" is in many a sentence)
            true(any(re.search(r'(?:^|[."])%s(?:["\[:])' % re.escape(f), res["message"])
                     for f in fields),
                 "the runtime's message names the field the validator names (%s)"
                 % ", ".join(fields), r)
    return t


def test_examples_exist():
    names = [os.path.basename(p) for p in glob.glob(os.path.join(EXAMPLES, "*.json"))]
    for a in ("test_connectivity", "send_email", "send_htmlemail", "send_rawemail"):
        true("valid-%s.json" % a in names, "a valid example for %s" % a, names)
    true(sum(n.startswith("invalid-") for n in names) >= 20, "invalid examples", names)
    eq([n for n in names if not n.startswith(("valid-", "invalid-"))], [], "stray files")


def test_embedded_schemas_are_the_files():
    installed = installed_actions()
    files = {os.path.basename(p)[:-5] for p in glob.glob(os.path.join(SCHEMAS, "actions", "*.json"))}
    eq(sorted(files - installed), [], "schemas/actions/ files whose action plugin --list lacks")
    for a in _installed["actions"]:
        path = os.path.join(SCHEMAS, "actions", a["identifier"] + ".json")
        true(os.path.exists(path), "schemas/actions/%s.json exists" % a["identifier"])
        eq(a["schema"], load(path), "the schema %s carries" % a["path"])
    for k in _installed.get("sinks", []):
        path = os.path.join(SCHEMAS, "sinks", k["identifier"] + ".json")
        true(os.path.exists(path), "schemas/sinks/%s.json exists" % k["identifier"])
        eq(k["schema"], load(path), "the schema %s carries" % k["path"])
    asset = load(os.path.join(SCHEMAS, "asset.json"))
    got = _installed["asset_schema"]
    for k, v in asset["properties"].items():
        eq(got["properties"].get(k), v, "embedded asset schema property %s" % k)
    eq(got.get("required"), asset.get("required"), "required")
    eq(got.get("additionalProperties"), asset.get("additionalProperties"), "additionalProperties")


# --------------------------------------------------------------------------
# pattern dialects: the runtime compiles "pattern" with regcomp(REG_EXTENDED)

REG_EXTENDED, REG_NOSUB = 1, 8  # glibc's values
PROBES = ["", "a", "A", "0", "-", "_", ".", ":", "[", "]", "\\", "^", "$", " ", "a b", "a\tb",
          "soar.corp.example", "smtp-prod", "smtp_prod.1", "[192.0.2.1]", "[IPv6:2001:db8::1]",
          "[]", "a]", "[a", "_-]", "\\]", "x\\y", "PLAIN", "plain", "XOAUTH2", "OAUTH-BEARER",
          "a" * 300, "smtp prod!", "localhost", "ab]cd", "a-b_c.d"]


def posix_search(pattern, text):
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    buf = ctypes.create_string_buffer(4096)  # larger than any libc's regex_t
    rc = libc.regcomp(buf, pattern.encode(), REG_EXTENDED | REG_NOSUB)
    if rc:
        raise AssertionError("regcomp(REG_EXTENDED) cannot compile %r (error %d): the "
                             "runtime refuses this schema" % (pattern, rc))
    try:
        return libc.regexec(buf, text.encode(), 0, None, 0) == 0
    finally:
        libc.regfree(buf)


def patterns_of(node, where, out):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "pattern" and isinstance(v, str):
                out.append((where, v))
            else:
                patterns_of(v, where + "/" + k, out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            patterns_of(v, "%s/%d" % (where, i), out)
    return out


def strings_of(node, out):
    if isinstance(node, str):
        out.add(node)
    elif isinstance(node, dict):
        for v in node.values():
            strings_of(v, out)
    elif isinstance(node, list):
        for v in node:
            strings_of(v, out)
    return out


def test_patterns_mean_the_same_to_posix_ere_and_python():
    found = []
    for path in schema_files():
        patterns_of(load(path), os.path.relpath(path, SCHEMAS), found)
    true(found, "the schemas have patterns to check")
    probes = set(PROBES)
    for path in glob.glob(os.path.join(EXAMPLES, "*.json")):
        strings_of(load(path), probes)
    probes = sorted(p for p in probes if p.isascii() and len(p) < 1000)
    differ = []
    for where, pat in found:
        for text in probes:
            py = re.search(pat, text) is not None
            px = posix_search(pat, text)
            if py != px:
                differ.append("%s %r on %r: Python %s, POSIX ERE %s" % (where, pat, text, py, px))
    eq(differ, [], "patterns that the runtime and a JSON Schema validator read differently")


def _register():
    g = globals()
    for path in schema_files():
        name = "test_schema_" + re.sub(r"\W", "_", os.path.relpath(path, SCHEMAS)[:-5])
        g[name] = make_check_schema(path)
    for path in sorted(glob.glob(os.path.join(EXAMPLES, "*.json"))):
        base = os.path.basename(path)[:-5]
        name = "test_example_" + re.sub(r"\W", "_", base)
        if base.startswith("valid-"):
            g[name] = make_valid_example(path)
        elif base.startswith("invalid-"):
            g[name] = make_invalid_example(path)


_register()

if __name__ == "__main__":
    run(globals())
