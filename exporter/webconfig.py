"""The web configuration (``--web.config.file``) as data: TLS, mTLS, basic auth, extra headers.

The same YAML schema as the Prometheus exporter-toolkit (docs/deploy.md, "TLS and basic auth"),
so one file format serves every exporter of a fleet. Like the toolkit, the file is read again
for every new connection and request (``exporter.webfile``), so a renewed certificate or a
changed user list takes effect without a restart.

Where Python's ``ssl`` cannot do what Go's ``crypto/tls`` does, the key is refused with a
message saying what to use instead, never silently weakened: ``RequestClientCert`` and
``RequireAnyClientCert`` (asking for a certificate without verifying it), and inline ``cert`` /
``key``. ``http2`` and ``curve_preferences`` are accepted and have no effect (the server speaks
HTTP/1.1; OpenSSL picks the curve).
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exporter.errors import ConfigError
from exporter.validate import parse_duration

_TOP_KEYS = {
    "tls_server_config",
    "http_server_config",
    "basic_auth_users",
    "auth_excluded_paths",
    "rate_limit",
}
_TLS_KEYS = {
    "cert",
    "key",
    "client_ca",
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "client_allowed_sans",
    "min_version",
    "max_version",
    "cipher_suites",
    "prefer_server_cipher_suites",
    "curve_preferences",
}
_HTTP_KEYS = {"http2", "headers"}

_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_UNVERIFIED_CLIENT_AUTH = {"RequestClientCert", "RequireAnyClientCert", "RequireClientCert"}
# Go's crypto/tls.CipherSuites() (the ones the toolkit accepts) → OpenSSL names. TLS 1.3 suites
# cannot be chosen, in Go as in OpenSSL's cipher string: listed, they are accepted and ignored.
_CIPHERS = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_AES_128_GCM_SHA256": "",
    "TLS_AES_256_GCM_SHA384": "",
    "TLS_CHACHA20_POLY1305_SHA256": "",
}
_CURVES = {"CurveP256", "CurveP384", "CurveP521", "X25519"}
# The headers the toolkit lets a web config set, with their allowed values (None: any).
_HEADERS: dict[str, tuple[str, ...] | None] = {
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": None,
    "Content-Security-Policy": None,
}
_BCRYPT = re.compile(r"\$2[abxy]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")  # fullmatch


@dataclass(frozen=True)
class TLSSettings:
    cert_file: str
    key_file: str
    client_auth: ssl.VerifyMode = ssl.CERT_NONE
    client_ca_file: str | None = None
    client_ca: str | None = None  # inline PEM
    client_allowed_sans: tuple[str, ...] = ()
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    max_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3
    ciphers: tuple[str, ...] = ()  # OpenSSL names, server preference order
    prefer_server_cipher_suites: bool = True

    @property
    def files(self) -> tuple[str, ...]:
        """Files whose change means a new TLS context (a renewed certificate)."""
        return tuple(f for f in (self.cert_file, self.key_file, self.client_ca_file) if f)


@dataclass(frozen=True)
class RateLimit:
    interval: float  # seconds per request, on average
    burst: int


@dataclass(frozen=True)
class WebConfig:
    tls: TLSSettings | None = None
    users: Mapping[str, str] | None = None  # user → bcrypt hash; None or empty: no auth
    headers: tuple[tuple[str, str], ...] = ()
    auth_excluded_paths: frozenset[str] = frozenset()
    rate_limit: RateLimit | None = None


class _Problems:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, key: str, message: str) -> None:
        self.problems.append(f"--web.config.file: {key}: {message}")

    def mapping(self, value: Any, key: str, allowed: set[str] | None) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(key or "(top level)", "must be a mapping")
            return {}
        for k in value:
            if not isinstance(k, str):
                self.fail(key, f"keys must be strings, not {type(k).__name__}")
            elif allowed is not None and k not in allowed:
                self.fail(f"{key}.{k}" if key else k, "unknown key")
        return value

    def string(self, data: Mapping[str, Any], name: str, prefix: str) -> str | None:
        value = data.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            self.fail(f"{prefix}{name}", "must be a string")
            return None
        return value

    def strings(self, data: Mapping[str, Any], name: str, prefix: str) -> tuple[str, ...]:
        value = data.get(name)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(f"{prefix}{name}", "must be a list of strings")
            return ()
        return tuple(value)

    def boolean(self, data: Mapping[str, Any], name: str, prefix: str, default: bool) -> bool:
        value = data.get(name, default)
        if not isinstance(value, bool):
            self.fail(f"{prefix}{name}", "must be true or false")
            return default
        return value


def parse_web_config(raw: Any, base_dir: Path) -> WebConfig:
    """Plain data → WebConfig, or ConfigError naming every bad key. Relative file names are
    relative to the web config file's directory, as in the toolkit."""
    p = _Problems()
    if raw is None:
        return WebConfig()
    data = p.mapping(raw, "", _TOP_KEYS)
    if not isinstance(raw, Mapping):
        raise ConfigError(p.problems)
    tls_data = p.mapping(data.get("tls_server_config"), "tls_server_config", _TLS_KEYS)
    tls = _tls(p, tls_data, base_dir)
    http = p.mapping(data.get("http_server_config"), "http_server_config", _HTTP_KEYS)
    p.boolean(http, "http2", "http_server_config.", True)  # accepted; we speak HTTP/1.1 only
    headers = []
    for name, value in p.mapping(http.get("headers"), "http_server_config.headers", None).items():
        key = f"http_server_config.headers.{name}"
        if name not in _HEADERS:
            p.fail(key, f"cannot be configured (allowed: {', '.join(sorted(_HEADERS))})")
        elif not isinstance(value, str):
            p.fail(key, "must be a string")
        elif (allowed := _HEADERS[name]) is not None and value not in allowed:
            p.fail(key, f"must be one of {', '.join(allowed)}, not {value!r}")
        elif value:
            headers.append((name, value))
    users = {}
    for user, hashed in p.mapping(data.get("basic_auth_users"), "basic_auth_users", None).items():
        if not isinstance(hashed, str) or not _BCRYPT.fullmatch(hashed):
            # Never echo the value: it may be a plain password put there by mistake.
            p.fail(f"basic_auth_users.{user}", "must be a bcrypt hash ($2y$10$..., htpasswd -B)")
        else:
            users[str(user)] = hashed
    excluded = p.strings(data, "auth_excluded_paths", "")
    for path in excluded:
        if not path.startswith("/"):  # would never match, leaving the probes behind the password
            p.fail("auth_excluded_paths", f"{path!r} is not a request path; write /{path}")
    rate = _rate_limit(p, p.mapping(data.get("rate_limit"), "rate_limit", {"interval", "burst"}))
    if p.problems:
        raise ConfigError(p.problems)
    return WebConfig(tls, users or None, tuple(headers), frozenset(excluded), rate)


