"""Capture per modality (docs/policies.md#what-a-policy-captures): a recording policy says what its calls must
capture — audio, video (the cameras), videoBasedScreenSharing (the screen share), Graph's modality names. It came
with version 2 of the file; every mistake is named with its line, and the HTTP API answers it with a 400
problem+json. What a policy captures reaches the effective policy (reconciliation) and the recorder's setting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from functions import policy as triggers
from recorder_vm.settings import RecorderSettings
from tests.callrecords.oidc import OpenIdProvider
from tests.policy.conftest import VALID
from tests.policy.test_http import _auth, admin, handler, provider, request  # noqa: F401
from tests.policy.test_validation import errors_of, only_error
from verbatim.cli import main
from verbatim.policy.compile import capture_modalities, recorder_capture_setting
from verbatim.policy.readers import GraphEffectivePolicies, catalog_from_desired
from verbatim.policy.validation import load_desired_state

STRICT_LINE = "    retentionClass: mifid-5y\n"
V2 = VALID.replace("version: 1\n", "version: 2\n", 1)


def with_capture(text: str, capture: str) -> str:
    assert STRICT_LINE in text
    return text.replace(STRICT_LINE, STRICT_LINE + f"    capture: {capture}\n", 1)


def test_a_version_2_policy_lists_what_its_calls_capture_and_others_capture_audio() -> None:
    loaded = load_desired_state(with_capture(V2, "[audio, video, videoBasedScreenSharing]"), "policies.yaml")

    strict, relaxed = loaded.desired.recording_policies[0], loaded.desired.recording_policies[1]
    assert strict.capture == ["audio", "video", "videoBasedScreenSharing"]
    assert relaxed.capture == ["audio"]
    assert capture_modalities(loaded.desired)["traders-strict"] == ["audio", "video", "videoBasedScreenSharing"]
    assert json.loads(recorder_capture_setting(loaded.desired)) == {
        "Advisers-Relaxed": ["audio"],
        "Not-Recorded": ["audio"],
        "Traders-Strict": ["audio", "video", "videoBasedScreenSharing"],
    }


def test_capture_in_a_version_1_file_names_the_version_it_needs() -> None:
    error = only_error(with_capture(VALID, "[audio, videoBasedScreenSharing]"))

    assert error.location == "recordingPolicies[0].capture"
    assert error.message == "capture needs 'version: 2' at the top of the file (version 1 files capture audio only)"
    assert error.position is not None and error.position.line == 14


def test_capture_without_audio_is_an_error() -> None:
    error = only_error(with_capture(V2, "[videoBasedScreenSharing]"))

    assert error.location == "recordingPolicies[0].capture"
    assert error.message.startswith("must include audio")


def test_a_modality_listed_twice_is_an_error() -> None:
    error = only_error(with_capture(V2, "[audio, video, video]"))

    assert (error.location, error.message) == (
        "recordingPolicies[0].capture[2]",
        "'video' is listed twice; list each modality once",
    )


def test_an_unknown_modality_says_which_ones_exist() -> None:
    # Graph's `screenSharing` (the older application sharing) reaches no socket of a bot: not a capture choice.
    errors = errors_of(with_capture(V2, "[audio, screenSharing]"))

    assert [(e.location, e.message) for e in errors] == [
        (
            "recordingPolicies[0].capture[1]",
            "must be one of 'audio', 'video', 'videoBasedScreenSharing', not 'screenSharing'",
        )
    ]


def test_version_3_does_not_exist() -> None:
    error = only_error(V2.replace("version: 2\n", "version: 3\n", 1))

    assert (error.location, error.message) == ("version", "must be one of 1, 2, not 3")


def test_the_http_api_answers_a_bad_capture_with_a_400_problem(provider: OpenIdProvider) -> None:  # noqa: F811
    response = handler(triggers.plan_desired_state)(
        request(
            "POST",
            "v1/policy/plan",
            with_capture(VALID, "[audio, video]").encode(),
            token=admin(provider),
            content_type="application/yaml",
        )
    )

    problem = json.loads(response.get_body())
    assert response.status_code == 400 and response.mimetype == "application/problem+json"
    assert problem["title"] == "Invalid desired state"
    errors = [(e["path"], e["line"]) for e in problem["errors"] if e["severity"] == "error"]
    assert errors == [("recordingPolicies[0].capture", 14)]


def test_the_effective_policy_carries_what_the_policy_captures() -> None:
    desired = load_desired_state(with_capture(V2, "[audio, videoBasedScreenSharing]"), "p.yaml").desired
    reader = GraphEffectivePolicies.__new__(GraphEffectivePolicies)
    reader.catalog, reader.tenant_default = catalog_from_desired(desired), "Global"

    effective = reader.from_configuration(
        {
            "id": "u1",
            "effectivePolicyAssignments": [
                {
                    "policyType": "TeamsComplianceRecordingPolicy",
                    "policyAssignment": {"displayName": "Tag:Traders-Strict", "assignmentType": "direct"},
                }
            ],
        }
    )
    unassigned = reader.from_configuration({"id": "u2"})

    assert effective.capture == ["audio", "videoBasedScreenSharing"]
    assert unassigned.capture == ["audio"]


def test_the_cli_prints_the_recorder_setting_and_the_recorder_reads_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "policies.yaml"
    path.write_text(with_capture(V2, "[audio, video]"))

    assert main(["policy", "capture-setting", str(path)]) == 0

    monkeypatch.setenv("RECORDER_CAPTURE_POLICIES", capsys.readouterr().out.strip())  # as the VM's app setting
    settings = RecorderSettings()
    assert settings.capture_for("traders-strict") == ["audio", "video"]  # Teams names compare without case
    assert settings.capture_for("Advisers-Relaxed") == ["audio"]
    assert settings.capture_for("Somebody-Else") is None


def test_the_recorder_refuses_a_capture_policy_without_audio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECORDER_CAPTURE_POLICIES", '{"P": ["video"]}')
    with pytest.raises(ValueError, match="policy 'P' must capture audio"):
        RecorderSettings()
