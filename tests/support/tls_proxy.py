"""Debian's ``stunnel`` as a TLS terminator in front of the embedded (plaintext) broker.

Tansu's own TLS options do not work together, so the TLS test runs the broker
on a private plaintext port, advertises the proxy's port, and lets stunnel
accept TLS there (optionally demanding a client certificate signed by the test
CA) and forward the decrypted stream to the broker.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType

from devstack.ports import port_open
from tests.support.tls_certs import Pki


def stunnel_binary() -> str:
    found = shutil.which("stunnel4") or shutil.which("stunnel")
    if found is None:
        raise RuntimeError("stunnel is not installed: run .ci/sysdeps.sh (Debian package stunnel4)")
    return found


class TlsProxy:
    def __init__(self, pki: Pki, accept_port: int, connect_port: int, workdir: Path, *, mutual: bool) -> None:
        self.accept_port = accept_port
        self.workdir = workdir
        lines = [
            "foreground = yes",
            f"output = {workdir / 'stunnel.log'}",
            "debug = notice",
            "[kafka]",
            f"accept = 127.0.0.1:{accept_port}",
            f"connect = 127.0.0.1:{connect_port}",
            f"cert = {pki.server_cert}",
            f"key = {pki.server_key}",
        ]
        if mutual:
            lines += [f"CAfile = {pki.ca_cert}", "verifyChain = yes", "requireCert = yes"]
        self.config = workdir / "stunnel.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> TlsProxy:
        self._process = subprocess.Popen(
            [stunnel_binary(), str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", self.accept_port, timeout=0.2):
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"stunnel did not start:\n{self.log()}")
            time.sleep(0.05)
        return self

    def log(self) -> str:
        path = self.workdir / "stunnel.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
