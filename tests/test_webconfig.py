"""The exporter-toolkit web config: what it accepts, what it refuses (naming the key), basic auth
against bcrypt hashes, and `run`/`check-config` refusing a bad file with exit 2."""

from __future__ import annotations

import base64
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from exporter import basicauth
from exporter.basicauth import BasicAuth, parse_basic
from exporter.errors import ConfigError
from exporter.webconfig import parse_web_config
from exporter.webfile import WebConfigFile, load_web_config
from tests.certs import Certificates, make_certificates
from tests.configs import example_config, write_config
from tests.harness import WAIT

HASH = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


def _problems(raw: Any, base: Path = Path("/")) -> list[str]:
    with pytest.raises(ConfigError) as refused:
        parse_web_config(raw, base)
    return refused.value.problems


def test_the_full_schema_is_accepted(tmp_path: Path) -> None:
    config = parse_web_config(
        {
            "tls_server_config": {
                "cert_file": "server.crt",
                "key_file": "/abs/server.key",
                "client_auth_type": "RequireAndVerifyClientCert",
                "client_ca_file": "ca.crt",
                "client_allowed_sans": ["prometheus"],
                "min_version": "TLS12",
                "max_version": "TLS13",
                "cipher_suites": [
                    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                    "TLS_AES_128_GCM_SHA256",
                ],
                "prefer_server_cipher_suites": False,
                "curve_preferences": ["X25519", "CurveP256"],
            },
            "http_server_config": {
                "http2": False,
                "headers": {"X-Frame-Options": "deny", "Strict-Transport-Security": "max-age=1"},
            },
            "basic_auth_users": {"prometheus": HASH},
            "auth_excluded_paths": ["/healthz", "/readyz"],
            "rate_limit": {"interval": "100ms", "burst": 20},
        },
        tmp_path,
    )
    tls = config.tls
    assert tls is not None
    assert tls.cert_file == str(tmp_path / "server.crt")  # relative to the web config's dir
    assert tls.key_file == "/abs/server.key"
    assert tls.client_auth == ssl.CERT_REQUIRED
    assert tls.ciphers == ("ECDHE-ECDSA-AES128-GCM-SHA256",)  # TLS 1.3 suites: not choosable
    assert tls.prefer_server_cipher_suites is False
    assert config.users == {"prometheus": HASH}
    assert config.headers == (
        ("X-Frame-Options", "deny"),
        ("Strict-Transport-Security", "max-age=1"),
    )
    assert config.auth_excluded_paths == {"/healthz", "/readyz"}
    assert config.rate_limit is not None
    assert (config.rate_limit.interval, config.rate_limit.burst) == (0.1, 20)


