"""Certificates for TLS integration tests, made with the `openssl` command line tool.

Everything is written under a directory the caller owns (a tempfile.TemporaryDirectory
or the test case's temp dir); nothing touches the system trust store.

    ca = CertificateAuthority(tmp)                      # a root for curl --cacert
    site = ca.issue(["example.test", "*.example.test"]) # ECDSA P-256 leaf with SANs
    site.cert, site.key, site.fullchain                 # paths for the Gatehouse config
    old = ca.issue(["old.test"], not_after=days_from_now(-1))   # already expired
    rsa = self_signed(tmp, ["rsa.test"], key_type="rsa")

`fullchain` is the leaf followed by the intermediates (none unless issued by an
intermediate: ca.intermediate()), which is what [[listener.tls.certificate]] cert_file
expects. Dates are explicit (`openssl ca -startdate/-enddate`), so expired and
not-yet-valid certificates work with OpenSSL 3.0, whose `req -x509` has no -not_after.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import shutil
import subprocess
from typing import Sequence

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


class OpenSslError(RuntimeError):
    """An openssl command failed; the message carries its command line and stderr."""


def run_openssl(*args: str, cwd: str | None = None) -> str:
    """Runs `openssl args...` and returns stdout; raises OpenSslError on failure."""
    result = subprocess.run([OPENSSL, *args], cwd=cwd, capture_output=True, text=True,
                            timeout=60, check=False)
    if result.returncode != 0:
        raise OpenSslError(f"openssl {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def days_from_now(days: float) -> datetime.datetime:
    """A UTC time `days` from now (negative = in the past)."""
    return datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)


def _asn1_time(when: datetime.datetime) -> str:
    return when.astimezone(datetime.timezone.utc).strftime("%Y%m%d%H%M%SZ")


def make_key(path: str, key_type: str = "ec") -> str:
    """Writes an unencrypted PEM private key: "ec" (P-256) or "rsa" (2048 bits)."""
    if key_type == "ec":
        run_openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-out", path)
    elif key_type == "rsa":
        run_openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", path)
    else:
        raise ValueError(f"key_type must be 'ec' or 'rsa', not {key_type!r}")
    os.chmod(path, 0o600)
    return path


@dataclasses.dataclass
class Certificate:
    """Paths of one issued certificate. `issuer_chain` lists intermediates, leaf excluded."""

    cert: str
    key: str
    fullchain: str
    names: list[str]
    issuer_chain: list[str] = dataclasses.field(default_factory=list)

    def subject(self) -> str:
        return run_openssl("x509", "-in", self.cert, "-noout", "-subject").strip()

    def fingerprint(self) -> str:
        """SHA-256 fingerprint ("AB:CD:..."), to compare with what a client saw."""
        out = run_openssl("x509", "-in", self.cert, "-noout", "-fingerprint", "-sha256")
        return out.strip().split("=", 1)[1]


def _san(names: Sequence[str]) -> str:
    entries = []
    for name in names:
        kind = "IP" if name.replace(".", "").isdigit() or ":" in name else "DNS"
        entries.append(f"{kind}:{name}")
    return ", ".join(entries)


class CertificateAuthority:
    """A throwaway CA in `directory` (created if missing) that issues leaf certificates.

    `cert` is the CA certificate to hand to clients (curl --cacert, s_client -CAfile).
    """

    def __init__(self, directory: str, name: str = "Gatehouse Test CA",
                 key_type: str = "ec", parent: CertificateAuthority | None = None):
        self.directory = os.path.join(directory, _slug(name))
        os.makedirs(os.path.join(self.directory, "issued"), exist_ok=True)
        self.name = name
        self.key = make_key(os.path.join(self.directory, "ca.key"), key_type)
        self.cert = os.path.join(self.directory, "ca.pem")
        self.parent = parent
        self._serial = 0
        with open(os.path.join(self.directory, "index.txt"), "w", encoding="ascii"):
            pass
        with open(os.path.join(self.directory, "serial"), "w", encoding="ascii") as f:
            f.write("1000\n")
        self._write_config()
        if parent is None:
            run_openssl("req", "-new", "-x509", "-key", self.key, "-out", self.cert,
                        "-days", "30", "-subj", f"/CN={name}", "-sha256",
                        "-addext", "basicConstraints=critical,CA:TRUE",
                        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        else:
            csr = os.path.join(self.directory, "ca.csr")
            run_openssl("req", "-new", "-key", self.key, "-out", csr, "-subj", f"/CN={name}")
            parent._sign(csr, self.cert, "ca_ext", None, days_from_now(-1 / 24),
                         days_from_now(30))

    @property
    def chain(self) -> list[str]:
        """Intermediates from this CA up to (excluding) the root, nearest first."""
        if self.parent is None:
            return []
        return [self.cert, *self.parent.chain]

    @property
    def root(self) -> str:
        return self.cert if self.parent is None else self.parent.root

    def intermediate(self, name: str = "Gatehouse Test Intermediate") -> CertificateAuthority:
        """A CA signed by this one; its leaves' fullchain includes it."""
        return CertificateAuthority(self.directory, name, parent=self)

    def issue(self, names: Sequence[str], key_type: str = "ec",
              not_before: datetime.datetime | None = None,
              not_after: datetime.datetime | None = None,
              common_name: str | None = None, key: str | None = None) -> Certificate:
        """A server certificate for `names` (SAN DNS entries; IPs become IP entries).

        Defaults: valid from an hour ago for 30 days; CN = the first name. Pass `key` to
        issue for an existing key file. (A mismatched pair for error tests is just one
        certificate's `cert` with another's `key`.)
        """
        if not names and common_name is None:
            raise ValueError("a certificate needs names or a common name")
        self._serial += 1
        label = _slug(names[0] if names else common_name or "cert")
        base = os.path.join(self.directory, "issued", f"{self._serial:03d}-{label}")
        key_path = key or make_key(base + ".key", key_type)
        csr = base + ".csr"
        cn = common_name if common_name is not None else names[0]
        run_openssl("req", "-new", "-key", key_path, "-out", csr, "-subj", f"/CN={cn}")
        extfile = base + ".ext"
        with open(extfile, "w", encoding="ascii") as f:
            f.write("[leaf_ext]\nbasicConstraints = CA:FALSE\n"
                    "keyUsage = critical, digitalSignature, keyEncipherment\n"
                    "extendedKeyUsage = serverAuth\n")
            if names:
                f.write(f"subjectAltName = {_san(names)}\n")
        cert = base + ".pem"
        self._sign(csr, cert, "leaf_ext", extfile, not_before or days_from_now(-1 / 24),
                   not_after or days_from_now(30))
        fullchain = base + ".fullchain.pem"
        _concatenate([cert, *self.chain], fullchain)
        return Certificate(cert=cert, key=key_path, fullchain=fullchain, names=list(names),
                           issuer_chain=self.chain)

    def _write_config(self) -> None:
        self.config = os.path.join(self.directory, "ca.cnf")
        with open(self.config, "w", encoding="ascii") as f:
            f.write(f"""[ca]
default_ca = test_ca
[test_ca]
dir = {self.directory}
database = $dir/index.txt
new_certs_dir = $dir/issued
serial = $dir/serial
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
[policy_any]
commonName = supplied
[ca_ext]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
""")

    def _sign(self, csr: str, out: str, extensions: str, extfile: str | None,
              not_before: datetime.datetime, not_after: datetime.datetime) -> None:
        args = ["ca", "-batch", "-config", self.config, "-notext", "-in", csr, "-out", out,
                "-cert", self.cert, "-keyfile", self.key, "-extensions", extensions,
                "-startdate", _asn1_time(not_before), "-enddate", _asn1_time(not_after)]
        if extfile:
            args += ["-extfile", extfile]
        run_openssl(*args)


