"""Throwaway certificate authorities and certificates for TLS tests, made with the openssl CLI.

Each test session gets its own CA (valid for a day): a server certificate for 127.0.0.1, client
certificates for mTLS (one per subjectAltName wanted), and a second, untrusted CA whose client
certificate must be refused.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.harness import WAIT, tool


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(
        [tool("openssl"), *args], cwd=cwd, check=True, capture_output=True, text=True, timeout=WAIT
    )


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Authority:
    directory: Path
    name: str

    @property
    def cert(self) -> Path:
        return self.directory / f"{self.name}.crt"

    @property
    def key(self) -> Path:
        return self.directory / f"{self.name}.key"

    @classmethod
    def create(cls, directory: Path, name: str) -> Authority:
        directory.mkdir(parents=True, exist_ok=True)
        ca = cls(directory, name)
        _openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(ca.key), "-out", str(ca.cert), "-days", "1",
            "-subj", f"/CN={name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            cwd=directory,
        )  # fmt: skip
        return ca

    def issue(self, name: str, san: str, usage: str) -> Pair:
        """A certificate for ``san`` (e.g. ``IP:127.0.0.1``), ``usage`` serverAuth/clientAuth."""
        pair = Pair(self.directory / f"{name}.crt", self.directory / f"{name}.key")
        csr = self.directory / f"{name}.csr"
        extensions = self.directory / f"{name}.ext"
        extensions.write_text(f"subjectAltName={san}\nextendedKeyUsage={usage}\n")
        _openssl(
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(pair.key), "-out", str(csr), "-subj", f"/CN={name}",
            cwd=self.directory,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key),
            "-CAcreateserial", "-out", str(pair.cert), "-days", "1",
            "-extfile", str(extensions),
            cwd=self.directory,
        )  # fmt: skip
        return pair


@dataclass(frozen=True)
class Certificates:
    ca: Authority
    server: Pair
    client: Pair  # SAN DNS:prometheus
    other_client: Pair  # SAN DNS:intruder, same CA
    rogue_client: Pair  # from an authority nobody trusts


def make_certificates(directory: Path) -> Certificates:
    ca = Authority.create(directory, "test-ca")
    rogue = Authority.create(directory / "rogue", "rogue-ca")
    return Certificates(
        ca=ca,
        server=ca.issue("server", "IP:127.0.0.1,DNS:localhost", "serverAuth"),
        client=ca.issue("client", "DNS:prometheus", "clientAuth"),
        other_client=ca.issue("intruder", "DNS:intruder", "clientAuth"),
        rogue_client=rogue.issue("rogue-client", "DNS:prometheus", "clientAuth"),
    )
