#!/usr/bin/python3
"""The OAuth auth plugin against real peers on loopback: npm oauth2-mock-server
(authorization code + PKCE, refresh, client credentials) and npm smtp-server
with XOAUTH2 accepting only unexpired tokens the mock issued
(tests/servers/oauth-peers.js).  Also: Automatic falling back to Basic, the
token store's locking and permissions, and that no secret leaks."""

import fcntl
import glob
import json
import os
import select
import signal
import stat
import subprocess
import sys
import termios
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (OAuthPeers, Run, asset, connector_path, contains, eq, free_port,  # noqa: E402
                     not_contains, run, run_connector, tmpdir, true)

CID = "test-client"
SECRET = "s3cret-Client-Value"
USER = "svc@corp.example"
PASSWORD = "Basic-Pass-w0rd"
SCOPES = "https://mail.test/SMTP.Send offline_access"


def peers(**kw):
    kw.setdefault("client_id", CID)
    kw.setdefault("client_secret", SECRET)
    kw.setdefault("user", "%s:%s" % (USER, PASSWORD))
    return OAuthPeers(**kw)


def oauth_asset(p, grant="authorization_code", **kw):
    a = asset(p.smtp_port, username=USER, client_id=CID, client_secret=SECRET,
              auth_url=p.auth_url, token_url=p.token_url, scopes=SCOPES,
              oauth_grant_type=grant)
    a.update(kw)
    return a


def send(a, args=(), **kw):
    return run_connector({"action": "send email", "asset": a, "asset_id": kw.pop("asset_id", "oauth-test"),
                          "parameters": {"to": "soc@corp.example", "body": "hello"}},
                         args=args, **kw)


def state_dir():
    return os.path.join(tmpdir(), "state")


def store_path(key="oauth-test"):
    return os.path.join(state_dir(), "oauth", key + ".json")


def read_store(key="oauth-test"):
    with open(store_path(key)) as f:
        return json.load(f)


def write_store(data, key="oauth-test"):
    with open(store_path(key), "w") as f:
        json.dump(data, f)


def grants(p):
    return [r["grant_type"] for r in p.token_requests()]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kw):
        return None


def consent(url):
    """What the browser does at the mock's authorization page: GET it and
    return the Location it redirects to (the redirect_uri with code, state)."""
    try:
        urllib.request.build_opener(_NoRedirect).open(url, timeout=10)
    except urllib.error.HTTPError as e:
        eq(e.code // 100, 3, "authorization endpoint redirects")
        return e.headers["Location"]
    raise AssertionError("authorization endpoint did not redirect")


def visit(url):
    """The browser following the redirect to the connector's listener."""
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Authorize:
    """`smtp-connector authorize` running in the background: .url is the
    authorization URL it printed on stderr; .finish() returns a Run."""

    def __init__(self, a, env=None, wait=30, args=(), tty=None):
        full = dict(os.environ)
        full["SMTP_CONNECTOR_STATE_DIR"] = state_dir()
        full["SMTP_CONNECTOR_AUTHORIZE_TIMEOUT"] = str(wait)
        full.update(env or {})
        wrapper = os.environ.get("SMTP_CONNECTOR_WRAPPER", "").split()
        self.argv = wrapper + [connector_path()] + list(args) + ["authorize"]
        if tty is None:
            kw = {"start_new_session": True}
        else:  # a new session whose controlling terminal is the pty `tty`
            def ctty():
                os.setsid()
                fcntl.ioctl(tty, termios.TIOCSCTTY, 0)
            kw = {"preexec_fn": ctty, "pass_fds": (tty,)}
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=full, **kw)
        self.proc.stdin.write((json.dumps({"asset": a, "asset_id": "oauth-test"}) + "\n").encode())
        self.proc.stdin.close()
        self.proc.stdin = None  # communicate() must not flush it again
        self.err = b""
        self.url = None
        deadline = time.monotonic() + 30
        while self.url is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stderr], [], [], 1)
            if not ready:
                continue
            chunk = os.read(self.proc.stderr.fileno(), 65536)
            if not chunk:
                break
            self.err += chunk
            for line in self.err.decode("utf-8", "replace").splitlines():
                if line.startswith(a["auth_url"]):
                    self.url = line
        if self.url is None:
            raise AssertionError("authorize printed no URL\n%s" % self.finish())

    def finish(self, timeout=60):
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            out, err = self.proc.communicate()
        return Run(self.argv, self.proc.returncode, out.decode("utf-8", "replace"),
                   (self.err + err).decode("utf-8", "replace"))


