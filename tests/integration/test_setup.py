#!/usr/bin/python3
"""The connector as installed: plugins from an installed plugin directory
(libtool's installed action_x.la next to action_x.so), the support modules behind the loader, and the
command line's exit statuses."""

import glob
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SRCDIR, Aiosmtpd, asset, contains, eq, mkdtemp, ne,  # noqa: E402
                     not_contains, run, run_connector, skip, true)

_installed = {}


def installed_plugin_dir():
    """A plugin directory as `make install` lays it out (once per file):
    for each module the .la libtool installs (its .libs/X.lai) next to
    X.so. Built by copying, not by make install: that relinks the build
    tree's plugins in place, under the tests running beside this one."""
    if "dir" in _installed:
        return _installed["dir"]
    build = os.environ.get("SMTP_CONNECTOR_PLUGIN_PATH", "").split(":")[0]
    if not build:
        skip("SMTP_CONNECTOR_PLUGIN_PATH not set (run via make check)")
    d = mkdtemp("pkglibdir")
    for la in glob.glob(os.path.join(build, "*.la")):
        name = os.path.basename(la)[:-3]
        shutil.copyfile(os.path.join(build, ".libs", name + ".lai"), os.path.join(d, name + ".la"))
        shutil.copyfile(os.path.join(build, ".libs", name + ".so"), os.path.join(d, name + ".so"))
    true(os.path.exists(os.path.join(d, "action_send_email.la")), "action_send_email.la installed")
    with open(os.path.join(d, "action_send_email.la")) as f:
        contains(f.read(), "installed=yes", "the installed form of the .la")
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
    installed = sorted({f[len("action_"):].split(".")[0] for f in os.listdir(d)
                        if f.startswith("action_") and f.endswith((".la", ".so"))})
    true(len(installed) >= 5, "the installed dir holds the actions: %s" % installed)
    eq(sorted(names), installed, "installed actions")


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


