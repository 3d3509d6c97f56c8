"""What the host reads before indexing: host.json, app settings, %setting% expressions, keys, host id."""

from __future__ import annotations

import json
import logging
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from devstack.funchost.config import (
    HostConfig,
    HostConfigError,
    QueueOptions,
    load_app_settings,
    parse_timespan,
    resolve_setting_expressions,
)
from devstack.funchost.state import load_or_create_host_id, load_or_create_keys
from devstack.funchost.storage import ConnectionNotConfigured, storage_connection


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00:00:02", timedelta(seconds=2)),
        ("00:01:00", timedelta(minutes=1)),
        ("1.02:03:04", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("00:00:00.500", timedelta(milliseconds=500)),
        (2000, timedelta(seconds=2)),
    ],
)
def test_timespans_read_as_dotnet_writes_them(text: str | int, expected: timedelta) -> None:
    assert parse_timespan(text) == expected


@pytest.mark.parametrize("text", ["2s", "00:60:00", "24:00:00", "", "1:2:3:4"])
def test_malformed_timespans_are_rejected(text: str) -> None:
    with pytest.raises(HostConfigError):
        parse_timespan(text)


def test_host_json_queue_and_http_settings_are_read_case_insensitively() -> None:
    config = HostConfig.from_json(
        {
            "Extensions": {
                "HTTP": {"RoutePrefix": "/v1/"},
                "queues": {"BatchSize": 8, "maxPollingInterval": "00:00:02", "visibilityTimeout": "00:00:10",
                           "maxDequeueCount": 3, "messageEncoding": "None"},
            },
            "functionTimeout": "00:05:00",
        }
    )  # fmt: skip
    assert config.route_prefix == "v1"
    assert config.function_timeout == 300
    assert config.queues == QueueOptions(
        batch_size=8,
        new_batch_threshold=4,
        max_polling_interval=2,
        visibility_timeout=10,
        max_dequeue_count=3,
        message_encoding="none",
    )


def test_host_json_log_levels_map_to_python_levels_by_category() -> None:
    config = HostConfig.from_json(
        {"logging": {"logLevel": {"default": "Information", "Function": "Warning", "Function.hot": "None"}}}
    )
    assert config.log_levels == {"Function": logging.WARNING, "Function.hot": logging.CRITICAL + 10}
    with pytest.raises(HostConfigError):
        HostConfig.from_json({"logging": {"logLevel": {"Function": "Loud"}}})


def test_host_json_defaults_are_the_real_hosts() -> None:
    config = HostConfig.from_json({"version": "2.0"})
    assert config.route_prefix == "api"
    assert config.queues == QueueOptions()
    assert config.queues.max_polling_interval == 60
    assert config.queues.max_dequeue_count == 5


@pytest.mark.parametrize("queues", [{"batchSize": 33}, {"messageEncoding": "utf8"}])
def test_out_of_range_queue_settings_are_rejected(queues: dict[str, object]) -> None:
    with pytest.raises(HostConfigError):
        HostConfig.from_json({"extensions": {"queues": queues}})


def test_environment_wins_over_local_settings(tmp_path: Path) -> None:
    (tmp_path / "local.settings.json").write_text(json.dumps({"Values": {"A": "local", "B": "local"}}))
    settings = load_app_settings(tmp_path, {"B": "env"})
    assert settings["A"] == "local"
    assert settings["B"] == "env"


def test_setting_expressions_resolve_or_name_the_missing_setting() -> None:
    assert resolve_setting_expressions("%Q%-items", {"Q": "work"}) == "work-items"
    with pytest.raises(HostConfigError, match="MISSING"):
        resolve_setting_expressions("%MISSING%", {})


def test_keys_are_generated_once_privately_and_env_overrides_them(tmp_path: Path) -> None:
    first = load_or_create_keys(tmp_path, {})
    again = load_or_create_keys(tmp_path, {})
    assert first == again
    assert first.master != first.default_function_key
    assert stat.S_IMODE((tmp_path / "keys.json").stat().st_mode) == 0o600
    overridden = load_or_create_keys(
        tmp_path, {"VERBATIM_FUNCHOST_MASTER_KEY": "m", "VERBATIM_FUNCHOST_FUNCTION_KEY": "f"}
    )
    assert (overridden.master, overridden.default_function_key) == ("m", "f")
    assert overridden.is_master("m") and not overridden.is_master("f")
    assert overridden.opens_function("f") and overridden.opens_function("m")
    assert not overridden.opens_function(None) and not overridden.opens_function("x")


def test_host_id_is_stable_per_state_dir(tmp_path: Path) -> None:
    root = tmp_path / "My App"
    first = load_or_create_host_id(tmp_path / "state", root, {})
    assert first == load_or_create_host_id(tmp_path / "state", root, {})
    assert first.startswith("my-app-") and len(first) <= 32
    assert first != load_or_create_host_id(tmp_path / "other", root, {})
    assert load_or_create_host_id(tmp_path / "state", root, {"AzureFunctionsWebHost__hostid": "fixed"}) == "fixed"


def test_storage_connections_follow_the_functions_convention() -> None:
    by_string = storage_connection("Jobs", {"AzureWebJobsJobs": "UseDevelopmentStorage=true"})
    assert by_string.connection_string is not None
    by_identity = storage_connection(None, {"AzureWebJobsStorage__accountName": "acct"})
    assert by_identity.name == "AzureWebJobsStorage" and by_identity.uses_identity
    assert by_identity.service_uri("queue") == "https://acct.queue.core.windows.net"
    with pytest.raises(ConnectionNotConfigured):
        storage_connection("Nothing", {})


def test_durable_activity_concurrency_defaults_to_azures_consumption_default() -> None:
    """Azure runs at most 10 activities at a time per instance on the Consumption plans unless host.json says
    otherwise (MicrosoftDocs azure-docs, includes/functions-host-json-durabletask.md: maxConcurrentActivityFunctions
    "Consumption plan: 10"); the local host did 8. host.json's own value still wins."""
    from devstack.funchost.durable.taskhub import DurableOptions

    environ = {"HUB": "verbatim"}
    default = DurableOptions.from_host_json({"extensions": {"durableTask": {"hubName": "%HUB%"}}}, environ)
    assert default.max_concurrent_activities == 10
    configured = DurableOptions.from_host_json(
        {"extensions": {"durableTask": {"hubName": "%HUB%", "maxConcurrentActivityFunctions": 3}}}, environ
    )
    assert configured.max_concurrent_activities == 3
