"""Calls: scenario calls placed with ``POST /sim/calls``, the compliance-recording invitations they cause,
and the Graph calls API a recorder drives (answer, reject, redirect, updateRecordingStatus, keepAlive,
DELETE, participants).

Platform rules enforced here (graph-teams.md sections 1 and 4):

* every recorder of the observed user's effective policy is invited, twice with ConcurrentInvitationCount 2,
  and the paired application too; each invitation must be answered within the answer window (5 s, on the
  simulated clock) or it fails;
* an application counts as present once one of its invitations is established, and as failed when all
  were rejected, timed out or could not be delivered; ``RequiredBeforeCallEstablishment`` /
  ``RequiredBeforeMeetingJoin`` then block the user's call or meeting join;
* when every leg of a present application has gone (DELETE, keepAlive expiry 408/8537, media failure),
  ``RequiredDuringCall`` ends the user's call and ``RequiredDuringMeeting`` ejects the user;
* ``updateRecordingStatus`` on a call that is not a compliance-recording call fails with 8506.

Where each part lives:

========================  ==============================================================================
``specs``                 the ``/sim/calls`` request bodies (scenario, participants, dialog, transfer)
``model``                 runtime state: parties, recorder groups, bot legs, audio items
``conversation``          a scenario and its conversations: the Required* rules, life, call-record facts
``placement``             placing a scenario: parties, speech rendering, duration, the transfer leg
``invitations``           compliance-recording (and plain) invitations and their answer window
``legs``                  bot legs: registry, failure before an answer, termination, keepAlive
``media_links``           the media timeline, injected media faults, connecting a leg's media endpoint
``payloads``              Graph payloads sent to bots (incoming call, call state, roster, envelope)
``notifier``              delivering notifications to a bot in order, roster updates
``graph_api``             the Graph calls API a recorder drives (``/v1.0`` and ``/beta``)
``sim_api``               the simulator's ``/sim/calls`` API
``service``               ``Calls``: builds the parts once and returns their routes
========================  ==============================================================================
"""

from .service import Calls
from .specs import ScenarioSpec

__all__ = ["Calls", "ScenarioSpec"]
