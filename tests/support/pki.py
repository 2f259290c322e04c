"""
A throwaway certificate authority and a server certificate it signed,
generated at test time, for every wss:// test.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from twisted.internet.ssl import PrivateCertificate


@dataclass
class PKI:
    """
    A CA and a server certificate it signed, valid for the IP address
    127.0.0.1 and the DNS names it was made with.

    @ivar caFile: the CA certificate (PEM).
    @ivar keyFile: the server's private key (PEM).
    @ivar certFile: the server's certificate (PEM).
    @ivar serverOptions: Twisted TLS context options serving it.
    """

    caFile: Path
    keyFile: Path
    certFile: Path
    serverOptions: Any

    @cached_property
    def clientContext(self) -> ssl.SSLContext:
        """
        An C{ssl.SSLContext} trusting only this CA.
        """
        return ssl.create_default_context(cafile=str(self.caFile))


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_pki(directory: Path, dnsNames: Sequence[str] = ()) -> PKI:
    """
    Generate into C{directory} a CA and a server certificate for 127.0.0.1
    and C{dnsNames} (without one, C{wss://localhost} is a host name
    mismatch).
    """
    now = datetime.now(UTC)
    caKey = ec.generate_private_key(ec.SECP256R1())
    caCert = (
        x509.CertificateBuilder()
        .subject_name(_name("txpulse test CA"))
        .issuer_name(_name("txpulse test CA"))
        .public_key(caKey.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(caKey.public_key()), critical=False)
        .sign(caKey, hashes.SHA256())
    )
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in dnsNames]
    names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    serverKey = ec.generate_private_key(ec.SECP256R1())
    serverCert = (
        x509.CertificateBuilder()
        .subject_name(_name(dnsNames[0] if dnsNames else "txpulse test server"))
        .issuer_name(caCert.subject)
        .public_key(serverKey.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(serverKey.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(caKey.public_key()), critical=False)
        .sign(caKey, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    caFile = directory / "ca.pem"
    caFile.write_bytes(caCert.public_bytes(serialization.Encoding.PEM))
    keyFile = directory / "key.pem"
    keyFile.write_bytes(
        serverKey.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    certFile = directory / "cert.pem"
    certFile.write_bytes(serverCert.public_bytes(serialization.Encoding.PEM))
    serverOptions = PrivateCertificate.loadPEM(keyFile.read_bytes() + certFile.read_bytes()).options()
    return PKI(caFile, keyFile, certFile, serverOptions)
