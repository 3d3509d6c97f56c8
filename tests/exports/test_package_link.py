"""Download links of export packages: user-delegation SAS URLs, exercised against Azurite running as Azure Storage
does for an app with a Microsoft Entra identity — HTTPS, bearer tokens (`--oauth basic`), Get User Delegation Key,
and the SAS signature recomputed and checked by Azurite on every request.

What this exercises locally: the product's `UserDelegationLinks` (the key request and `generate_blob_sas` with
the delegation key, read-only, https, a content disposition), Azurite's validation of the SAS signature, expiry,
permission and resource, and Range reads through the link; and `ExportService.link` (the ledger entry, the audit
record, the 409 where storage is reached with a key). What it cannot: Azurite checks a token's issuer, audience
and expiry but not its signature, and applies no RBAC — in Azure the Storage Blob Delegator role (infra
rbac.bicep) lets the identity get the key and its data role on `exports` bounds what a SAS can read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import ssl
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from azure.core.credentials import AccessToken
from azure.storage.blob import BlobServiceClient

from devstack.emulators import AZURITE_ACCOUNT, azurite_blob_oauth, ensure_tls
from devstack.processes import free_port
from tests.exports.conftest import OFFICER, ExportWorld
from tests.exports.test_package import run_verifier
from tests.ledger.test_standalone_verifier import isolated_python  # noqa: F401 - the fixture
from verbatim.commands.exports import CommandError, fetch_through_link
from verbatim.exports.links import UserDelegationLinks
from verbatim.exports.service import LinksUnavailable, export_subject
from verbatim.platform import layout
from verbatim.platform.times import utcnow
from verbatim.wiring import container_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
TENANT = "6f1c0a8e-3b2d-4c5e-9f70-1a2b3c4d5e6f"
APP_OBJECT_ID = "0b6f4c4e-8f5d-4d7b-a0a5-3c2b1a0f9e8d"


class EntraToken:
    """A token shaped like Microsoft Entra's for Azure Storage (issuer sts.windows.net/<tenant>/, audience
    https://storage.azure.com, the app's object and tenant ids). Azurite does not check its signature."""

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        assert scopes == ("https://storage.azure.com/.default",), scopes
        now = int(time.time())
        claims = {
            "iss": f"https://sts.windows.net/{TENANT}/",
            "aud": "https://storage.azure.com",
            "oid": APP_OBJECT_ID,
            "tid": TENANT,
            "iat": now,
            "nbf": now - 60,
            "exp": now + 3600,
        }
        return AccessToken(jwt.encode(claims, uuid.uuid4().hex * 2, algorithm="HS256"), now + 3600)


@dataclasses.dataclass
class OAuthStorage:
    service: BlobServiceClient
    ca_cert: Path

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_cert))


@pytest.fixture(scope="module")
def oauth_storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthStorage]:
    root = tmp_path_factory.mktemp("azurite-oauth")
    tls = ensure_tls(root / "tls")
    port = free_port()
    with azurite_blob_oauth(port, root / "data", tls, root / "azurite.log"):
        service = BlobServiceClient(
            f"https://127.0.0.1:{port}/{AZURITE_ACCOUNT}", credential=EntraToken(), connection_verify=str(tls.ca_cert)
        )
        service.create_container(layout.EXPORTS_BLOBS)
        yield OAuthStorage(service, tls.ca_cert)


def put(storage: OAuthStorage, name: str, data: bytes) -> None:
    storage.service.get_blob_client(layout.EXPORTS_BLOBS, name).upload_blob(data, overwrite=True)


def get(storage: OAuthStorage, url: str, **headers: str) -> httpx.Response:
    return httpx.get(url, headers=headers, verify=storage.tls(), timeout=30)


