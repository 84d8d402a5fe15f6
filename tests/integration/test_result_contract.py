#!/usr/bin/python3
"""The result contract: --list names each action's output data paths (as
the SOAR app manifest does), every listed path is a field of
schemas/result.json, and the data of real results (against aiosmtpd) uses
only listed paths. (Every result of every test is validated against
schemas/result.json by harness.run_connector.)"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Aiosmtpd, asset, eq, run, run_connector, true  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def listed():
    r = run_connector(args=["--list"])
    eq(r.rc, 0, "--list exit status\n%s" % r)
    doc = json.loads(r.stdout)
    return {a["identifier"]: a for a in doc["actions"]}


def data_properties():
    with open(os.path.join(HERE, "..", "..", "schemas", "result.json"), encoding="utf-8") as f:
        return json.load(f)["$defs"]["data"]["properties"]


def leaf_paths(v, path):
    if isinstance(v, dict):
        for k, x in v.items():
            yield from leaf_paths(x, path + "." + k)
    elif isinstance(v, list):
        for x in v:
            yield from leaf_paths(x, path + ".*")
    else:
        yield path


def test_list_names_output_paths_of_every_action():
    acts = listed()
    for ident in ("test_connectivity", "send_email", "send_htmlemail", "send_rawemail",
                  "send_event"):
        true(ident in acts, "%s listed" % ident)
        paths = {o["data_path"]: o["data_type"] for o in acts[ident]["output"]}
        eq(paths.get("action_result.status"), "string", "%s: action_result.status" % ident)
        for p, t in paths.items():
            true(t in ("string", "numeric", "boolean", "object"), "%s: type of %s" % (ident, p))
        if ident.startswith("send_"):
            eq(paths.get("action_result.data.*.message_id"), "string", ident + " message_id")


def test_listed_paths_are_fields_of_the_result_schema():
    props = data_properties()
    for ident, a in listed().items():
        for o in a["output"]:
            p = o["data_path"]
            if p.startswith("action_result.data.*."):
                field = p[len("action_result.data.*."):].split(".")[0]
                true(field in props, "%s: %s is in schemas/result.json" % (ident, p))


def test_real_results_use_only_listed_paths():
    acts = listed()
    with Aiosmtpd() as srv:
        base = {"from": "soc@corp.example", "to": "ir@corp.example"}
        cases = [("test connectivity", "test_connectivity", {}),
                 ("send email", "send_email", dict(base, body="hi")),
                 ("send rawemail", "send_rawemail",
                  {"raw_email": "From: a@corp.example\r\nTo: b@corp.example\r\n\r\nhi\r\n"}),
                 ("send event", "send_event", dict(base, event={"cat": "x"}))]
        for action, ident, params in cases:
            r = run_connector({"action": action, "asset": asset(srv.port),
                               "parameters": [params]})
            eq(r.rc, 0, "%s exit status\n%s" % (action, r))
            paths = {o["data_path"] for o in acts[ident]["output"]}
            for d in r.result["action_results"][0]["data"]:
                for leaf in leaf_paths(d, "action_result.data.*"):
                    true(leaf in paths, "%s: %s is listed by --list" % (action, leaf))


if __name__ == "__main__":
    run(globals())
