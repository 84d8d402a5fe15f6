#!/usr/bin/python3
"""The connector as installed: plugins from an installed plugin directory
(make install into a temporary DESTDIR, where libtool puts action_x.la
next to action_x.so), the support modules behind the loader, and the
command line's exit statuses."""

import glob
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import contains, eq, mkdtemp, not_contains, run, run_connector, skip, true  # noqa: E402

_installed = {}


def installed_plugin_dir():
    """make install-pkglibLTLIBRARIES into a temporary DESTDIR (once per
    file): the directory holding the installed plugins."""
    if "dir" in _installed:
        return _installed["dir"]
    builddir = os.environ.get("SMTP_CONNECTOR_BUILDDIR")
    if not builddir:
        skip("SMTP_CONNECTOR_BUILDDIR not set (run via make check)")
    dest = mkdtemp("destdir")
    r = subprocess.run(["make", "-C", builddir, "install-pkglibLTLIBRARIES", "DESTDIR=" + dest],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    eq(r.returncode, 0, "make install-pkglibLTLIBRARIES DESTDIR\n"
       + r.stdout.decode(errors="replace")[-3000:])
    las = glob.glob(os.path.join(dest, "**", "action_send_email.la"), recursive=True)
    eq(len(las), 1, "one installed action_send_email.la")
    d = os.path.dirname(las[0])
    true(os.path.exists(os.path.join(d, "action_send_email.so")), "the .so next to the .la")
    _installed["dir"] = d
    return d


def test_unknown_action_lists_each_installed_action_once():
    d = installed_plugin_dir()
    r = run_connector({"action": "no such action", "asset": {"server": "127.0.0.1"}},
                      args=("--plugin-dir", d))
    eq(r.rc, 2, "exit status\n%s" % r)
    msg = r.result["message"]
    m = re.search(r"installed actions: (.*?) \(looked in", msg)
    true(m, "the message lists the installed actions", msg)
    names = [n.strip().strip('"') for n in m.group(1).split(",")]
    eq(sorted(names), sorted(set(names)), "each action named once")
    eq(sorted(names), ["send_email", "send_htmlemail", "send_rawemail", "test_connectivity"],
       "installed actions")


def test_an_action_in_two_directories_is_listed_once():
    d = installed_plugin_dir()
    build = os.environ["SMTP_CONNECTOR_PLUGIN_PATH"]
    r = run_connector({"action": "nope", "asset": {"server": "127.0.0.1"}},
                      args=("--plugin-dir", build, "--plugin-dir", d))
    eq(r.rc, 2, "exit status\n%s" % r)
    eq(r.result["message"].count('"send_email"'), 1, "send_email named once\n%s" % r)


def test_list_from_an_installed_dir_has_each_plugin_once():
    d = installed_plugin_dir()
    r = run_connector(args=("--plugin-dir", d, "--list"))
    eq(r.rc, 0, "--list\n%s" % r)
    listing = json.loads(r.stdout)
    for kind in ("actions", "auth"):
        ids = [p["identifier"] for p in listing[kind]]
        eq(sorted(ids), sorted(set(ids)), "%s listed once each" % kind)
        for p in listing[kind]:
            true(p["path"].startswith(d + "/"), "loaded from the installed dir: %s" % p["path"])
    not_contains(r.stderr, "failed to load")


if __name__ == "__main__":
    run(globals())
