"""The recorder's settings model: names the scale set must provide, defaults, and the command line."""

from __future__ import annotations

from recorder_vm import launch_argv
from recorder_vm.settings import RecorderSettings, app_setting_names


def test_setting_names_cover_graph_storage_and_the_instance_endpoint() -> None:
    names = app_setting_names()
    assert {
        "GRAPH_CLIENT_ID",
        "GRAPH_CLIENT_SECRET",
        "GRAPH_TENANT_ID",
        "RECORDINGS_STORAGE__blobServiceUri",
        "AzureWebJobsStorage__queueServiceUri",
        "RECORDER_EVENTS_QUEUE",
        "RECORDER_MAX_CONCURRENT_CALLS",
        "RECORDER_PLATFORM_OPENID_CONFIG_URL",
        "RECORDER_SERVICE_FQDN",
        "RECORDER_CALLBACK_PUBLIC_PORT",
        "RECORDER_MEDIA_PUBLIC_PORT",
        "RECORDER_CERTIFICATE_THUMBPRINT",
        "RECORDER_SCHEDULED_EVENTS_URL",
    } <= names


def test_defaults_are_the_platforms_and_the_callback_is_per_instance() -> None:
    settings = RecorderSettings.model_validate({"instance_id": "rec-3"})
    assert settings.platform_openid_config_url == "https://api.aps.skype.com/v1/.well-known/OpenIdConfiguration"
    assert settings.platform_issuers == ["https://api.botframework.com", "https://graph.microsoft.com"]
    assert settings.callback_uri == "http://127.0.0.1:9441/api/calling/notification/rec-3"
    azure = RecorderSettings.model_validate(
        {"instance_id": "rec-3", "service_fqdn": "rec.contoso.example", "callback_public_port": 10103}
    )
    assert azure.callback_uri == "https://rec.contoso.example:10103/api/calling/notification/rec-3"


def test_launch_argv_starts_the_module_with_its_ports() -> None:
    argv = launch_argv(host="127.0.0.1", port=9441, media_port=9443, state_dir="/tmp/x", python="py")
    assert argv[:3] == ["py", "-m", "recorder_vm"]
    assert argv[argv.index("--port") + 1] == "9441" and argv[argv.index("--media-port") + 1] == "9443"
    assert argv[argv.index("--state-dir") + 1] == "/tmp/x"