def test_an_empty_file_means_no_tls_and_no_auth() -> None:
    config = parse_web_config(None, Path("/"))
    assert (config.tls, config.users, config.headers) == (None, None, ())


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"tls_config": {}}, "tls_config: unknown key"),
        ({"tls_server_config": {"cert_file": "c"}}, "tls_server_config.key_file: is required"),
        (
            {"tls_server_config": {"cert_file": "c", "key_file": "k", "bogus": 1}},
            "tls_server_config.bogus: unknown key",
        ),
        (
            {"tls_server_config": {"cert_file": "c", "key_file": "k", "min_version": "TLS14"}},
            "tls_server_config.min_version: must be one of",
        ),
        (
            {
                "tls_server_config": {
                    "cert_file": "c",
                    "key_file": "k",
                    "min_version": "TLS13",
                    "max_version": "TLS12",
                }
            },
            "tls_server_config.min_version: is above max_version",
        ),
        (
            {"tls_server_config": {"cert_file": "c", "key_file": "k", "client_auth_type": "Yes"}},
            "tls_server_config.client_auth_type: must be one of",
        ),
        (
            {
                "tls_server_config": {
                    "cert_file": "c",
                    "key_file": "k",
                    "client_auth_type": "RequireAnyClientCert",
                }
            },
            "tls_server_config.client_auth_type: RequireAnyClientCert",
        ),
        (
            {"tls_server_config": {"cert_file": "c", "key_file": "k", "client_ca_file": "ca"}},
            "tls_server_config.client_ca_file: is set but client_auth_type is NoClientCert",
        ),
        (
            {
                "tls_server_config": {
                    "cert_file": "c",
                    "key_file": "k",
                    "client_auth_type": "VerifyClientCertIfGiven",
                    "client_ca_file": "ca",
                    "client_allowed_sans": ["x"],
                }
            },
            "tls_server_config.client_allowed_sans: needs client_auth_type",
        ),
        (
            {"tls_server_config": {"cert_file": "c", "key_file": "k", "cipher_suites": ["RC4"]}},
            "tls_server_config.cipher_suites: unknown cipher suite 'RC4'",
        ),
        (
            {"tls_server_config": {"cert": "-----BEGIN", "key_file": "k"}},
            "tls_server_config.cert: inline PEM is not supported",
        ),
        (
            {"http_server_config": {"headers": {"Server": "x"}}},
            "http_server_config.headers.Server: cannot be configured",
        ),
        (
            {"http_server_config": {"headers": {"X-Frame-Options": "allow"}}},
            "http_server_config.headers.X-Frame-Options: must be one of deny, sameorigin",
        ),
        ({"http_server_config": {"http2": "yes"}}, "http_server_config.http2: must be true"),
        ({"basic_auth_users": {"alice": "hunter2"}}, "basic_auth_users.alice: must be a bcrypt"),
        # A hash pasted with its newline (a YAML `|` block) was accepted, then no login worked.
        ({"basic_auth_users": {"alice": HASH + "\n"}}, "basic_auth_users.alice: must be a bcrypt"),
        ({"basic_auth_users": ["alice"]}, "basic_auth_users: must be a mapping"),
        # Without its slash a path never matches a request: the kubelet's probes would get 401
        # and the Pod would never be ready (the toolkit accepts it, and fails the same way).
        (
            {"basic_auth_users": {"alice": HASH}, "auth_excluded_paths": ["/readyz", "healthz"]},
            "auth_excluded_paths: 'healthz' is not a request path; write /healthz",
        ),
        ({"rate_limit": {"interval": "soon", "burst": 1}}, "rate_limit.interval: must be a"),
        ({"rate_limit": {"interval": "1s", "burst": 0}}, "rate_limit.burst: must be an integer"),
        ("tls", "(top level)"),
    ],
)
def test_a_bad_key_is_named(raw: Any, expected: str) -> None:
    problems = _problems(raw)
    assert any(expected in p for p in problems), problems
    assert all(p.startswith("--web.config.file: ") for p in problems)


def test_a_plain_password_in_place_of_a_hash_is_never_echoed() -> None:
    problems = _problems({"basic_auth_users": {"alice": "hunter2"}})
    assert not any("hunter2" in p for p in problems)


def test_tls_files_are_checked_when_loading(tmp_path: Path, certs: Certificates) -> None:
    web = tmp_path / "web.yml"
    good = {"cert_file": str(certs.server.cert), "key_file": str(certs.server.key)}
    web.write_text(yaml.safe_dump({"tls_server_config": good}))
    assert load_web_config(str(web)).context is not None
    web.write_text(yaml.safe_dump({"tls_server_config": {**good, "cert_file": "nope.crt"}}))
    with pytest.raises(ConfigError, match=r"tls_server_config\.cert_file: cannot read"):
        load_web_config(str(web))
    web.write_text(yaml.safe_dump({"tls_server_config": {**good, "key_file": "nope.key"}}))
    with pytest.raises(ConfigError, match=r"tls_server_config\.key_file: cannot read .*nope.key"):
        load_web_config(str(web))
    mismatched = {**good, "key_file": str(certs.client.key)}
    web.write_text(yaml.safe_dump({"tls_server_config": mismatched}))
    with pytest.raises(ConfigError, match=r"cert_file/key_file: not a usable"):
        load_web_config(str(web))
    with_ca = {**good, "client_auth_type": "RequireAndVerifyClientCert", "client_ca_file": "x"}
    web.write_text(yaml.safe_dump({"tls_server_config": with_ca}))
    with pytest.raises(ConfigError, match=r"client_ca_file: not a usable CA"):
        load_web_config(str(web))


