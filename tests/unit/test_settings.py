"""Settings are read from app-setting names at call time, and storage connections follow the Functions
convention (connection string, or identity-based `<name>__accountName` / `__<service>ServiceUri`)."""

from __future__ import annotations

import pytest

from verbatim.platform.settings import StorageConnection, app_setting_names, get_settings, reload_settings


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in app_setting_names():
        monkeypatch.delenv(name, raising=False)
    reload_settings()


def test_settings_are_cached_until_reloaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DURABLE_TASK_HUB_NAME", "hubone")
    assert reload_settings().durable_task_hub_name == "hubone"
    monkeypatch.setenv("DURABLE_TASK_HUB_NAME", "hubtwo")

    assert get_settings().durable_task_hub_name == "hubone"
    assert reload_settings().durable_task_hub_name == "hubtwo"


def test_runtime_storage_uses_the_connection_string_when_one_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    connection = reload_settings().runtime_storage_connection

    assert not connection.uses_identity
    assert connection.connection_string is not None
    assert connection.connection_string.get_secret_value() == "UseDevelopmentStorage=true"


def test_identity_based_storage_derives_service_uris_from_the_account_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AzureWebJobsStorage__accountName", "stverbatim")
    monkeypatch.setenv("AzureWebJobsStorage__queueServiceUri", "https://queues.example.net")
    monkeypatch.setenv("AZURE_CLIENT_ID", "11111111-2222-3333-4444-555555555555")
    connection = reload_settings().runtime_storage_connection

    assert connection.uses_identity
    assert connection.service_uri("blob") == "https://stverbatim.blob.core.windows.net"
    assert connection.service_uri("table") == "https://stverbatim.table.core.windows.net"
    assert connection.service_uri("queue") == "https://queues.example.net"
    assert connection.client_id == "11111111-2222-3333-4444-555555555555"


def test_a_connection_without_string_or_account_explains_what_is_missing() -> None:
    with pytest.raises(ValueError, match="RECORDINGS_STORAGE__accountName"):
        StorageConnection(name="RECORDINGS_STORAGE").service_uri("blob")


def test_secrets_never_appear_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COSMOS_KEY", "super-secret-value")
    monkeypatch.setenv("GRAPH_CLIENT_SECRET", "another-secret")
    text = repr(reload_settings())

    assert "super-secret-value" not in text
    assert "another-secret" not in text


def test_app_setting_names_lists_the_azure_names_not_the_python_names() -> None:
    names = app_setting_names()

    assert {"AzureWebJobsStorage", "AzureWebJobsStorage__accountName", "COSMOS_ENDPOINT"} <= names
    assert "runtime_storage" not in names
