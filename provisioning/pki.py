"""The site's certificate authority and the broker's TLS server certificate
(``cryptography``, EC P-256).

The CA lives ten years and signs only the broker's certificate; nodes trust
it (``mqtt.tls_ca``) and check the broker's host name against the
certificate's subjectAltName: the hub's host name or address, plus
``localhost`` and ``127.0.0.1`` for the hub's own ingest on the same machine.
The extensions are the ones strict X.509 checkers (Python 3.13's
``VERIFY_X509_STRICT``) require: critical basicConstraints and keyUsage on
the CA, key identifiers on both.
"""

import hashlib
import ipaddress
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = timedelta(days=3652)  # ten years


def make_ca(site: str, name: str, *, now: datetime | None = None) -> tuple[bytes, bytes]:
    """A new CA: (private key PEM, certificate PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, name[:64]),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"Rounds {site} CA"[:64])])
    now = now or datetime.now(timezone.utc)
    public = key.public_key()
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256()))
    return _key_pem(key), cert.public_bytes(serialization.Encoding.PEM)


def make_server_cert(ca_key_pem: bytes, ca_cert_pem: bytes, host: str, *,
                     now: datetime | None = None) -> tuple[bytes, bytes]:
    """The broker's certificate for ``host`` (a DNS name or an IP address),
    signed by the CA: (private key PEM, certificate PEM)."""
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    key = ec.generate_private_key(ec.SECP256R1())
    now = now or datetime.now(timezone.utc)
    public = key.public_key()
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host[:64])]))
            .issuer_name(ca_cert.subject).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(min(now + VALIDITY, ca_cert.not_valid_after_utc))
            .add_extension(x509.SubjectAlternativeName(subject_alt_names(host)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return _key_pem(key), cert.public_bytes(serialization.Encoding.PEM)


def subject_alt_names(host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for entry in (host, "localhost", "127.0.0.1"):
        try:
            name = x509.IPAddress(ipaddress.ip_address(entry))
        except ValueError:
            name = x509.DNSName(entry)
        if name not in names:
            names.append(name)
    return names


def fingerprint(cert_pem: bytes) -> str:
    """SHA-256 of the certificate (DER), lower-case hex: what the label shows."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