def test_a_link_reads_its_blob_in_ranges_and_nothing_else(oauth_storage: OAuthStorage) -> None:
    data = hashlib.sha256(b"seed").digest() * 10_000  # 320,000 bytes
    put(oauth_storage, "e1/package.zip", data)
    put(oauth_storage, "e2/package.zip", b"another export")
    links = UserDelegationLinks(oauth_storage.service, layout.EXPORTS_BLOBS, utcnow)
    url = links.link("e1/package.zip", expires_at=utcnow() + timedelta(minutes=15), filename="verbatim-export-e1.zip")
    assert "skoid=" in url and "sig=" in url and "sp=r" in url and "spr=https" in url  # a user-delegation SAS

    part = get(oauth_storage, url, Range="bytes=65536-131071")
    assert part.status_code == 206 and part.content == data[65536:131072]
    assert part.headers["content-range"] == f"bytes 65536-131071/{len(data)}"
    whole = get(oauth_storage, url)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["content-disposition"] == 'attachment; filename="verbatim-export-e1.zip"'

    other = url.replace("/e1/package.zip?", "/e2/package.zip?")
    assert get(oauth_storage, other).status_code == 403  # the signature covers the blob's name
    forged = url.replace("sp=r", "sp=rw")
    assert get(oauth_storage, forged).status_code == 403
    write = httpx.put(
        url, content=b"x", headers={"x-ms-blob-type": "BlockBlob"}, verify=oauth_storage.tls(), timeout=30
    )
    assert write.status_code == 403  # read only

    past = datetime.now(UTC) - timedelta(hours=2)
    expired = UserDelegationLinks(oauth_storage.service, layout.EXPORTS_BLOBS, lambda: past).link(
        "e1/package.zip", expires_at=past + timedelta(minutes=15), filename="x.zip"
    )
    assert get(oauth_storage, expired).status_code == 403