def authorize(p, a, args=()):
    """The whole authorization-code flow, driven like a browser would."""
    az = Authorize(a, args=args)
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(az.url).query))
    location = consent(az.url)
    true(location.startswith(q["redirect_uri"]), "redirect to the listener", location)
    status, page = visit(location)
    r = az.finish()
    eq(r.rc, 0, "authorize exit status\n%s" % r)
    eq(status, 200, "page shown to the browser")
    contains(page, "Authorization complete")
    return r, q


# ---------------------------------------------------------------- grants

def test_client_credentials_test_connectivity_sends_mail():
    with peers() as p:
        a = oauth_asset(p, "client_credentials", auth_type="OAuth")
        r = run_connector({"action": "test connectivity", "asset": a, "parameters": {}})
        eq(r.rc, 0, "exit\n%s" % r)
        res = r.result["action_results"][0]
        eq(res["message"], "Test Connectivity Passed for OAuth authentication", "message")
        eq(res["data"][0]["auth"], "OAuth", "auth")
        eq(grants(p), ["client_credentials"], "token requests")
        eq(p.token_requests()[0]["scope"], SCOPES, "scope sent")
        eq([(x["method"], x["user"], x["ok"]) for x in p.auth_attempts()], [("XOAUTH2", USER, True)], "AUTH")
        eq(len(p.messages()), 1, "test mail sent")


def test_cached_token_reused_without_a_second_token_request():
    with peers() as p:
        a = oauth_asset(p, "client_credentials")
        for i in range(3):
            r = send(a)
            eq(r.rc, 0, "send %d\n%s" % (i, r))
            eq(r.result["action_results"][0]["data"][0]["auth"], "OAuth", "auth")
        eq(grants(p), ["client_credentials"], "one token request for three runs")
        eq(len(p.messages()), 3, "messages")


def test_authorize_full_flow_then_send():
    with peers() as p:
        a = oauth_asset(p)
        r, q = authorize(p, a)
        eq(q["response_type"], "code", "response_type")
        eq(q["client_id"], CID, "client_id")
        eq(q["scope"], SCOPES, "scope")
        eq(q["code_challenge_method"], "S256", "PKCE method")
        true(len(q["state"]) >= 16 and len(q["code_challenge"]) == 43, "state and challenge", q)
        true(q["redirect_uri"].startswith("http://127.0.0.1:") and q["redirect_uri"].endswith("/callback"),
             "default redirect_uri", q)
        true("access_type" not in q and "prompt" not in q, "no Google-only parameters", q)
        data = r.result["action_results"][0]["data"][0]
        eq(data["refresh_token"], True, "refresh token received")
        eq(data["grant"], "authorization_code", "grant")
        tr = p.token_requests()
        eq([(t["grant_type"], t["pkce"], t["redirect_uri"]) for t in tr],
           [("authorization_code", True, q["redirect_uri"])], "code exchange with the verifier")
        r = send(a)
        eq(r.rc, 0, "send with the stored token\n%s" % r)
        eq(r.result["action_results"][0]["data"][0]["auth_attempts"],
           [{"method": "OAuth", "outcome": "success"}], "attempts")
        eq(len(p.token_requests()), 1, "no token request for the send")