def self_signed(directory: str, names: Sequence[str], key_type: str = "ec",
                days: int = 30) -> Certificate:
    """A self-signed server certificate for `names` (clients need -k / --insecure or
    the cert itself as CA file)."""
    os.makedirs(directory, exist_ok=True)
    base = os.path.join(directory, f"self-{_slug(names[0])}-{key_type}")
    key = make_key(base + ".key", key_type)
    cert = base + ".pem"
    run_openssl("req", "-new", "-x509", "-key", key, "-out", cert, "-days", str(days),
                "-subj", f"/CN={names[0]}", "-sha256",
                "-addext", f"subjectAltName={_san(names)}",
                "-addext", "basicConstraints=critical,CA:FALSE",
                "-addext", "extendedKeyUsage=serverAuth")
    return Certificate(cert=cert, key=key, fullchain=cert, names=list(names))


def verify(cert: Certificate, ca_file: str) -> None:
    """Raises OpenSslError unless `cert` chains to `ca_file` through its intermediates."""
    args = ["verify", "-CAfile", ca_file]
    if cert.issuer_chain:
        untrusted = cert.fullchain  # leaf + intermediates; verify uses what it needs
        args += ["-untrusted", untrusted]
    run_openssl(*args, cert.cert)


def _concatenate(paths: Sequence[str], out: str) -> None:
    with open(out, "wb") as target:
        for path in paths:
            with open(path, "rb") as source:
                target.write(source.read())


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in text.lower())
