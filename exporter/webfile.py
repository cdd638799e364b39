"""The web config file as of now: read, checked, turned into a TLS context, and read again when
it or a file it names changes (``WebConfigFile``), as the exporter-toolkit reads it per request.
"""

from __future__ import annotations

import logging
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

import yaml

from exporter.errors import ConfigError
from exporter.webconfig import TLSSettings, WebConfig, parse_web_config

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 1 << 20  # a web config is a few lines; a bigger file is a mistake


def ssl_context(tls: TLSSettings) -> ssl.SSLContext:
    """The server's TLS context, or ConfigError naming the key whose file is unusable."""
    k = "--web.config.file: tls_server_config."
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = tls.min_version
    context.maximum_version = tls.max_version
    context.set_alpn_protocols(["http/1.1"])
    for key, name in (("cert_file", tls.cert_file), ("key_file", tls.key_file)):
        try:  # ssl does not say which of the two it could not open
            with Path(name).open("rb"):
                pass
        except OSError as exc:
            raise ConfigError([f"{k}{key}: cannot read {name} ({exc.strerror})"]) from exc
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            [f"{k}cert_file/key_file: not a usable certificate and key ({_reason(exc)})"]
        ) from exc
    if tls.ciphers:
        try:
            context.set_ciphers(":".join(tls.ciphers))
        except ssl.SSLError as exc:
            raise ConfigError([f"{k}cipher_suites: none is available here"]) from exc
    if not tls.prefer_server_cipher_suites:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    context.verify_mode = tls.client_auth
    if tls.client_auth != ssl.CERT_NONE:
        try:
            if tls.client_ca_file or tls.client_ca:
                context.load_verify_locations(cafile=tls.client_ca_file, cadata=tls.client_ca)
            else:  # as Go's crypto/tls: no CA configured means the system's roots
                context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
        except (OSError, ssl.SSLError) as exc:
            key = "client_ca_file" if tls.client_ca_file else "client_ca"
            raise ConfigError([f"{k}{key}: not a usable CA certificate ({_reason(exc)})"]) from exc
    return context


def _reason(exc: Exception) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


@dataclass(frozen=True)
class Loaded:
    config: WebConfig
    context: ssl.SSLContext | None


def load_web_config(path: str) -> Loaded:
    """Read and check the file, and build its TLS context (so the TLS files are checked too)."""
    config = _read(path)
    return Loaded(config, ssl_context(config.tls) if config.tls is not None else None)


def _read(path: str) -> WebConfig:
    k = "--web.config.file"
    try:
        with Path(path).open("rb") as f:
            raw_bytes = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"{k}: cannot read {path} ({exc.strerror})"]) from exc
    if len(raw_bytes) > MAX_FILE_BYTES:
        raise ConfigError([f"{k}: {path} is over {MAX_FILE_BYTES} bytes"])
    try:
        raw = yaml.safe_load(raw_bytes.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{k}: {path} is not UTF-8 text"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"{k}: {path} is not valid YAML ({_yaml_problem(exc)})"]) from exc
    return parse_web_config(raw, Path(path).resolve().parent)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """The problem and where, without the snippet of the file PyYAML quotes (it may hold a
    password hash)."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{exc.problem} at line {mark.line + 1}, column {mark.column + 1}"
    return type(exc).__name__


_Identity = tuple[tuple[int, int, int, int] | None, ...]


class WebConfigFile:
    """The web config as of now: re-read when the file or a file it names changed.

    ``current()`` is called for every connection and request (from several threads); a version
    of the files that fails is refused, logged once, and raises ConfigError until the files
    change again: the toolkit's behaviour, failing closed (no request is served with a user
    list or a certificate the operator meant to replace).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._identity: _Identity | None = None
        self._loaded: Loaded | None = None
        self._error: ConfigError | None = None
        self._files: tuple[str, ...] = ()  # the TLS files the last good version names
        self.loaded = self.current()  # at start: a bad file raises (exit 2)
        self.tls = self.loaded.context is not None

    def _identity_of(self, files: tuple[str, ...]) -> _Identity:
        result: list[tuple[int, int, int, int] | None] = []
        for name in (self.path, *files):
            try:
                st = Path(name).stat()  # follows symlinks: a Secret update swaps one
            except OSError:
                result.append(None)
            else:
                result.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(result)

    def current(self) -> Loaded:
        with self._lock:
            identity = self._identity_of(self._files)
            if identity != self._identity:
                self._reload(identity)
            if self._error is not None:
                raise self._error
            assert self._loaded is not None
            return self._loaded

    def _reload(self, identity: _Identity) -> None:
        try:
            loaded = load_web_config(self.path)
        except ConfigError as exc:
            if self._identity is not None:  # at start the caller reports it
                log.error("web config refused: %s", "; ".join(exc.problems))
            self._error = exc
            self._identity = identity
            return
        if self._identity is not None:
            log.info("web config %s reloaded", self.path)
        self._error = None
        self._loaded = loaded
        # Keep the identity taken before reading (a change while we read is seen next time),
        # unless the file now names other files: then theirs is the one to watch.
        tls = loaded.config.tls
        files = tls.files if tls is not None else ()
        self._identity = identity if files == self._files else self._identity_of(files)
        self._files = files