def test_authorize_with_asset_redirect_uri():
    with peers() as p:
        uri = "http://127.0.0.1:%d/oauth/done" % free_port()
        r, q = authorize(p, oauth_asset(p, redirect_uri=uri))
        eq(q["redirect_uri"], uri, "redirect_uri from the asset")


def test_authorize_refuses_a_redirect_uri_port_out_of_range():
    with peers() as p:
        # 70000 would wrap to 4464 in a 16-bit port: a listener the redirect never reaches
        a = oauth_asset(p, redirect_uri="http://127.0.0.1:70000/cb")
        r = run_connector({"asset": a, "asset_id": "oauth-test"}, args=("authorize",))
        eq(r.rc, 2, "input error\n%s" % r)
        contains(r.result["action_results"][0]["message"], "no valid port")


def test_authorize_rejects_wrong_state():
    with peers() as p:
        a = oauth_asset(p)
        az = Authorize(a)
        location = consent(az.url)
        parts = urllib.parse.urlsplit(location)
        query = dict(urllib.parse.parse_qsl(parts.query))
        query["state"] = "forged-" + query["state"]
        status, page = visit(urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query))))
        r = az.finish()
        eq(status, 400, "browser told it failed")
        eq(r.rc, 1, "authorize fails\n%s" % r)
        contains(r.result["action_results"][0]["message"], "state does not match")
        eq(p.token_requests(), [], "the code was not exchanged")
        true(not os.path.exists(store_path()), "nothing stored")


def test_authorize_finished_from_pasted_url():
    """No browser can reach the loopback: the first run times out, and the
    redirected address, given in SMTP_CONNECTOR_REDIRECT_URL, finishes it."""
    with peers() as p:
        a = oauth_asset(p, redirect_uri="https://soar.example/rest/handler/smtp/asset")
        az = Authorize(a, wait=2)
        r = az.finish()
        eq(r.rc, 1, "first run times out\n%s" % r)
        contains(r.result["action_results"][0]["message"], "no redirect arrived")
        location = consent(az.url)
        contains(location, "https://soar.example/rest/handler/smtp/asset?")
        r = run_connector({"asset": a, "asset_id": "oauth-test"}, args=("authorize",),
                          env={"SMTP_CONNECTOR_REDIRECT_URL": location})
        eq(r.rc, 0, "pasted URL accepted\n%s" % r)
        eq(grants(p), ["authorization_code"], "exchanged")
        eq(send(a).rc, 0, "send with the stored token")
        r = run_connector({"asset": a, "asset_id": "oauth-test"}, args=("authorize",),
                          env={"SMTP_CONNECTOR_REDIRECT_URL": location})
        eq(r.rc, 2, "a pending authorization is used once\n%s" % r)
        contains(r.result["action_results"][0]["message"], "no pending authorization")


def test_authorize_redirect_pasted_on_the_terminal():
    """stdin carries the request, so the pasted URL is read from /dev/tty."""
    with peers() as p:
        a = oauth_asset(p, redirect_uri="https://soar.example/rest/handler/smtp/asset")
        master, slave = os.openpty()
        try:
            az = Authorize(a, tty=slave)
            os.close(slave)
            slave = None
            location = consent(az.url)
            os.write(master, ("  " + location + "\n").encode())
            r = az.finish()
        finally:
            os.close(master)
            if slave is not None:
                os.close(slave)
        eq(r.rc, 0, "pasted URL accepted\n%s" % r)
        contains(r.stderr, "paste the address it was redirected to here")
        eq(r.result["action_results"][0]["data"][0]["redirect_received_via"], "terminal", "via")
        eq(grants(p), ["authorization_code"], "exchanged")


def test_google_auth_url_asks_for_offline_access():
    with peers() as p:
        a = oauth_asset(p, auth_url="https://accounts.google.com/o/oauth2/v2/auth")
        az = Authorize(a, wait=1)
        az.finish()
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(az.url).query))
        eq((q.get("access_type"), q.get("prompt")), ("offline", "consent"), "Google parameters")


