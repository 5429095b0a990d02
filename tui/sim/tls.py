"""The simulator's HTTPS: a certificate authority made for this run, and a certificate it
signs for the loopback names.

Clients trust it the way they would trust a company's own CA: `SSL_CERT_FILE` names the CA's
PEM file (`SimServer.ca_file`), which httpx reads when it trusts the environment. `trustme`
makes the certificates; it comes with the test extra (`pip install -e '.[test]'`), which the
benchmarks need anyway, so the plain-HTTP simulator of `wan-tui demo` does not need it.
"""

from __future__ import annotations

import ssl
from pathlib import Path

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


class NoTls(RuntimeError):
    """The simulator was asked for HTTPS without the package that makes its certificates."""


def server_context(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A server-side TLS context for the loopback names, and the CA file clients trust."""
    try:
        import trustme
    except ImportError:
        raise NoTls("the simulator's HTTPS needs the trustme package: "
                    "pip install -e '.[test]' (or pip install trustme)") from None
    ca = trustme.CA()
    cert = ca.issue_cert(*LOOPBACK_NAMES)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_file = directory / "sim-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, ca_file
