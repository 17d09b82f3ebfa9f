"""Black-box test: the unmodified authlib library (Python) acting as a relying
party against a freshly started ``gatehouse serve --demo``.

Mirrors lib.mjs / openid-client.test.mjs: the server start logic and the way
the server-rendered sign-in pages are driven are the same, only in Python.

Run from the repository root:

    python3 -m pip install -r tests/rp/requirements.txt
    python3 -m pytest -q tests/rp/authlib_test.py

The gatehouse binary is taken from $GATEHOUSE_BIN, else the one `cargo build`
wrote: $CARGO_TARGET_DIR/debug/gatehouse, or target/debug/gatehouse at the
repository root when CARGO_TARGET_DIR is not set (as tests/lib/gatehouse-server.mjs).
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlencode, urlsplit, urlunsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.jose import JsonWebKey, jwt
from authlib.jose.rfc7517 import KeySet
from authlib.oidc.core import CodeIDToken
# authlib's OIDC claims classes raise joserfc's claim errors.
from joserfc.errors import ClaimError

TENANT = "fabrikam"
CLIENT_ID = "test-rp"
USER_LOGIN = "iw@fabrikam.example"
# Registered as http://127.0.0.1/callback; loopback redirect URIs match on any
# port (RFC 8252). Nothing listens on port 9, we only read the Location header.
REDIRECT_URI = "http://127.0.0.1:9/callback"
FULL_SCOPE = "openid profile email offline_access"

START_TIMEOUT_S = 30
REQUEST_TIMEOUT_S = 15
LISTENING_RE = re.compile(r"gatehouse listening on (http://\S+)")
KEEP_OUTPUT = 64_000


# ---------------------------------------------------------------------------
# Starting and stopping the server.


def gatehouse_binary() -> str:
    if os.environ.get("GATEHOUSE_BIN"):
        return os.environ["GATEHOUSE_BIN"]
    # cargo's own rule: $CARGO_TARGET_DIR when set, else target/ at the repository root.
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    target_dir = os.environ.get("CARGO_TARGET_DIR") or os.path.join(root, "target")
    return os.path.join(target_dir, "debug", "gatehouse")


class Gatehouse:
    """One `gatehouse serve --demo` child on an ephemeral loopback port."""

    def __init__(self) -> None:
        self.bin = gatehouse_binary()
        self.data_dir: str | None = None
        self.child: subprocess.Popen | None = None
        self.url: str | None = None
        self.credentials: dict | None = None
        self._stdout = ""
        self._stderr = ""
        self._lock = threading.Lock()
        self._listening = threading.Event()

    def output(self) -> str:
        with self._lock:
            return f"--- stdout ---\n{self._stdout}\n--- stderr ---\n{self._stderr}"

    def _append(self, which: str, chunk: str) -> None:
        with self._lock:
            text = getattr(self, which) + chunk
            setattr(self, which, text[-KEEP_OUTPUT:])

    # Keep draining both pipes for the whole lifetime of the child, otherwise
    # a chatty server blocks once the pipe buffer is full.
    def _drain_stdout(self) -> None:
        assert self.child and self.child.stdout
        for line in self.child.stdout:
            self._append("_stdout", line)
            if not self._listening.is_set():
                m = LISTENING_RE.search(line)
                if m:
                    self.url = m.group(1).rstrip("/")
                    self._listening.set()

    def _drain_stderr(self) -> None:
        assert self.child and self.child.stderr
        for line in self.child.stderr:
            self._append("_stderr", line)

    def start(self) -> "Gatehouse":
        if not os.path.exists(self.bin):
            raise RuntimeError(
                f"gatehouse binary not found at {self.bin}: build gatehouse first: cargo build "
                "(or set GATEHOUSE_BIN / CARGO_TARGET_DIR)"
            )
        self.data_dir = tempfile.mkdtemp(prefix="gatehouse-rp-")
        env = dict(os.environ)
        # Cheap password hashing: the demo seed and every sign-in hash passwords.
        env["GATEHOUSE__ARGON2__MEMORY_KIB"] = "1024"
        env["GATEHOUSE__ARGON2__ITERATIONS"] = "1"
        try:
            self.child = subprocess.Popen(
                [self.bin, "serve", "--demo", "--bind", "127.0.0.1:0", "--data-dir", self.data_dir],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                text=True,
                encoding="utf-8",
                errors="replace",
            )
        except OSError as err:
            self.stop()
            raise RuntimeError(f"could not spawn {self.bin}: {err}") from err
        _running.add(self)
        threading.Thread(target=self._drain_stdout, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()

        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not self._listening.wait(0.05):
                if self.child.poll() is not None:
                    # Give the drain threads a moment to collect the last words.
                    self._listening.wait(0.5)
                    if self._listening.is_set():
                        break
                    raise RuntimeError(
                        f"gatehouse exited early (code {self.child.returncode})\n{self.output()}"
                    )
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"gatehouse did not print its listening line within {START_TIMEOUT_S}s\n"
                        f"{self.output()}"
                    )
            self.credentials = self._read_credentials(os.path.join(self.data_dir, "demo-credentials.json"))
        except BaseException:
            self.stop()
            raise
        return self

    def _read_credentials(self, path: str) -> dict:
        # The file should exist once the server listens; allow a moment in
        # case it is written just after the listening line.
        deadline = time.monotonic() + 5
        while True:
            try:
                with open(path, encoding="utf-8") as f:
                    return json.load(f)
            except (OSError, ValueError) as err:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"could not read {path}: {err}\n{self.output()}") from err
                time.sleep(0.1)

    def stop(self) -> None:
        _running.discard(self)
        child = self.child
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if self.data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def find_user(self, tenant: str, login: str) -> dict:
        for u in self.credentials["users"]:
            if u["tenant"] == tenant and u["login"] == login:
                return u
        raise AssertionError(f"demo-credentials.json has no user {login} in tenant {tenant}")

    def find_client(self, tenant: str, client_id: str) -> dict:
        for c in self.credentials["clients"]:
            if c["tenant"] == tenant and c["client_id"] == client_id:
                return c
        raise AssertionError(f"demo-credentials.json has no client {client_id} in tenant {tenant}")


_running: set[Gatehouse] = set()


@atexit.register
def _kill_leftovers() -> None:
    # Should the test process end without running fixture teardown.
    for server in list(_running):
        if server.child is not None and server.child.poll() is None:
            server.child.kill()


# ---------------------------------------------------------------------------
# HTML form extraction with the standard library parser.


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self._current: dict | None = None

    def handle_starttag(self, tag, attrs):
        # Attribute values arrive already unescaped; valueless attributes as None.
        a = {k.lower(): (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._current = {"attrs": a, "inputs": [], "submitters": []}
            self.forms.append(self._current)
        elif self._current is not None and tag == "input":
            self._current["inputs"].append(a)
            if (a.get("type") or "").lower() == "submit":
                self._current["submitters"].append(a)
        elif self._current is not None and tag == "button":
            self._current["submitters"].append(a)

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


class Form:
    def __init__(self, raw: dict) -> None:
        self.id = raw["attrs"].get("id")
        self.action = raw["attrs"].get("action", "")
        self.method = (raw["attrs"].get("method") or "get").lower()
        self.inputs = raw["inputs"]
        # What a browser would submit before the user types anything.
        self.fields: list[tuple[str, str]] = []
        for i in self.inputs:
            name = i.get("name")
            typ = (i.get("type") or "text").lower()
            if not name or typ in ("submit", "button", "image", "reset", "file"):
                continue
            if typ in ("checkbox", "radio") and "checked" not in i:
                continue
            self.fields.append((name, i.get("value", "")))
        # Submitting with Enter includes the form's default (first) submit
        # button when it has a name.
        if raw["submitters"]:
            b = raw["submitters"][0]
            if b.get("name") and (b.get("type") or "submit").lower() == "submit":
                self.fields.append((b["name"], b.get("value", "")))

    def hidden_names(self) -> set[str]:
        return {i.get("name") for i in self.inputs if (i.get("type") or "").lower() == "hidden"}


def parse_forms(html: str) -> list[Form]:
    p = _FormParser()
    p.feed(html)
    p.close()
    return [Form(f) for f in p.forms]


def find_form(html: str, form_id: str) -> Form | None:
    return next((f for f in parse_forms(html) if f.id == form_id), None)


# ---------------------------------------------------------------------------
# A tiny "browser": requests with manual redirects and a cookie jar.


class Browser:
    def __init__(self) -> None:
        self.session = requests.Session()
        self.history: list[str] = []

    def request(self, method: str, url: str, data=None) -> requests.Response:
        res = self.session.request(
            method,
            url,
            data=data,
            headers={"Accept": "text/html"},
            allow_redirects=False,
            timeout=REQUEST_TIMEOUT_S,
        )
        loc = res.headers.get("Location")
        self.history.append(f"{method} {url} -> {res.status_code}" + (f" (Location: {loc})" if loc else ""))
        return res

    def submit(self, page_url: str, form: Form, values: dict) -> tuple[str, requests.Response]:
        fields = [(k, v) for k, v in form.fields if k not in values] + list(values.items())
        target = urljoin(page_url, form.action or page_url)
        if form.method == "post":
            return target, self.request("POST", target, data=fields)
        parts = urlsplit(target)
        target = urlunsplit(parts._replace(query=urlencode(fields)))
        return target, self.request("GET", target)

    def trail(self) -> str:
        return "\n".join(self.history)


def _same_endpoint(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.netloc, pa.path) == (pb.scheme, pb.netloc, pb.path)


def sign_in(authorization_url: str, redirect_uri: str, login: str, password: str, browser: Browser | None = None) -> str:
    """Walks from an authorization URL through the identify and password
    pages until the server redirects to `redirect_uri`; returns that URL."""
    browser = browser or Browser()
    submitted: set[str] = set()
    url = authorization_url
    res = browser.request("GET", url)

    for _ in range(20):
        if 300 <= res.status_code < 400:
            location = res.headers.get("Location")
            if not location:
                raise AssertionError(f"redirect without Location\n{browser.trail()}")
            nxt = urljoin(url, location)
            if _same_endpoint(nxt, redirect_uri):
                return nxt
            url = nxt
            res = browser.request("GET", url)
            continue

        html = res.text
        if res.status_code != 200:
            raise AssertionError(f"unexpected HTTP {res.status_code} at {url}\n{browser.trail()}\n{html[:2000]}")

        if find_form(html, "identify"):
            form_id, values = "identify", {"login": login}
        elif find_form(html, "password"):
            form_id, values = "password", {"password": password}
        else:
            ids = ", ".join(f.id for f in parse_forms(html) if f.id) or "none"
            raise AssertionError(
                f"sign-in page at {url} has no known form (forms: {ids})\n{browser.trail()}\n{html[:2000]}"
            )
        # Seeing the same form twice means the server rejected the submission.
        if form_id in submitted:
            raise AssertionError(
                f'form "{form_id}" was shown again after submitting it at {url}\n{browser.trail()}\n{html[:2000]}'
            )
        submitted.add(form_id)
        form = find_form(html, form_id)
        missing = {"csrf", "tx"} - form.hidden_names()
        assert not missing, f'form "{form_id}" at {url} lacks hidden inputs {missing}\n{html[:2000]}'
        url, res = browser.submit(url, form, values)

    raise AssertionError(f"sign-in did not reach {redirect_uri} within 20 steps\n{browser.trail()}")


# ---------------------------------------------------------------------------
# Fixtures and relying-party helpers.


@pytest.fixture(scope="module")
def server():
    gh = Gatehouse().start()
    try:
        yield gh
    finally:
        gh.stop()


@pytest.fixture(scope="module")
def issuer(server) -> str:
    return f"{server.url}/{TENANT}/v2.0"


@pytest.fixture(scope="module")
def metadata(issuer) -> dict:
    res = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=REQUEST_TIMEOUT_S)
    assert res.status_code == 200, f"discovery: HTTP {res.status_code}\n{res.text[:2000]}"
    return res.json()


@pytest.fixture(scope="module")
def jwks(metadata) -> dict:
    res = requests.get(metadata["jwks_uri"], timeout=REQUEST_TIMEOUT_S)
    assert res.status_code == 200, f"JWKS: HTTP {res.status_code}\n{res.text[:2000]}"
    return res.json()


@pytest.fixture(scope="module")
def secret(server) -> str:
    return server.find_client(TENANT, CLIENT_ID)["client_secret"]


@pytest.fixture(scope="module")
def user(server) -> dict:
    return server.find_user(TENANT, USER_LOGIN)


def new_client(secret: str, scope: str, **kwargs) -> tuple[OAuth2Session, list[requests.PreparedRequest]]:
    """An authlib OAuth2Session with library defaults, plus a record of every
    request it sends (so the tests can check how it authenticated)."""
    client = OAuth2Session(
        CLIENT_ID,
        secret,
        scope=scope,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        default_timeout=REQUEST_TIMEOUT_S,
        **kwargs,
    )
    sent: list[requests.PreparedRequest] = []
    client.hooks["response"].append(lambda res, *a, **kw: sent.append(res.request))
    return client, sent


def code_flow(client: OAuth2Session, metadata: dict, user: dict) -> tuple[dict, str]:
    """Authorization code flow with PKCE S256, signing in with a fresh cookie
    jar. Returns (token response, nonce)."""
    code_verifier = generate_token(48)
    nonce = generate_token(20)
    authorization_url, state = client.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=code_verifier, nonce=nonce
    )
    query = parse_qs(urlsplit(authorization_url).query)
    assert query.get("code_challenge_method") == ["S256"], authorization_url
    assert query.get("code_challenge"), authorization_url

    callback = sign_in(authorization_url, REDIRECT_URI, user["login"], user["password"])
    params = parse_qs(urlsplit(callback).query)
    assert "error" not in params, f"authorization error: {callback}"
    assert params.get("code"), f"callback has no code: {callback}"
    assert params.get("state") == [state], f"callback state: {callback}"
    # RFC 9207: gatehouse advertises it in discovery, so the callback must carry iss.
    assert metadata.get("authorization_response_iss_parameter_supported") is True, "RFC 9207 advertised"
    assert params.get("iss") == [metadata["issuer"]], f"callback iss: {callback}"

    token = client.fetch_token(
        metadata["token_endpoint"],
        authorization_response=callback,
        code_verifier=code_verifier,
        state=state,
    )
    return token, nonce


def decode_id_token(id_token: str, jwks: dict, issuer: str, nonce: str | None = None, access_token: str | None = None):
    """Verifies the signature against the JWKS and validates the claims with
    authlib's CodeIDToken (iss, aud, exp, iat, nonce, at_hash, azp)."""
    options = {
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "value": CLIENT_ID},
    }
    params = {"client_id": CLIENT_ID}
    if nonce is not None:
        options["nonce"] = {"essential": True, "value": nonce}
        params["nonce"] = nonce
    if access_token is not None:
        params["access_token"] = access_token
    claims = jwt.decode(
        id_token,
        JsonWebKey.import_key_set(jwks),
        claims_cls=CodeIDToken,
        claims_options=options,
        claims_params=params,
    )
    claims.validate()
    return claims


