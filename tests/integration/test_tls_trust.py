"""Which certificate authorities the Function App's Azure SDK clients trust, against real TLS servers of a local CA
that no public bundle holds: Azurite over HTTPS and the Cosmos emulator.

Every client our factories build (`verbatim/platform/clients.py`) reads the environment once, when it is built,
and leaves it alone per request (azure-core's `use_env_settings=False`: requests' per-request environment walk
cost more CPU than the rest of a Cosmos request, issue 22). Reading proxies once kept them; the CA bundle was
lost: azure-core's documented default lets requests honour `REQUESTS_CA_BUNDLE` (then `CURL_CA_BUNDLE`), and with
`use_env_settings=False` the clients trusted only certifi's bundle — a firm whose egress inspects TLS (its own
CA in the chain) could not reach storage or Cosmos at all. Now, for each client, in order:

1. a CA given for that service (`COSMOS_CA_CERT`: the local emulator's CA on the devstack);
2. the bundle the environment names, as requests reads it: `REQUESTS_CA_BUNDLE`, else `CURL_CA_BUNDLE`;
3. certifi's bundle (requests' and azure-core's default).

Before the fix, the two tests that trust the local CA through `REQUESTS_CA_BUNDLE` / `CURL_CA_BUNDLE` failed with
an SSL error (certificate verify failed), and the missing-bundle test built a client that only failed later.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import certifi
import pytest
from azure.core.exceptions import ServiceRequestError
from pydantic import SecretStr

from devstack.emulators import AZURITE_ACCOUNT, AZURITE_KEY, azurite_blob_oauth, ensure_tls
from devstack.processes import free_port
from tests.conftest import Cosmos
from verbatim.platform import clients
from verbatim.platform.settings import Settings, StorageConnection

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@dataclass(frozen=True)
class HttpsStorage:
    connection: StorageConnection
    ca_cert: Path


@pytest.fixture(scope="module")
def https_storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpsStorage]:
    """Azurite's blob service over HTTPS with a certificate of a local CA, reached with the account key."""
    root = tmp_path_factory.mktemp("azurite-https")
    tls = ensure_tls(root / "tls")
    port = free_port()
    with azurite_blob_oauth(port, root / "data", tls, root / "azurite.log"):
        secret = (
            f"DefaultEndpointsProtocol=https;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint=https://127.0.0.1:{port}/{AZURITE_ACCOUNT};"
        )
        yield HttpsStorage(StorageConnection(name="TLS_TEST", connection_string=SecretStr(secret)), tls.ca_cert)


@pytest.fixture
def no_ca_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment without CA-bundle variables (these machines set REQUESTS_CA_BUNDLE to the system bundle)."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def write_and_read(storage: HttpsStorage, service: object) -> bytes:
    from azure.storage.blob import BlobServiceClient

    assert isinstance(service, BlobServiceClient)
    container = service.get_container_client(f"trust{time.monotonic_ns() % 10**9}")
    # No retries: a TLS failure is final, and storage's default backoff would spend ~80 s proving it.
    container.create_container(retry_total=0)
    container.upload_blob("probe", b"trusted", retry_total=0)
    return container.download_blob("probe", retry_total=0).readall()


def test_storage_clients_trust_the_bundle_requests_ca_bundle_names(
    https_storage: HttpsStorage, no_ca_environment: pytest.MonkeyPatch
) -> None:
    no_ca_environment.setenv("REQUESTS_CA_BUNDLE", str(https_storage.ca_cert))
    service = clients.blob_service(https_storage.connection)
    no_ca_environment.delenv("REQUESTS_CA_BUNDLE")  # read once, when the client was built
    assert write_and_read(https_storage, service) == b"trusted"


def test_curl_ca_bundle_counts_when_requests_ca_bundle_is_unset_as_in_requests(
    https_storage: HttpsStorage, no_ca_environment: pytest.MonkeyPatch
) -> None:
    no_ca_environment.setenv("CURL_CA_BUNDLE", str(https_storage.ca_cert))
    assert write_and_read(https_storage, clients.blob_service(https_storage.connection)) == b"trusted"


