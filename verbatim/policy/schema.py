"""The JSON Schema of the desired-state file, generated from `verbatim.policy.model`, and the committed copy
that editors use (`policies/desired-state.schema.json`; a test keeps it identical to the generated one).

Constraints that JSON Schema can say are in the schema, so an editor flags them while typing; the same
rules are checked again with clearer messages by `verbatim.policy.validation`.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from verbatim.policy.model import DesiredState

SCHEMA_ID = "https://github.com/verbatim-recording/verbatim/policies/desired-state.schema.json"
COMMITTED_SCHEMA = Path(__file__).resolve().parents[2] / "policies" / "desired-state.schema.json"

# Extra keywords: `x-verbatim-error` replaces the validator's message for a subschema that encodes a rule.
BOTH_RESILIENCE_ERROR = (
    "concurrentInvitationCount and pairedWith are both set; use one: concurrentInvitationCount "
    "(1 or 2 invitations to the same recorder) or pairedWith (one other recorder application instance)"
)


@lru_cache(maxsize=1)
def desired_state_schema() -> dict[str, Any]:
    """The Draft 2020-12 schema of a desired-state document."""
    schema = DesiredState.model_json_schema(mode="validation", by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    recorder = schema["$defs"]["RecorderApplication"]
    recorder["not"] = {
        "required": ["concurrentInvitationCount", "pairedWith"],
        "properties": {"concurrentInvitationCount": {"type": "integer"}, "pairedWith": {"type": "string"}},
        "x-verbatim-error": BOTH_RESILIENCE_ERROR,
    }
    return schema


def schema_text() -> str:
    return json.dumps(desired_state_schema(), indent=2, sort_keys=True) + "\n"


def write_committed_schema(path: Path = COMMITTED_SCHEMA) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(schema_text())
    return path


if __name__ == "__main__":
    print(write_committed_schema())
