"""A renewed certificate written over the PEM files is served to new connections without a restart: real
TLS handshakes against an aiohttp listener (as the recorder runs it) before and after the renewal."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from pathlib import Path

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devstack.processes import free_port
from recorder_vm.tls import TlsReloader


def _write_certificate(directory: Path, serial: int) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "recorder.contoso.example")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (directory / "tls-cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / "tls-key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


async def _served_serial(port: int) -> int:
    client = ssl.create_default_context()
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    await writer.wait_closed()
    return x509.load_der_x509_certificate(der).serial_number


def test_a_renewed_certificate_is_served_after_the_reload(tmp_path: Path) -> None:
    async def scenario() -> None:
        _write_certificate(tmp_path, serial=1001)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert, key = str(tmp_path / "tls-cert.pem"), str(tmp_path / "tls-key.pem")
        context.load_cert_chain(cert, key)
        reloader = TlsReloader(context, cert, key)
        runner = web.AppRunner(web.Application())
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
        try:
            assert await _served_serial(port) == 1001
            assert reloader.check() is False  # nothing changed yet

            _write_certificate(tmp_path, serial=2002)  # what renew-certificate.ps1 does
            assert reloader.check() is True
            assert await _served_serial(port) == 2002
            assert reloader.reloads == 1
        finally:
            await runner.cleanup()

    asyncio.run(scenario())


def test_a_half_written_pair_is_not_loaded_and_the_old_certificate_stays_served(tmp_path: Path) -> None:
    async def scenario() -> None:
        _write_certificate(tmp_path, serial=1)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert, key = str(tmp_path / "tls-cert.pem"), str(tmp_path / "tls-key.pem")
        context.load_cert_chain(cert, key)
        reloader = TlsReloader(context, cert, key)
        runner = web.AppRunner(web.Application())
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
        try:
            old_key = (tmp_path / "tls-key.pem").read_bytes()
            _write_certificate(tmp_path, serial=2)
            (tmp_path / "tls-key.pem").write_bytes(old_key)  # certificate renewed, key not written yet
            assert reloader.check() is False
            assert await _served_serial(port) == 1
            _write_certificate(tmp_path, serial=3)
            assert reloader.check() is True
            assert await _served_serial(port) == 3
        finally:
            await runner.cleanup()

    asyncio.run(scenario())