def _tls(p: _Problems, data: Mapping[str, Any], base: Path) -> TLSSettings | None:
    if not data:
        return None
    k = "tls_server_config."
    for inline in ("cert", "key"):
        if data.get(inline):
            p.fail(f"{k}{inline}", f"inline PEM is not supported: use {inline}_file")
    cert_file = p.string(data, "cert_file", k)
    key_file = p.string(data, "key_file", k)
    if cert_file is None:
        p.fail(f"{k}cert_file", "is required to serve TLS")
    if key_file is None:
        p.fail(f"{k}key_file", "is required to serve TLS")
    auth_name = p.string(data, "client_auth_type", k) or "NoClientCert"
    client_auth = _CLIENT_AUTH.get(auth_name)
    if auth_name in _UNVERIFIED_CLIENT_AUTH:
        p.fail(
            f"{k}client_auth_type",
            f"{auth_name} (a client certificate that is not verified) is not supported: "
            "use RequireAndVerifyClientCert (or VerifyClientCertIfGiven) with client_ca_file",
        )
    elif client_auth is None:
        p.fail(f"{k}client_auth_type", f"must be one of {', '.join(_CLIENT_AUTH)}")
    ca_file = p.string(data, "client_ca_file", k)
    ca_text = p.string(data, "client_ca", k)
    if (ca_file or ca_text) and client_auth == ssl.CERT_NONE:
        p.fail(f"{k}client_ca_file", "is set but client_auth_type is NoClientCert")
    sans = p.strings(data, "client_allowed_sans", k)
    if sans and client_auth != ssl.CERT_REQUIRED:
        p.fail(f"{k}client_allowed_sans", "needs client_auth_type: RequireAndVerifyClientCert")
    versions = []
    for name, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
        value = data.get(name, default)
        if value not in _VERSIONS:
            p.fail(f"{k}{name}", f"must be one of {', '.join(_VERSIONS)}")
            value = default
        versions.append(_VERSIONS[value])
    if versions[0] > versions[1]:
        p.fail(f"{k}min_version", "is above max_version")
    ciphers = []
    for name in p.strings(data, "cipher_suites", k):
        if name not in _CIPHERS:
            p.fail(f"{k}cipher_suites", f"unknown cipher suite {name!r}")
        elif _CIPHERS[name]:
            ciphers.append(_CIPHERS[name])
    for curve in p.strings(data, "curve_preferences", k):
        if curve not in _CURVES:
            p.fail(f"{k}curve_preferences", f"unknown curve {curve!r}")
    prefer = p.boolean(data, "prefer_server_cipher_suites", k, True)
    if cert_file is None or key_file is None or client_auth is None:
        return None

    def path(name: str) -> str:
        return str(base / name)

    return TLSSettings(
        cert_file=path(cert_file),
        key_file=path(key_file),
        client_auth=client_auth,
        client_ca_file=path(ca_file) if ca_file else None,
        client_ca=ca_text,
        client_allowed_sans=sans,
        min_version=versions[0],
        max_version=versions[1],
        ciphers=tuple(ciphers),
        prefer_server_cipher_suites=prefer,
    )


def _rate_limit(p: _Problems, data: Mapping[str, Any]) -> RateLimit | None:
    if not data:
        return None
    interval = data.get("interval")
    seconds = _duration(interval)
    burst = data.get("burst")
    if seconds is None:
        p.fail("rate_limit.interval", "must be a duration such as 100ms or 1s")
    if not isinstance(burst, int) or isinstance(burst, bool) or not 0 < burst <= 1_000_000:
        p.fail("rate_limit.burst", "must be an integer from 1 to 1000000")
    if seconds is None or not isinstance(burst, int):
        return None
    return RateLimit(seconds, burst) if seconds > 0 else None


def _duration(value: Any) -> float | None:
    """Seconds of a duration written as the exporter's config writes them, or None."""
    try:
        return parse_duration(value) if isinstance(value, str) else None
    except ValueError:
        return None
