"""Shared desired-state texts and builders for the policy tests."""

from __future__ import annotations

import textwrap

import pytest

from verbatim.policy.model import DesiredState
from verbatim.policy.validation import load_desired_state

RECORDER = "verbatim-recorder@contoso.onmicrosoft.com"
RECORDER_2 = "verbatim-recorder-2@contoso.onmicrosoft.com"
TRADERS = "6f1c2a3b-0000-4000-8000-0000000000a1"
SALES = "6f1c2a3b-0000-4000-8000-0000000000a2"
ADVISERS = "6f1c2a3b-0000-4000-8000-0000000000a3"

VALID = textwrap.dedent(
    f"""\
    version: 1
    applicationInstances:
      - userPrincipalName: {RECORDER}
        displayName: Verbatim Recorder
        applicationId: 6f1c2a3b-0000-4000-8000-000000000001
      - userPrincipalName: {RECORDER_2}
        displayName: Verbatim Recorder (paired)
        applicationId: 6f1c2a3b-0000-4000-8000-000000000002
    recordingPolicies:
      - name: Traders-Strict
        enabled: true
        description: MiFID II voice recording, fail-closed
        retentionClass: mifid-5y
        recordReroutedCalls: true
        recorders:
          - instance: {RECORDER}
            pairedWith: {RECORDER_2}
      - name: Advisers-Relaxed
        enabled: true
        recorders:
          - instance: {RECORDER}
            concurrentInvitationCount: 2
            requiredBeforeCallEstablishment: false
            requiredBeforeMeetingJoin: false
            requiredDuringCall: false
            requiredDuringMeeting: false
      - name: Not-Recorded
        enabled: false
    assignments:
      users:
        - user: dana@contoso.com
          policy: Advisers-Relaxed
      groups:
        - group: {TRADERS}
          name: Traders
          policy: Traders-Strict
          rank: 1
        - group: {SALES}
          name: Sales
          policy: Advisers-Relaxed
          rank: 2
    callingPolicies:
      - name: No-Convenience-Recording
        allowCloudRecordingForCalls: false
        groups:
          - group: {TRADERS}
            name: Traders
            rank: 1
    jurisdictions:
      exclusionPolicy: Not-Recorded
      rules:
        - countries: [DE, AT]
          rule: consent-required
          action: warn
        - countries: [NO]
          rule: forbidden
          action: exclude
          note: works council agreement pending
    mustRecord:
      groups:
        - group: {TRADERS}
          name: Traders
    """
)


def desired(text: str = VALID) -> DesiredState:
    return load_desired_state(text, "test.yaml").desired


@pytest.fixture
def valid_text() -> str:
    return VALID