def token_requests(sent: list[requests.PreparedRequest], metadata: dict) -> list[requests.PreparedRequest]:
    found = [r for r in sent if r.url == metadata["token_endpoint"]]
    assert found, "authlib sent a token request"
    return found


def form_body(req: requests.PreparedRequest) -> dict:
    body = req.body or ""
    if isinstance(body, bytes):
        body = body.decode()
    return {k: v[0] for k, v in parse_qs(body).items()}


def assert_invalid_grant(fn, message: str) -> None:
    with pytest.raises(OAuthError) as excinfo:
        fn()
    assert excinfo.value.error == "invalid_grant", (
        f"{message}: error={excinfo.value.error!r} description={excinfo.value.description!r}"
    )


# ---------------------------------------------------------------------------
# Tests.


def test_discovery_and_jwks(metadata, jwks, issuer):
    assert metadata["issuer"] == issuer
    assert "S256" in metadata.get("code_challenge_methods_supported", []), "S256 PKCE supported"
    assert "ES256" in metadata.get("id_token_signing_alg_values_supported", []), "ES256 ID tokens supported"
    assert "code" in metadata.get("response_types_supported", []), "code response type supported"
    for endpoint in (
        "authorization_endpoint",
        "jwks_uri",
        "token_endpoint",
        "userinfo_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
        "end_session_endpoint",
    ):
        value = metadata.get(endpoint)
        assert value, f"{endpoint} present"
        parts = urlsplit(value)
        assert parts.scheme in ("http", "https") and parts.netloc, f"{endpoint} is a URL: {value}"

    keys = jwks.get("keys")
    assert isinstance(keys, list) and keys, "JWKS has keys"
    kids = [k.get("kid") for k in keys]
    assert all(kids), "every key has a kid"
    assert len(set(kids)) == len(kids), f"kids are unique: {kids}"
    for key in keys:
        assert key.get("use") == "sig", f"key {key['kid']} use"
        assert "d" not in key, f"key {key['kid']} must not expose private material"
    assert any(k.get("kty") == "EC" and k.get("crv") == "P-256" and k.get("x") and k.get("y") for k in keys), (
        "at least one EC P-256 key with x and y"
    )

    key_set = JsonWebKey.import_key_set(jwks)
    assert isinstance(key_set, KeySet)
    assert len(key_set.keys) == len(keys)
    for key in key_set.keys:
        assert key.public_only, f"key {key.kid} imported as a public key"
    assert any(k.kty == "EC" for k in key_set.keys)