def test_client_credentials_authorize_stores_a_token():
    with peers() as p:
        a = oauth_asset(p, "client_credentials")
        r = run_connector({"asset": a, "asset_id": "oauth-test"}, args=("authorize",))
        eq(r.rc, 0, "authorize\n%s" % r)
        eq(send(a).rc, 0, "send")
        eq(grants(p), ["client_credentials"], "the stored token was reused")


# ---------------------------------------------------------------- refresh

def test_proactive_refresh_before_expiry():
    with peers(token_ttl=4) as p:
        a = oauth_asset(p)
        authorize(p, a)
        eq(send(a).rc, 0, "send with a fresh token")
        eq(grants(p), ["authorization_code"], "reused while fresh")
        time.sleep(2.5)  # inside the margin (half the 4 s lifetime)
        r = send(a)
        eq(r.rc, 0, "send\n%s" % r)
        eq(grants(p), ["authorization_code", "refresh_token"], "refreshed before use")
        eq(p.token_requests()[1]["scope"], SCOPES, "scope sent on refresh")
        true(all(x["ok"] for x in p.auth_attempts()), "never refused", p.auth_attempts())
        true(read_store().get("refresh_token"), "refresh token kept")


def test_refusal_is_retried_once_after_refresh():
    with peers() as p:
        a = oauth_asset(p)
        authorize(p, a)
        s = read_store()
        s["access_token"] = "revoked-" + s["access_token"][:10]
        write_store(s)
        r = send(a)
        eq(r.rc, 0, "send after one refusal\n%s" % r)
        eq([x["ok"] for x in p.auth_attempts()], [False, True], "refused, then accepted")
        eq(grants(p), ["authorization_code", "refresh_token"], "one refresh")
        eq(r.result["action_results"][0]["data"][0]["auth"], "OAuth", "auth")


def test_second_refusal_is_final_with_a_hint():
    with peers(token_ttl=0) as p:  # every token is expired when it arrives
        a = oauth_asset(p, "client_credentials", auth_type="OAuth")
        r = send(a)
        eq(r.rc, 1, "fails\n%s" % r)
        eq(len(p.auth_attempts()), 2, "exactly one retry")
        eq(grants(p), ["client_credentials"] * 2, "one re-fetch")
        msg = r.result["action_results"][0]["message"]
        contains(msg, '"status":"401"', "the server's decoded error challenge")
        contains(msg, "scopes")
        contains(msg, "consent")


def test_wrong_client_secret():
    with peers() as p:
        a = oauth_asset(p, "client_credentials", auth_type="OAuth", client_secret="wrong-secret-xyz")
        r = send(a, args=("-v",))
        eq(r.rc, 1, "fails\n%s" % r)
        msg = r.result["action_results"][0]["message"]
        contains(msg, "invalid_client")
        contains(msg, p.token_url)
        contains(msg, "client_secret")
        not_contains(r.stdout + r.stderr, "wrong-secret-xyz", "secret in output")
        eq(p.auth_attempts(), [], "no AUTH with no token")


# ---------------------------------------------------------------- Automatic

def fallback(p, a, reason):
    r = send(a)
    eq(r.rc, 0, "falls back\n%s" % r)
    data = r.result["action_results"][0]["data"][0]
    eq(data["auth"], "Basic", "auth")
    att = data["auth_attempts"]
    eq([(x["method"], x["outcome"]) for x in att], [("OAuth", "failed"), ("Basic", "success")], "attempts")
    contains(att[0]["reason"], reason)
    return att