def test_the_tarball_carries_no_test_logs():
    # make check writes tests/integration/*.log in the build tree (this
    # test's own log is being written now); make dist must not ship them
    builddir = os.environ.get("SMTP_CONNECTOR_BUILDDIR")
    if not builddir:
        skip("SMTP_CONNECTOR_BUILDDIR not set (run via make check)")
    dist = os.path.join(mkdtemp("dist"), "pkg")
    r = subprocess.run(["make", "-C", builddir, "distdir", "distdir=" + dist],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    eq(r.returncode, 0, "make distdir\n" + r.stdout.decode(errors="replace")[-3000:])
    true(os.path.exists(os.path.join(dist, "tests", "integration", "harness.py")), "the harness is in")
    left = [os.path.join(d, f) for d, ds, fs in os.walk(os.path.join(dist, "tests"))
            for f in fs + ds if f.endswith((".log", ".trs")) or f == "__pycache__"]
    eq(left, [], "test output in the tarball")


# --------------------------------------------------------------------------
# the HTML support module through the core's loader

def send(port, body, args=(), **params):
    p = {"to": "soc@corp.example", "subject": "s", "body": body}
    p.update(params)
    return run_connector({"action": "send email", "asset": asset(port, sender_address="a@corp.example"),
                          "parameters": p}, args=("-v",) + tuple(args))


def test_support_module_is_listed():
    r = run_connector(args=("--list",))
    eq(r.rc, 0, "--list\n%s" % r)
    listing = json.loads(r.stdout)
    sup = listing.get("support")
    true(isinstance(sup, list), "--list has a support section", r.stdout[:500])
    eq([p["identifier"] for p in sup], ["html"], "support modules")
    true(sup[0]["path"].startswith(os.environ["SMTP_CONNECTOR_PLUGIN_PATH"].split(":")[0]),
         "found on the plugin path: %s" % sup[0]["path"])
    eq([p["identifier"] for p in listing["actions"] if p["identifier"] == "html"], [],
       "not listed as an action")


def test_html_support_is_loaded_only_for_html():
    with Aiosmtpd() as srv:
        r = send(srv.port, "plain text")
        eq(r.rc, 0, "plain text sent\n%s" % r)
        not_contains(r.stderr, "support plugin", "plain text loads no support module")
        r = send(srv.port, "<html><body><p>Hi</p></body></html>")
        eq(r.rc, 0, "html sent\n%s" % r)
        contains(r.stderr, 'loaded support plugin "HTML" from ' +
                 os.path.join(os.environ["SMTP_CONNECTOR_PLUGIN_PATH"].split(":")[0], "support_html"))
        eq(len(srv.wait_messages(2)), 2, "both sent")


def test_support_module_of_another_abi_is_refused_with_the_loader_diagnostic():
    b = os.environ.get("SMTP_CONNECTOR_BUILDDIR")
    if not b:
        skip("SMTP_CONNECTOR_BUILDDIR not set (run via make check)")
    wrong = os.path.join(b, "tests", "plugins", ".libs", "wrong_abi.so")
    true(os.path.exists(wrong), "test module %s was built" % wrong)
    first = mkdtemp("plugins")
    shutil.copyfile(wrong, os.path.join(first, "support_html.so"))
    with Aiosmtpd() as srv:
        r = send(srv.port, "<html><body><p>Hi</p></body></html>",
                 args=("--plugin-dir", first, "--plugin-dir", os.environ["SMTP_CONNECTOR_PLUGIN_PATH"]))
        eq(r.rc, 1, "the action fails\n%s" % r)
        msg = r.result["action_results"][0]["message"]
        contains(msg, os.path.join(first, "support_html"), "names the module file")
        contains(msg, "plugin ABI", "says it is the ABI")
        eq(srv.messages(), [], "nothing sent")
        # plain text does not need it, so it still goes out
        r = send(srv.port, "plain", args=("--plugin-dir", first, "--plugin-dir",
                                          os.environ["SMTP_CONNECTOR_PLUGIN_PATH"]))
        eq(r.rc, 0, "plain text is unaffected\n%s" % r)


# --------------------------------------------------------------------------
# the command line (core/main.c)

def test_unknown_command_names_the_commands():
    r = run_connector(args=("send",))
    eq(r.rc, 2, "exit status\n%s" % r)
    contains(r.result["message"], 'unknown command "send"')
    contains(r.result["message"], "authorize")


def test_global_options_after_the_subcommand():
    r = run_connector({"asset": {"server": "127.0.0.1", "auth_type": "Basic"}},
                      args=("authorize", "-v"))
    eq(r.rc, 2, "Basic has no interactive authorization\n%s" % r)
    contains(r.stderr, 'debug: loaded auth plugin "Basic"', "-v after authorize is taken")
    r = run_connector({"asset": {"server": "127.0.0.1"}}, args=("authorize", "extra"))
    eq(r.rc, 2, "authorize takes no arguments\n%s" % r)
    contains(r.result["message"], "authorize takes no arguments")


# --------------------------------------------------------------------------
# the public headers are the whole contract; make lint checks the layout

def declared(paths):
    names = set()
    for p in paths:
        with open(p) as f:
            for line in f:
                if re.match(r"\s*(\*|/\*)", line):
                    continue
                m = re.match(r"[a-z].*?[ *]((?:sc|core)_[a-z0-9_]*)\(", line)
                if m:
                    names.add(m.group(1))
    return names


def test_the_library_exports_what_the_public_headers_declare():
    b = os.environ.get("SMTP_CONNECTOR_BUILDDIR")
    if not b or not shutil.which("nm"):
        skip("SMTP_CONNECTOR_BUILDDIR not set or no nm")
    lib = os.path.join(b, ".libs", "libsmtp-connector.so")
    r = subprocess.run(["nm", "-D", "--defined-only", lib], stdout=subprocess.PIPE, timeout=60)
    exported = {l.split()[-1] for l in r.stdout.decode().splitlines() if l.strip()}
    exported = {n for n in exported if not n.startswith("_")}
    public = declared(glob.glob(os.path.join(SRCDIR, "include", "smtp-connector", "*.h")))
    entry = declared([os.path.join(SRCDIR, "core", "runtime", "runtime.h")])
    eq(sorted(exported - public - entry), [], "exported but in no public header")
    for internal in ("sc_qp_encode", "sc_session_send", "sc_asset_long", "core_vasprintf"):
        true(internal not in exported, "%s is not exported" % internal)
    for used in ("sc_send", "sc_buf_add", "sc_support_load", "sc_asset_string"):
        true(used in exported, "%s is exported" % used)


def test_auth_plugins_use_the_host_buffer():
    # one growable buffer type in the host API: no plugin of the auth SDK
    # (nor the example third parties copy) defines its own
    found = []
    for top in ("plugins/auth", "examples"):
        for d, _, fs in os.walk(os.path.join(SRCDIR, top)):
            for f in fs:
                if f.endswith((".c", ".h")):
                    with open(os.path.join(d, f), errors="replace") as fh:
                        for n, line in enumerate(fh, 1):
                            if re.match(r"\s*struct \w*buf\w*\s*\{", line):
                                found.append("%s:%d: %s" % (os.path.join(top, f), n, line.strip()))
    eq(found, [], "private buffer types")


def test_every_public_function_returning_a_code_lists_its_codes():
    # msmtp's smtp.h style: the comment before each prototype that returns
    # an int code (or takes a struct sc_error *) names the codes
    missing = []
    for h in sorted(glob.glob(os.path.join(SRCDIR, "include", "smtp-connector", "*.h"))):
        with open(h) as f:
            text = f.read()
        for m in re.finditer(r"((?:/\*(?:[^*]|\*(?!/))*\*/\n)?)((?:int|const void \*|curl_mimepart \*)\s*(sc_[a-z_]+)\([^;]*\);)",
                             text):
            comment, proto, name = m.group(1), m.group(2), m.group(3)
            if not proto.startswith("int") and "sc_error" not in proto:
                continue
            if name in ("sc_error_set", "sc_verbose", "sc_asset_bool", "sc_header_name_valid",
                        "sc_address_is_utf8", "sc_session_offers", "sc_rawmsg_is",
                        "sc_journal_body_matches"):
                continue  # returns its argument; values and predicates, not codes
            if "SC_" not in comment and "codes" not in comment:
                missing.append("%s: %s" % (os.path.basename(h), name))
    eq(missing, [], "prototypes whose comment names no code")


def test_internals_doc_names_only_what_exists():
    # doc/internals.md walks a request through the code: every file and
    # function it names must exist, so the walk stays true as code moves
    with open(os.path.join(SRCDIR, "doc", "internals.md")) as f:
        doc = f.read()
    sources = {}
    for top in ("core", "plugins", "include"):
        for d, _, fs in os.walk(os.path.join(SRCDIR, top)):
            for n in fs:
                if n.endswith((".c", ".h")):
                    with open(os.path.join(d, n), errors="replace") as fh:
                        sources[os.path.relpath(os.path.join(d, n), SRCDIR)] = fh.read()
    code = "\n".join(sources.values())
    missing = []
    for path in set(re.findall(r"`((?:core|plugins|include)/[\w/.-]+\.[ch])`", doc)):
        if path not in sources:
            missing.append(path)
    for fn in set(re.findall(r"`(\w+)\(\)", doc)):
        if not re.search(r"\b%s\s*\(" % re.escape(fn), code):
            missing.append(fn + "()")
    eq(sorted(missing), [], "named in doc/internals.md but not in the tree")
    contains(doc, "## One inbound message")


def test_format_check_fails_on_a_misformatted_listed_file():
    b = os.environ.get("SMTP_CONNECTOR_BUILDDIR")
    if not b or not shutil.which("clang-format"):
        skip("SMTP_CONNECTOR_BUILDDIR not set or clang-format not installed")
    r = subprocess.run(["make", "-s", "-C", b, "format-check"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=120)
    eq(r.returncode, 0, "FORMAT_FILES are formatted\n" + r.stdout.decode(errors="replace"))
    bad = os.path.join(mkdtemp("fmt"), "bad.c")
    with open(bad, "w") as f:
        f.write("int  f( int a ){return a;}\n")
    r = subprocess.run(["make", "-s", "-C", b, "format-check", "FORMAT_FILES=" + bad],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    ne(r.returncode, 0, "a misformatted file fails\n" + r.stdout.decode(errors="replace"))
    contains(r.stdout.decode(errors="replace"), "bad.c")


def test_modules_loaded_late_do_not_move_the_plugin_table():
    # a session keeps a pointer to its auth plugin's entry across requests;
    # later requests load more modules (actions, then support_html while an
    # action runs). The ninth module used to grow the table with realloc,
    # leaving those pointers dangling (ASan: heap-use-after-free).
    d = mkdtemp("many")
    src = installed_plugin_dir()
    for f in os.listdir(src):
        shutil.copyfile(os.path.join(src, f), os.path.join(d, f))
    for i in (1, 2, 3):  # more auth modules: loaded with the first request
        shutil.copyfile(os.path.join(src, "auth_passwordless.so"),
                        os.path.join(d, "auth_extra%d.so" % i))
    with Aiosmtpd() as srv:
        a = asset(srv.port, sender_address="a@corp.example", auth_type="Passwordless")
        reqs = [{"action": "send email", "asset": a,
                 "parameters": {"to": "b@corp.example", "body": "plain"}},
                {"action": "test connectivity", "asset": a},
                {"action": "send rawemail", "asset": a,
                 "parameters": {"raw_email": "From: a@corp.example\r\nTo: b@corp.example\r\n"
                                             "Subject: r\r\n\r\nraw\r\n"}},
                {"action": "send htmlemail", "asset": a,
                 "parameters": {"from": "a@corp.example", "to": "b@corp.example",
                                "html_body": "<html><body><p>Hi</p></body></html>"}},
                {"action": "send email", "asset": a,
                 "parameters": {"to": "b@corp.example", "body": "again"}}]
        r = run_connector(reqs, args=("--plugin-dir", d))
        eq(r.rc, 0, "every request succeeds\n%s" % r)
        eq([x["status"] for x in r.results], ["success"] * 5, "statuses")
        eq(r.results[-1]["action_results"][0]["data"][0]["auth"], "Passwordless",
           "the session's auth plugin is still read right")


# --------------------------------------------------------------------------
# tests/setup-deps.sh, with apt-get, sudo and debconf-set-selections
# replaced by scripts that record their arguments (nothing is installed)
# and dpkg-query reporting what the test says is installed.

SETUP_DEPS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "setup-deps.sh")


def fake_tools(installed):
    """A directory of stand-ins: `installed` is the set of packages
    dpkg-query reports as installed ("*": all)."""
    d = mkdtemp("bin")
    log = os.path.join(d, "calls.log")
    for tool in ("apt-get", "debconf-set-selections", "sudo"):
        with open(os.path.join(d, tool), "w") as f:
            f.write('#!/bin/sh\n{ printf "%%s" "%s DEBIAN_FRONTEND=$DEBIAN_FRONTEND"; '
                    'printf " %%s" "$@"; echo; } >>%s\n' % (tool, log))
            if tool == "debconf-set-selections":
                f.write("sed 's/^/  stdin: /' >>%s\n" % log)
            if tool == "sudo":
                f.write('exec "$@"\n')
        os.chmod(os.path.join(d, tool), 0o755)
    with open(os.path.join(d, "dpkg-query"), "w") as f:
        f.write("#!/bin/sh\nshift 2\nfor p; do case ' %s ' in *\" $p \"*|*' * '*) "
                "echo \"$p install ok installed\" ;; esac; done\n" % " ".join(sorted(installed)))
    os.chmod(os.path.join(d, "dpkg-query"), 0o755)
    return d, log


def run_setup(bindir, profile, **env):
    e = dict(os.environ, PATH=bindir + ":" + os.environ["PATH"])
    e.update(env)
    return subprocess.run(["bash", "-c", '. "$0" && setup_deps "$1"', SETUP_DEPS, profile],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=e, timeout=120)


def calls(log):
    return open(log).read() if os.path.exists(log) else ""


def test_setup_deps_does_nothing_when_everything_is_installed():
    d, log = fake_tools({"*"})
    r = run_setup(d, "demo")
    eq(r.returncode, 0, "exit status\n" + r.stdout.decode())
    eq(calls(log), "", "no apt-get, sudo or debconf call")


def test_setup_deps_installs_only_what_is_missing():
    d, log = fake_tools({"autoconf", "gcc", "make", "python3"})
    r = run_setup(d, "demo")
    eq(r.returncode, 0, "exit status\n" + r.stdout.decode())
    c = calls(log)
    contains(c, "stdin: postfix postfix/main_mailer_type select No configuration", "debconf answer")
    install = [l for l in c.splitlines() if " install " in l]
    eq(len(install), 1, "one apt-get install\n" + c)
    contains(install[0], "DEBIAN_FRONTEND=noninteractive", "non-interactive")
    for p in ("libevent-dev", "libcurl4-openssl-dev", "python3-aiosmtpd", "libltdl-dev"):
        contains(install[0].split(), p, "installs %s" % p)
    for p in ("gcc", "autoconf", "swaks"):
        not_contains(install[0].split(), p, "%s: installed, or not for the demo" % p)
    true(c.index("update") < c.index(" install "), "apt-get update first\n" + c)


def test_setup_deps_test_profile_adds_the_test_peers():
    d, log = fake_tools(set())

    r = run_setup(d, "test")
    install = [l for l in calls(log).splitlines() if " install " in l]
    eq(len(install), 1, "one apt-get install\n" + calls(log) + r.stdout.decode())
    for p in ("swaks", "postfix", "libevent-dev", "libcmocka-dev", "clang-format", "valgrind"):
        contains(install[0].split(), p, "installs %s" % p)


def test_setup_deps_never_rebuilds_a_linked_node_modules():
    # npm ci in a tests/ dir whose node_modules is a link would empty the
    # link's target (a node_modules shared by several checkouts)
    t = mkdtemp("tests")
    target = mkdtemp("shared_node_modules")
    with open(os.path.join(target, "keep"), "w") as f:
        f.write("x")
    os.symlink(target, os.path.join(t, "node_modules"))
    with open(os.path.join(t, "package-lock.json"), "w") as f:
        json.dump({"lockfileVersion": 3, "packages": {
            "": {}, "node_modules/smtp-server": {"version": "3.13.0"}}}, f)
    r = subprocess.run(["bash", "-c", '. "$0" && setup_deps_npm_peers "$1"', SETUP_DEPS, t],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    ne(r.returncode, 0, "a stale linked node_modules is reported")
    contains(r.stdout.decode(), "is a link", "says why")
    true(os.path.exists(os.path.join(target, "keep")), "the link's target is untouched")


if __name__ == "__main__":
    run(globals())
