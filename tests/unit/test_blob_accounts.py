"""Each blob container is used on the storage account the layout names for it, the same account infra/ creates it on
(tests/infra/test_layout_matches_infra.py): raw call records live with the evidence, not on the runtime account."""

from __future__ import annotations

import pytest

from verbatim.platform import layout
from verbatim.platform.settings import app_setting_names, reload_settings
from verbatim.wiring import Container

_SUFFIX = ";EndpointSuffix=core.windows.net"
RUNTIME = "DefaultEndpointsProtocol=https;AccountName=struntime;AccountKey=cnVudGltZQ==" + _SUFFIX
RECORDINGS = "DefaultEndpointsProtocol=https;AccountName=strecordings;AccountKey=cmVjb3JkaW5ncw==" + _SUFFIX


class _Database:
    """Stands in for the Cosmos database: this test builds the call-record store, it never queries it."""

    def get_container_client(self, name: str) -> object:
        return object()


@pytest.fixture
def container(monkeypatch: pytest.MonkeyPatch) -> Container:
    for name in app_setting_names():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AzureWebJobsStorage", RUNTIME)
    monkeypatch.setenv("RECORDINGS_STORAGE", RECORDINGS)
    return Container(reload_settings(), database=_Database())


def test_raw_call_records_are_kept_on_the_recordings_account(container: Container) -> None:
    archive = container.callrecords.store._archive
    assert archive._container.account_name == "strecordings"
    assert archive._container.container_name == layout.RAW_CALLRECORDS_BLOBS


def test_every_layout_container_is_reached_on_its_own_account(container: Container) -> None:
    accounts = {"recordings": "strecordings", "runtime": "struntime"}
    for name in layout.BLOB_CONTAINERS:
        assert container.blob_container(name).account_name == accounts[layout.blob_account(name)], name
    assert container.scratch.account_name == "struntime"


def test_a_container_the_layout_does_not_name_is_refused(container: Container) -> None:
    with pytest.raises(KeyError, match="no blob container named 'elsewhere'"):
        container.blob_container("elsewhere")