def test_token_endpoint_down_falls_back_to_basic():
    with peers(token_fault="500") as p:
        a = oauth_asset(p, "client_credentials", password=PASSWORD)
        contains(fallback(p, a, p.token_url)[0]["reason"], "HTTP 500")
        p.set_token_fault("nonjson")
        contains(fallback(p, a, p.token_url)[0]["reason"], "not JSON")
        dead = "http://127.0.0.1:%d/token" % free_port()
        contains(fallback(p, dict(a, token_url=dead), dead)[0]["reason"], "could not be reached")
        eq([x["method"] for x in p.auth_attempts()], ["PLAIN"] * 3, "only Basic reached AUTH")


def test_plain_http_token_url_off_loopback_is_refused_before_sending():
    with peers() as p:
        a = oauth_asset(p, "client_credentials", password=PASSWORD)
        # 192.0.2.1 (TEST-NET-1): nothing would answer, so only the check can
        # produce "not https" quickly.
        url = "http://192.0.2.1:%d/token" % p.oauth_port
        contains(fallback(p, dict(a, token_url=url, timeout=2), "not https")[0]["reason"], "in clear")
        eq(p.token_requests(), [], "no token request")


def test_failed_refresh_falls_back_to_basic():
    with peers() as p:
        a = oauth_asset(p, password=PASSWORD)
        authorize(p, a)
        s = read_store()
        s["obtained_at"], s["expires_at"] = s["obtained_at"] - 7200, s["obtained_at"] - 3600
        write_store(s)
        p.set_token_fault("500")
        fallback(p, a, "refreshing the OAuth token failed")


def test_no_stored_token_skips_oauth():
    with peers() as p:
        a = oauth_asset(p, password=PASSWORD)
        r = send(a)
        eq(r.rc, 0, "Basic after a skipped OAuth\n%s" % r)
        att = r.result["action_results"][0]["data"][0]["auth_attempts"]
        eq([(x["method"], x["outcome"]) for x in att], [("OAuth", "skipped"), ("Basic", "success")], "attempts")
        contains(att[0]["reason"], "smtp-connector authorize")
        eq(p.token_requests(), [], "actions never start an interactive flow")
        r = send(dict(a, auth_type="OAuth"))
        eq(r.rc, 1, "explicit OAuth fails\n%s" % r)
        contains(r.result["action_results"][0]["message"], "smtp-connector authorize")


def test_missing_fields_skip_with_their_names():
    with peers() as p:
        a = asset(p.smtp_port, username=USER, password=PASSWORD, client_id=CID,
                  oauth_grant_type="client_credentials")
        r = send(a)
        eq(r.rc, 0, "Basic\n%s" % r)
        reason = r.result["action_results"][0]["data"][0]["auth_attempts"][0]["reason"]
        contains(reason, "missing: token_url, client_secret")


def test_changed_client_id_invalidates_stored_tokens():
    with peers() as p:
        a = oauth_asset(p, password=PASSWORD)
        authorize(p, a)
        r = send(dict(a, client_id="another-client"))
        att = r.result["action_results"][0]["data"][0]["auth_attempts"]
        eq(att[0]["outcome"], "skipped", "OAuth skipped\n%s" % r)
        contains(att[0]["reason"], "client_id")


def test_corrupt_store_is_reported_and_replaced():
    with peers() as p:
        a = oauth_asset(p, "client_credentials", password=PASSWORD)
        os.makedirs(os.path.dirname(store_path()), mode=0o700)
        with open(store_path(), "w") as f:
            f.write('{"version": 1, "access_tok')
        r = send(a)
        eq(r.rc, 0, "no crash\n%s" % r)
        contains(r.stderr, "corrupt")
        eq(r.result["action_results"][0]["data"][0]["auth"], "OAuth", "a new token was fetched")
        eq(read_store()["grant"], "client_credentials", "store replaced")


# ---------------------------------------------------------------- store