def test_a_yaml_error_does_not_quote_the_file(tmp_path: Path) -> None:
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  alice: {HASH}\n  : [\n")
    with pytest.raises(ConfigError) as refused:
        load_web_config(str(web))
    assert HASH not in str(refused.value)
    assert "line 3" in str(refused.value)


def test_the_file_is_read_again_only_when_it_changed(tmp_path: Path) -> None:
    web = tmp_path / "web.yml"
    web.write_text(yaml.safe_dump({"basic_auth_users": {"a": HASH}}))
    file = WebConfigFile(str(web))
    first = file.current()
    assert file.current() is first  # unchanged: the same parsed object
    web.write_text(yaml.safe_dump({"basic_auth_users": {"a": HASH, "bb": HASH}}))
    second = file.current()
    assert second.config.users is not None
    assert set(second.config.users) == {"a", "bb"}
    web.write_text("basic_auth_users: 3\n")  # broken at run time: refused, fail closed
    with pytest.raises(ConfigError):
        file.current()
    web.write_text(yaml.safe_dump({"basic_auth_users": {"c": HASH}}))
    third = file.current()
    assert third.config.users is not None
    assert set(third.config.users) == {"c"}


# -- basic auth --------------------------------------------------------------------------------


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (_basic("alice", "pw:with:colons"), ("alice", "pw:with:colons")),
        ("basic " + base64.b64encode(b"a:").decode(), ("a", "")),
        (None, None),
        ("Bearer abc", None),
        ("Basic !!!notbase64", None),
        ("Basic " + base64.b64encode(b"no-colon").decode(), None),
        ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), None),
    ],
)
def test_parse_basic(header: str | None, expected: tuple[str, str] | None) -> None:
    assert parse_basic(header) == expected


def test_basic_auth_accepts_the_right_password_only() -> None:
    auth = BasicAuth()
    htpasswd_style = "$2y$" + HASH[4:]  # htpasswd -B writes $2y$
    users = {"prometheus": HASH, "grafana": htpasswd_style}
    assert auth.allowed(users, _basic("prometheus", "s3cret"))
    assert auth.allowed(users, _basic("grafana", "s3cret"))
    assert not auth.allowed(users, _basic("prometheus", "wrong"))
    assert not auth.allowed(users, _basic("nobody", "s3cret"))
    assert not auth.allowed(users, _basic("prometheus", "x" * 100))  # over bcrypt's 72 bytes
    assert not auth.allowed(users, None)


def test_basic_auth_runs_bcrypt_once_per_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[bytes] = []
    real = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(password)
        return bool(real(password, hashed))

    monkeypatch.setattr(basicauth.bcrypt, "checkpw", counting)
    auth = BasicAuth()
    users = {"prometheus": HASH}
    for _ in range(5):
        assert auth.allowed(users, _basic("prometheus", "s3cret"))
        assert not auth.allowed(users, _basic("prometheus", "wrong"))
    assert len(calls) == 2
    # A changed hash for the same user is checked again (the cache is keyed by the hash too).
    assert not auth.allowed({"prometheus": bcrypt.hashpw(b"new", bcrypt.gensalt(4)).decode()},
                            _basic("prometheus", "s3cret"))  # fmt: skip
    assert len(calls) == 3


# -- the command line -----------------------------------------------------------------------------


@pytest.fixture
def sidecar_config(tmp_path: Path) -> Path:
    (tmp_path / "p.jsonl").touch()
    return write_config(tmp_path, example_config(tmp_path / "p.jsonl"))


@pytest.mark.parametrize("command", ["run", "check-config"])
def test_a_bad_web_config_exits_2_naming_the_key(
    tmp_path: Path, sidecar_config: Path, command: str
) -> None:
    web = tmp_path / "web.yml"
    web.write_text(yaml.safe_dump({"tls_server_config": {"cert_file": "x.crt"}}))
    config = ["--config", str(sidecar_config)] if command == "run" else [str(sidecar_config)]
    done = subprocess.run(
        [sys.executable, "-m", "exporter", command, *config, "--web.config.file", str(web)],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "--web.config.file: tls_server_config.key_file: is required" in done.stderr


def test_check_config_accepts_a_good_web_config(
    tmp_path: Path, sidecar_config: Path, certs: Certificates
) -> None:
    web = tmp_path / "web.yml"
    tls = {"cert_file": str(certs.server.cert), "key_file": str(certs.server.key)}
    web.write_text(yaml.safe_dump({"tls_server_config": tls, "basic_auth_users": {"p": HASH}}))
    argv = ["check-config", str(sidecar_config), "--web.config.file", str(web)]
    done = subprocess.run(
        [sys.executable, "-m", "exporter", *argv],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