def test_an_officer_gets_a_link_that_downloads_a_verifying_package_and_the_grant_is_in_the_ledger(
    export_world: ExportWorld,
    oauth_storage: OAuthStorage,
    tmp_path: Path,
    isolated_python: Path,  # noqa: F811
) -> None:
    service = container_for(export_world.settings).exports.service
    with pytest.raises(LinksUnavailable, match="Range"):  # the emulator's shared-key connection: no links
        service.link(export_world.export.id, OFFICER, "production to the FCA")

    result = export_world.export.result
    assert result is not None
    put(oauth_storage, result.package_blob, export_world.package.read_bytes())  # the same package, on the OAuth Azurite
    linked = dataclasses.replace(
        service, links=UserDelegationLinks(oauth_storage.service, layout.EXPORTS_BLOBS, utcnow), link_minutes=10
    )
    answer = linked.link(export_world.export.id, OFFICER, "production to the FCA")
    assert answer.package_bytes == result.package_bytes
    assert answer.package_manifest_sha256 == result.package_manifest_sha256

    target = tmp_path / "via-link.zip"
    with target.open("wb") as out:
        for start in range(0, answer.package_bytes, 100_000):
            end = min(answer.package_bytes, start + 100_000) - 1
            part = get(oauth_storage, answer.url, Range=f"bytes={start}-{end}")
            assert part.status_code == 206, part.text
            out.write(part.content)
    verified = run_verifier(isolated_python, target, "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["verified"] is True

    log = container_for(export_world.settings).ledger
    grants = [
        e
        for e in log.entries_for_subject(export_subject(export_world.export.id), limit=100)
        if e.kind == "export.downloaded" and e.details.get("via") == "link"
    ]
    assert len(grants) == 1 and grants[0].details["link_expires_at"] == answer.expires_at
    assert grants[0].details["reason"] == "production to the FCA"


def test_the_command_line_downloads_through_links_renewing_an_expired_one_and_resuming_a_partial_file(
    export_world: ExportWorld,
    oauth_storage: OAuthStorage,
    tmp_path: Path,
    isolated_python: Path,  # noqa: F811
) -> None:
    """`verbatim export download --via link`'s transfer: Range parts straight from storage through a link, a
    partial file resumed, and an expired link (storage answers 403) replaced by a new one from `renew`."""
    result = export_world.export.result
    assert result is not None
    package = export_world.package.read_bytes()
    put(oauth_storage, result.package_blob, package)
    past = datetime.now(UTC) - timedelta(hours=2)
    expired = UserDelegationLinks(oauth_storage.service, layout.EXPORTS_BLOBS, lambda: past).link(
        result.package_blob, expires_at=past + timedelta(minutes=15), filename="x.zip"
    )
    fresh: list[str] = []

    def renew() -> str:
        url = UserDelegationLinks(oauth_storage.service, layout.EXPORTS_BLOBS, utcnow).link(
            result.package_blob, expires_at=utcnow() + timedelta(minutes=15), filename="x.zip"
        )
        fresh.append(url)
        return url

    target = tmp_path / "cli-link.zip"
    start = 12_345  # a download interrupted earlier: its first bytes are on disk
    target.write_bytes(package[:start])
    received: list[int] = []
    with httpx.Client(verify=oauth_storage.tls(), timeout=30) as storage, target.open("ab") as out:
        fetch_through_link(storage, expired, out, start, len(package), received.append, renew)
    assert len(fresh) == 1  # the expired link was refused once and renewed once
    assert sum(received) == len(package) - start
    assert target.read_bytes() == package
    verified = run_verifier(isolated_python, target, "--quiet")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_the_command_line_stops_when_storage_refuses_a_renewed_link(
    export_world: ExportWorld, oauth_storage: OAuthStorage, tmp_path: Path
) -> None:
    result = export_world.export.result
    assert result is not None
    put(oauth_storage, result.package_blob, export_world.package.read_bytes())
    good = UserDelegationLinks(oauth_storage.service, layout.EXPORTS_BLOBS, utcnow).link(
        result.package_blob, expires_at=utcnow() + timedelta(minutes=15), filename="x.zip"
    )
    forged = good.replace("sp=r", "sp=rw")  # refused (403) however often it is renewed
    with (
        httpx.Client(verify=oauth_storage.tls(), timeout=30) as storage,
        (tmp_path / "x.zip").open("ab") as out,
        pytest.raises(CommandError, match="storage answered 403"),
    ):
        fetch_through_link(storage, forged, out, 0, result.package_bytes, lambda _: None, lambda: forged)


def test_each_object_of_a_multi_part_package_gets_its_own_link(
    export_world: ExportWorld, oauth_storage: OAuthStorage
) -> None:
    """A multi-part export (a part per recording, forced): a link per part or index, naming it in the download and
    in its ledger grant; no link to "the package" (there is no single ZIP: 409 naming the parts), none to another
    name (404)."""
    from tests.exports.conftest import REASON
    from verbatim.contracts.exports import ExportRequest
    from verbatim.platform.errors import Conflict, NotFound

    service = dataclasses.replace(container_for(export_world.settings).exports.service, part_items=1)
    ids = [r.recording_id for r in export_world.recordings[:2]]
    record = service.create(ExportRequest(recording_ids=ids, title="linked parts"), OFFICER, REASON)
    result = service.run_inline(record.id)
    assert [p.name for p in result.parts] == ["part-0001.zip", "part-0002.zip"]
    done = service.store.get(record.id)
    assert done is not None
    for stored in service.objects(done):  # the same objects, on the OAuth Azurite
        put(oauth_storage, stored.blob, service.work_store.read(stored.blob))
    linked = dataclasses.replace(
        service, links=UserDelegationLinks(oauth_storage.service, layout.EXPORTS_BLOBS, utcnow)
    )

    answer = linked.link(record.id, OFFICER, "production, part 2", "part-0002.zip")
    assert answer.package_bytes == result.parts[1].bytes
    assert answer.package_manifest_sha256 == result.parts[1].manifest_sha256
    whole = get(oauth_storage, answer.url)
    assert whole.status_code == 200 and whole.content == service.work_store.read(result.parts[1].blob)
    assert whole.headers["content-disposition"] == 'attachment; filename="part-0002.zip"'
    index = linked.link(record.id, OFFICER, "production, the index", "package-index.json")
    assert get(oauth_storage, index.url).json()["exportId"] == record.id

    with pytest.raises(Conflict, match="multi-part package of 2 parts"):
        linked.link(record.id, OFFICER, "production")
    with pytest.raises(NotFound):
        linked.link(record.id, OFFICER, "production", "../other/package.zip")
    grants = [
        e.details.get("object")
        for e in container_for(export_world.settings).ledger.entries_for_subject(export_subject(record.id), limit=50)
        if e.kind == "export.downloaded" and e.details.get("via") == "link"
    ]
    assert grants == ["part-0002.zip", "package-index.json"]