def test_without_a_bundle_a_ca_outside_certifi_is_not_trusted(
    https_storage: HttpsStorage, no_ca_environment: pytest.MonkeyPatch
) -> None:
    service = clients.blob_service(https_storage.connection)
    with pytest.raises(ServiceRequestError, match="CERTIFICATE_VERIFY_FAILED"):
        write_and_read(https_storage, service)


def test_a_bundle_variable_naming_no_file_is_a_clear_error_when_the_client_is_built(
    https_storage: HttpsStorage, no_ca_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-bundle.pem"
    no_ca_environment.setenv("REQUESTS_CA_BUNDLE", str(missing))
    with pytest.raises(ValueError, match=f"REQUESTS_CA_BUNDLE names {missing}, which is not a file"):
        clients.blob_service(https_storage.connection)


def cosmos_settings(cosmos: Cosmos, ca_cert: str | None) -> Settings:
    return Settings.model_validate(
        {
            "COSMOS_ENDPOINT": cosmos.endpoint,
            "COSMOS_KEY": cosmos.key,
            **({"COSMOS_CA_CERT": ca_cert} if ca_cert else {}),
            "COSMOS_DATABASE": "tls-trust",
        }
    )


def test_the_cosmos_client_trusts_the_environments_bundle_when_no_cosmos_ca_is_set(
    cosmos_service: Cosmos, no_ca_environment: pytest.MonkeyPatch
) -> None:
    no_ca_environment.setenv("REQUESTS_CA_BUNDLE", str(cosmos_service.ca_cert))
    client = clients.cosmos_client(cosmos_settings(cosmos_service, None))
    assert client.create_database_if_not_exists("tls-trust").read()["id"] == "tls-trust"


def test_cosmos_ca_cert_wins_over_the_environments_bundle_as_on_the_local_stack(
    cosmos_service: Cosmos, no_ca_environment: pytest.MonkeyPatch
) -> None:
    """The devstack on these machines: REQUESTS_CA_BUNDLE names a public bundle, COSMOS_CA_CERT the local CA."""
    no_ca_environment.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    client = clients.cosmos_client(cosmos_settings(cosmos_service, str(cosmos_service.ca_cert)))
    assert client.create_database_if_not_exists("tls-trust").read()["id"] == "tls-trust"


def test_the_settings_read_once_carry_the_proxy_and_the_bundle_as_requests_would_use_them(
    no_ca_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bundle = tmp_path / "egress-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n", encoding="ascii")  # only its existence is read here
    for name in [n for n in os.environ if n.lower().endswith("_proxy")]:
        no_ca_environment.delenv(name)
    no_ca_environment.setenv("HTTPS_PROXY", "http://egress.contoso.example:3128")
    no_ca_environment.setenv("NO_PROXY", "localhost,127.0.0.1")
    no_ca_environment.setenv("CURL_CA_BUNDLE", "/nowhere/curl.pem")  # requests prefers REQUESTS_CA_BUNDLE
    no_ca_environment.setenv("REQUESTS_CA_BUNDLE", str(bundle))

    assert clients.http_settings("https://verbatimrec.blob.core.windows.net") == {
        "use_env_settings": False,
        "proxies": {"https": "http://egress.contoso.example:3128"},
        "connection_verify": str(bundle),
    }
    # NO_PROXY exempts the host from the proxy, not from the CA bundle.
    assert clients.http_settings("https://127.0.0.1:10000/devstoreaccount1") == {
        "use_env_settings": False,
        "connection_verify": str(bundle),
    }
    # Plain HTTP (Azurite on loopback) has no use for a bundle; the asyncio queue client never takes it (azure-core's
    # asyncio transport would load the file into a new SSL context on every request).
    assert clients.http_settings("http://127.0.0.1:10001/devstoreaccount1") == {"use_env_settings": False}
    assert clients.http_settings("https://verbatimrec.queue.core.windows.net", ca=False) == {
        "use_env_settings": False,
        "proxies": {"https": "http://egress.contoso.example:3128"},
    }
    assert clients.ca_bundle("/state/tls/ca.pem") == "/state/tls/ca.pem"  # a service's own CA setting wins
