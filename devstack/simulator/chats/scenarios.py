"""Scripted chat scenarios: a list of posts, edits and deletions at offsets on the simulated clock, so a
test or the demo can say "Tom posts at 2 s, edits at 5 s, Tara deletes hers at 8 s" once and let time run.
Steps refer to earlier posts by ``ref``; each step's outcome (message id, or the error) is kept."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from ..clock import Clock
from ..odata import GraphError, format_datetime
from .store import ChatStore


class HostedContentSpec(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")
    content_type: str = Field(default="image/png", max_length=100)
    content_bytes: str = Field(min_length=4, max_length=6 * 1024 * 1024)


class ScenarioStep(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")
    at: float = Field(ge=0, le=30 * 86400, description="seconds after the scenario starts")
    action: Literal["post", "edit", "delete"]
    chat: str = Field(min_length=1, max_length=300)
    ref: str | None = Field(default=None, max_length=100, description="name for a posted message")
    message: str | None = Field(default=None, max_length=100, description="ref of the message to edit/delete")
    sender: str | None = Field(default=None, alias="from", max_length=256)
    content: str | None = Field(default=None, max_length=28_000)
    content_type: Literal["text", "html"] = "text"
    hosted_contents: list[HostedContentSpec] = Field(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def _complete(self) -> ScenarioStep:
        if self.action == "post" and (self.sender is None or self.content is None):
            raise ValueError("a post needs 'from' and 'content'")
        if self.action == "edit" and (self.message is None or self.content is None):
            raise ValueError("an edit needs 'message' (a ref) and 'content'")
        if self.action == "delete" and self.message is None:
            raise ValueError("a delete needs 'message' (a ref)")
        return self


class ScenarioSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: list[ScenarioStep] = Field(min_length=1, max_length=10_000)

    @model_validator(mode="after")
    def _refs(self) -> ScenarioSpec:
        known: set[str] = set()
        for step in sorted(self.steps, key=lambda s: s.at):
            if step.action == "post" and step.ref:
                if step.ref in known:
                    raise ValueError(f"ref '{step.ref}' is used twice")
                known.add(step.ref)
            elif step.action != "post" and step.message not in known:
                raise ValueError(f"step at {step.at:g} s refers to '{step.message}' before it is posted")
        return self


@dataclass
class Scenario:
    id: str
    started: datetime
    steps: list[ScenarioStep]
    message_ids: dict[str, tuple[str, str]] = field(default_factory=dict)  # ref -> (chat id, message id)
    outcomes: list[dict[str, Any]] = field(default_factory=list)

    def dump(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "startedAt": format_datetime(self.started),
            "steps": len(self.steps),
            "done": len(self.outcomes),
            "messages": {ref: {"chatId": c, "messageId": m} for ref, (c, m) in self.message_ids.items()},
            "outcomes": self.outcomes,
        }


class ScenarioRunner:
    def __init__(self, clock: Clock, store: ChatStore) -> None:
        self.clock = clock
        self.store = store
        self.items: dict[str, Scenario] = {}

    def start(self, spec: ScenarioSpec) -> Scenario:
        for step in spec.steps:
            self.store.chat(step.chat)  # unknown chats fail the whole request, before anything runs
        scenario = Scenario(str(uuid.uuid4()), self.clock.now(), sorted(spec.steps, key=lambda s: s.at))
        self.items[scenario.id] = scenario
        for index, step in enumerate(scenario.steps):
            when = scenario.started + timedelta(seconds=step.at)
            self.clock.call_at(when, partial(self._run, scenario, index), label=f"chat scenario {scenario.id}")
        return scenario

    def _run(self, scenario: Scenario, index: int) -> None:
        step = scenario.steps[index]
        outcome: dict[str, Any] = {"at": step.at, "action": step.action, "ref": step.ref or step.message}
        try:
            if step.action == "post":
                assert step.sender is not None and step.content is not None
                message = self.store.post(
                    step.chat,
                    step.sender,
                    step.content,
                    content_type=step.content_type,
                    hosted=[(h.content_type, h.content_bytes) for h in step.hosted_contents],
                )
                if step.ref:
                    scenario.message_ids[step.ref] = (message.chat_id, message.id)
                outcome["messageId"] = message.id
            else:
                target = scenario.message_ids.get(step.message or "")
                if target is None:
                    raise GraphError(400, "BadRequest", f"'{step.message}' was never posted")
                if step.action == "edit":
                    assert step.content is not None
                    self.store.edit(target[0], target[1], step.content, content_type=step.content_type)
                else:
                    self.store.delete(target[0], target[1])
                outcome["messageId"] = target[1]
            outcome["outcome"] = "done"
        except GraphError as error:
            outcome["outcome"] = "failed"
            outcome["error"] = error.message
        scenario.outcomes.append(outcome)