def test_concurrent_refresh_by_two_processes():
    with peers() as p:
        a = oauth_asset(p)
        authorize(p, a)
        s = read_store()
        s["obtained_at"], s["expires_at"] = s["obtained_at"] - 7200, s["obtained_at"] - 3600
        write_store(s)
        env = dict(os.environ, SMTP_CONNECTOR_STATE_DIR=state_dir())
        req = json.dumps({"action": "send email", "asset": a, "asset_id": "oauth-test",
                          "parameters": {"to": "soc@corp.example", "body": "hi"}}).encode()
        wrapper = os.environ.get("SMTP_CONNECTOR_WRAPPER", "").split()
        procs = [subprocess.Popen(wrapper + [connector_path()], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
                 for _ in range(2)]
        outs = [pr.communicate(req, timeout=60) for pr in procs]
        for pr, (out, err) in zip(procs, outs):
            eq(pr.returncode, 0, "both succeed\n%s" % Run(pr.args, pr.returncode, out.decode(), err.decode()))
        eq(grants(p), ["authorization_code", "refresh_token"], "one refresh: the other waited and reused it")
        s = read_store()
        status, body = p.fetch_token("refresh_token", refresh_token=s["refresh_token"])
        eq(status, 200, "the stored refresh token still works")


def test_store_permissions_and_content():
    with peers() as p:
        a = oauth_asset(p)
        authorize(p, a)
        d = os.path.dirname(store_path())
        eq(stat.S_IMODE(os.stat(d).st_mode), 0o700, "oauth dir mode")
        eq(stat.S_IMODE(os.stat(store_path()).st_mode), 0o600, "store file mode")
        with open(store_path()) as f:
            text = f.read()
        not_contains(text, SECRET, "client secret in the store")
        not_contains(text, CID, "client_id stored only as a hash")
        s = json.loads(text)
        true(s["access_token"] and s["refresh_token"], "tokens stored")
        eq(sorted(os.listdir(d)), ["oauth-test.json", "oauth-test.lock"], "no temp or pending files left")


def test_asset_id_is_encoded_in_the_store_name():
    with peers() as p:
        a = oauth_asset(p, "client_credentials")
        # ".." itself is refused by the schema (test_input_hardening.py);
        # the store encodes dots anyway, as a second line of defence
        eq(send(a, asset_id="a..b").rc, 0, "send")
        eq(sorted(os.listdir(os.path.join(state_dir(), "oauth"))), ["a%2E%2Eb.json", "a%2E%2Eb.lock"],
           "dots encoded: no name can mean a parent directory")


def test_no_secret_in_any_output_or_file():
    with peers() as p:
        a = oauth_asset(p, password=PASSWORD)
        outputs = []
        r, _ = authorize(p, a, args=("-v",))
        outputs.append(r)
        first = read_store()  # replaced below: check these too, not only the last ones
        outputs.append(send(a, args=("-v",)))
        s = read_store()
        s["access_token"] = "revoked-token-value-1234"
        write_store(s)
        outputs.append(send(a, args=("-v",)))  # refusal, refresh, retry
        outputs.append(run_connector({"action": "test connectivity", "asset": a, "asset_id": "oauth-test",
                                      "parameters": {}}, args=("-v",)))
        outputs.append(send(dict(a, client_secret="bad-" + SECRET), args=("-v",)))  # client_id same, bad secret
        s = read_store()
        secrets = [SECRET, PASSWORD, s["access_token"], s["refresh_token"], "revoked-token-value-1234",
                   first["access_token"], first["refresh_token"]]
        for o in outputs:
            for sec in secrets:
                not_contains(o.stdout, sec, "secret in stdout")
                not_contains(o.stderr, sec, "secret in stderr")
        for path in glob.glob(os.path.join(state_dir(), "**"), recursive=True):
            if os.path.isfile(path) and path != store_path():
                with open(path, "rb") as f:
                    data = f.read().decode("utf-8", "replace")
                for sec in secrets:
                    not_contains(data, sec, "secret in %s" % path)


if __name__ == "__main__":
    run(globals())