def test_code_flow_pkce_refresh_rotation_and_revocation(metadata, jwks, issuer, secret, user):
    # Library default: client_secret_basic when a secret is given.
    client, sent = new_client(secret, FULL_SCOPE)
    token, nonce = code_flow(client, metadata, user)

    [token_request] = token_requests(sent, metadata)
    assert token_request.headers.get("Authorization", "").startswith("Basic "), "client_secret_basic"
    body = form_body(token_request)
    assert "client_secret" not in body, "no secret in the body"
    assert body.get("code_verifier"), "PKCE code_verifier sent"

    assert token.get("access_token"), "access_token"
    assert token.get("refresh_token"), "refresh_token for offline_access"
    assert token.get("token_type", "").lower() == "bearer"
    assert token.get("id_token"), "id_token"

    claims = decode_id_token(token["id_token"], jwks, issuer, nonce=nonce, access_token=token["access_token"])
    assert claims.header["alg"] in metadata["id_token_signing_alg_values_supported"]
    assert claims.header.get("kid"), "id_token header has kid"
    assert claims["sub"]
    assert claims["iss"] == issuer
    assert claims["aud"] == CLIENT_ID or claims["aud"] == [CLIENT_ID]
    assert claims["nonce"] == nonce
    assert claims["exp"] > time.time()
    assert isinstance(claims.get("amr"), list) and "pwd" in claims["amr"], f"amr: {claims.get('amr')}"
    assert claims.get("acr") == "1"
    assert claims.get("email") == USER_LOGIN

    # The validation is not vacuous: a wrong nonce or issuer is rejected.
    with pytest.raises(ClaimError):
        decode_id_token(token["id_token"], jwks, issuer, nonce="not-the-nonce")
    with pytest.raises(ClaimError):
        decode_id_token(token["id_token"], jwks, issuer + "/other", nonce=nonce)

    userinfo = client.get(metadata["userinfo_endpoint"])
    assert userinfo.status_code == 200, f"userinfo: HTTP {userinfo.status_code}\n{userinfo.text[:2000]}"
    info = userinfo.json()
    assert info["sub"] == claims["sub"]
    assert info.get("email") == USER_LOGIN

    # Refresh token rotation with reuse detection.
    old_refresh = token["refresh_token"]
    refreshed = client.refresh_token(metadata["token_endpoint"], refresh_token=old_refresh)
    assert refreshed.get("access_token"), "refreshed access_token"
    assert refreshed.get("refresh_token"), "rotated refresh_token"
    assert refreshed["refresh_token"] != old_refresh
    # gatehouse always returns an ID token on refresh; OIDC Core 12.2: same iss, sub and aud.
    assert refreshed.get("id_token"), "the refresh returns an ID token"
    again = decode_id_token(refreshed["id_token"], jwks, issuer, access_token=refreshed["access_token"])
    assert again["sub"] == claims["sub"]
    assert again["aud"] == claims["aud"]
    new_refresh = refreshed["refresh_token"]

    assert_invalid_grant(
        lambda: client.refresh_token(metadata["token_endpoint"], refresh_token=old_refresh),
        "reusing the old refresh token",
    )
    assert_invalid_grant(
        lambda: client.refresh_token(metadata["token_endpoint"], refresh_token=new_refresh),
        "the new refresh token after reuse was detected (family revoked)",
    )

    # A fresh sign-in (new cookie jar and session), then introspection and revocation.
    client2, _ = new_client(secret, FULL_SCOPE)
    second, _nonce2 = code_flow(client2, metadata, user)
    assert second.get("refresh_token"), "refresh_token in the second flow"

    introspection = client2.introspect_token(metadata["introspection_endpoint"], token=second["access_token"])
    assert introspection.status_code == 200, f"introspection: HTTP {introspection.status_code}\n{introspection.text}"
    assert introspection.json().get("active") is True

    revocation = client2.revoke_token(metadata["revocation_endpoint"], token=second["refresh_token"])
    assert revocation.status_code == 200, f"revocation: HTTP {revocation.status_code}\n{revocation.text}"
    assert_invalid_grant(
        lambda: client2.refresh_token(metadata["token_endpoint"], refresh_token=second["refresh_token"]),
        "refreshing with a revoked token",
    )
    revoked = client2.introspect_token(metadata["introspection_endpoint"], token=second["refresh_token"])
    assert revoked.status_code == 200
    assert revoked.json().get("active") is False, "revoked refresh token introspects as inactive"


def test_code_flow_client_secret_post(metadata, jwks, issuer, secret, user):
    client, sent = new_client(secret, "openid email", token_endpoint_auth_method="client_secret_post")
    token, nonce = code_flow(client, metadata, user)

    [token_request] = token_requests(sent, metadata)
    assert "Authorization" not in token_request.headers, "no Authorization header"
    body = form_body(token_request)
    assert body.get("client_id") == CLIENT_ID
    assert body.get("client_secret") == secret

    assert token.get("access_token"), "access_token"
    assert token.get("token_type", "").lower() == "bearer"
    claims = decode_id_token(token["id_token"], jwks, issuer, nonce=nonce, access_token=token["access_token"])
    assert claims["aud"] == CLIENT_ID or claims["aud"] == [CLIENT_ID]
    assert claims["nonce"] == nonce
    assert claims.get("email") == USER_LOGIN
