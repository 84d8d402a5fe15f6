#!/usr/bin/python3
"""The auth-plugin SDK end to end: install the build into a temporary
DESTDIR, build examples/auth-plugin with its own plain Makefile against the
installed smtp-connector.pc, and authenticate with it ("PassCmd") against
aiosmtpd, loading it from a plugin dir next to the build-tree plugins."""

import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SRCDIR, Aiosmtpd, asset, contains, eq, mkdtemp,  # noqa: E402
                     not_contains, run, run_connector, skip)

_built = {}


def plugin_dir():
    """The example built out of tree (once per file): its directory."""
    if "dir" in _built:
        return _built["dir"]
    builddir = os.environ.get("SMTP_CONNECTOR_BUILDDIR")
    if not builddir:
        skip("SMTP_CONNECTOR_BUILDDIR not set (run via make check)")
    if not shutil.which("pkg-config") or not shutil.which("make"):
        skip("pkg-config or make is not installed")
    dest = mkdtemp("destdir")
    # Only what a plugin author builds against: the library, the headers
    # and the .pc. A full `make install` would have libtool relink the
    # build tree's plugins in place while other tests are loading them.
    r = subprocess.run(["make", "-C", builddir, "install-libLTLIBRARIES",
                        "install-smtpconnincludeHEADERS", "install-pkgconfigDATA",
                        "DESTDIR=" + dest],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    eq(r.returncode, 0, "make install DESTDIR\n" + r.stdout.decode(errors="replace")[-3000:])
    pcs = [os.path.join(d, f) for d, _, fs in os.walk(dest) for f in fs if f == "smtp-connector.pc"]
    eq(len(pcs), 1, "one smtp-connector.pc installed")
    ex = os.path.join(mkdtemp("example"), "auth-plugin")
    # out of the source tree, and writable: make distcheck's source tree
    # is read-only, and copytree would copy that mode along
    shutil.copytree(os.path.join(SRCDIR, "examples", "auth-plugin"), ex,
                    copy_function=shutil.copyfile)
    for d, _, _ in os.walk(ex):
        os.chmod(d, 0o755)
    # pkg-config's variables on make's command line, not in the
    # environment: the README's `make PKG_CONFIG_PATH=...` form. A plugin
    # author's make, not a sub-make of make check's (whose MAKEFLAGS -s
    # would hide the commands, and -j its jobserver).
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PKG_CONFIG") and k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    r = subprocess.run(["make", "-C", ex, "CFLAGS=-O2 -g -Werror",
                        "PKG_CONFIG_PATH=" + os.path.dirname(pcs[0]),
                        "PKG_CONFIG_SYSROOT_DIR=" + dest], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    out = r.stdout.decode(errors="replace")
    eq(r.returncode, 0, "example build\n" + out)
    contains(out, "-I" + dest, "compiled against the installed headers")
    eq(os.path.exists(os.path.join(ex, "auth_passcmd.so")), True, "auth_passcmd.so built")
    _built["dir"] = ex
    return ex


def plugin_args():
    return ("--plugin-dir", os.environ["SMTP_CONNECTOR_PLUGIN_PATH"], "--plugin-dir", plugin_dir())


def req(port, **kw):
    a = asset(port, username="u@corp.example", **kw)
    return {"action": "send email", "asset": a,
            "parameters": {"to": "soc@corp.example", "body": "via passcmd"}}


def test_passcmd_builds_out_of_tree_and_authenticates():
    args = plugin_args()
    with Aiosmtpd(auth=["u@corp.example:p"], auth_required=True) as srv:
        r = run_connector(req(srv.port, auth_type="PassCmd",
                              password_command="printf 'p\\nnot-the-password\\n'"), args=args + ("-v",))
        eq(r.rc, 0, "exit\n%s" % r)
        data = r.result["action_results"][0]["data"][0]
        eq(data["auth"], "PassCmd", "auth")
        msgs = srv.wait_messages(1)
        eq(msgs[0]["auth_login"], "u@corp.example", "authenticated as")
        not_contains(r.stderr, "printf 'p", "the command is not logged")


def test_passcmd_listed_with_its_asset_key():
    r = run_connector(args=plugin_args() + ("--list",))
    eq(r.rc, 0, "--list\n%s" % r)
    contains(r.stdout, "PassCmd")
    contains(r.stdout, "password_command")


def test_passcmd_in_auth_order_after_a_skipped_method():
    args = plugin_args()
    with Aiosmtpd(auth=["u@corp.example:p"], auth_required=True) as srv:
        r = run_connector(req(srv.port, auth_order=["OAuth", "PassCmd", "Basic"],
                              password_command="echo p"), args=args)
        eq(r.rc, 0, "exit\n%s" % r)
        att = r.result["action_results"][0]["data"][0]["auth_attempts"]
        eq([(a["method"], a["outcome"]) for a in att], [("OAuth", "skipped"), ("PassCmd", "success")], "attempts")


def test_passcmd_failures_are_reported():
    args = plugin_args()
    with Aiosmtpd(auth=["u@corp.example:p"], auth_required=True) as srv:
        r = run_connector(req(srv.port, auth_type="PassCmd", password_command="echo oops >&2; exit 3"),
                          args=args)
        eq(r.rc, 1, "exit\n%s" % r)
        contains(r.result["action_results"][0]["message"], "exit status 3")
        r = run_connector(req(srv.port, auth_type="PassCmd", password_command="sleep 30", timeout=1),
                          args=args, timeout=20)
        eq(r.rc, 1, "exit\n%s" % r)
        contains(r.result["action_results"][0]["message"], "did not finish within 1 s")
        r = run_connector(req(srv.port, auth_type="PassCmd", password_command="exec >&-; sleep 30",
                              timeout=1), args=args, timeout=20)
        eq(r.rc, 1, "a command that closes stdout and keeps running is bounded too\n%s" % r)
        contains(r.result["action_results"][0]["message"], "did not finish within 1 s")
        r = run_connector(req(srv.port, auth_type="PassCmd", password_command="echo Wr0ng-Pass-Value"),
                          args=args + ("-v",))
        eq(r.rc, 1, "a wrong password is refused\n%s" % r)
        contains(r.result["action_results"][0]["message"], "refused the credentials")
        not_contains(r.stdout + r.stderr, "Wr0ng-Pass-Value", "the command's output leaked")
        r = run_connector(req(srv.port, auth_type="PassCmd"), args=args)
        eq(r.rc, 1, "missing password_command\n%s" % r)
        contains(r.result["action_results"][0]["message"], "missing: password_command")


if __name__ == "__main__":
    run(globals())
