"""When the media library cannot create a call's media session, the invitation is declined at once, the
failure is published, nothing is held: the recorder with the windows adapter over a fake `clr` that throws
the .NET exceptions Microsoft documents for `MediaPlatform.CreateMediaConfiguration`."""

from __future__ import annotations

import asyncio
import types
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from devstack.testkit.teams_platform import FakePlatform
from recorder_vm.media.windows import WindowsMediaPlatform
from tests.conftest import Azurite
from tests.recorder import fake_clr
from tests.recorder.inprocess import (
    WINDOWS_INSTANCE,
    events_of,
    on_platform,
    recorder_settings,
    running_recorder,
    url_of,
)
from verbatim.contracts.recorder import RecordingFailed, RecordingStarted


@pytest.fixture
def clr(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    return fake_clr.install(monkeypatch)


@pytest.mark.parametrize(
    "error",
    [
        # Microsoft.Skype.Bots.Media reference, MediaPlatform.CreateMediaConfiguration, "Exceptions".
        fake_clr.SkypeMediaException("The media platform is currently overloaded and cannot handle new calls."),
        fake_clr.InvalidOperationException("MediaPlatform is not initialized."),
    ],
    ids=["SkypeMediaException", "InvalidOperationException"],
)
def test_a_media_session_the_library_refuses_declines_the_call_publishes_the_failure_and_holds_nothing(
    clr: types.SimpleNamespace,
    azurite_service: Azurite,
    platform: FakePlatform,
    tmp_path: Path,
    error: Exception,
) -> None:
    settings = recorder_settings(azurite_service, platform, tmp_path, **WINDOWS_INSTANCE)
    call_id = f"refused-{type(error).__name__}"

    async def scenario() -> None:
        async with running_recorder(settings, media=WindowsMediaPlatform(settings)) as runtime:
            clr.configuration_error = error
            record = await on_platform(platform, platform.invite(url_of(settings), call_id))
            await on_platform(platform, asyncio.wait_for(record.answer_event.wait(), 5.0))
            assert record.answer is None
            assert record.rejected == {"reason": "busy"}
            assert runtime.recorder.active_calls == 0 and call_id not in runtime.recorder.sessions
            (socket,) = clr.sockets
            assert socket.disposed and not socket.AudioMediaReceived.handlers
            assert runtime.recorder.publisher.flush(10.0)

    asyncio.run(scenario())
    events = [event for event in events_of(settings) if event.call_id == call_id]
    assert not any(isinstance(event, RecordingStarted) for event in events)
    (failed,) = [event for event in events if isinstance(event, RecordingFailed)]
    assert failed.stage == "answer" and not failed.committed and failed.blob_name is None
    assert type(error).__name__ in failed.reason and str(error.args[0]) in failed.reason
    assert "   at " not in failed.reason  # the message, not the .NET stack trace
    assert failed.observed_user is not None and failed.observed_user.upn == "ada@contoso.example"
    container = BlobServiceClient.from_connection_string(azurite_service.connection_string).get_container_client(
        settings.captures_container
    )
    assert not container.exists() or not list(container.list_blobs(include=["uncommittedblobs"]))
