"""Every message or payload that crosses a process boundary, as versioned pydantic models.

Each area keeps its contracts in a submodule here and registers them with `@contract`; the JSON Schema
of every registered contract is generated into `verbatim/contracts/schemas/` (committed, and checked by
the tests). `python -m verbatim.contracts` regenerates them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict

SCHEMA_DIR = Path(__file__).parent / "schemas"

_REGISTRY: dict[str, type[BaseModel]] = {}

M = TypeVar("M", bound=type[BaseModel])


class Contract(BaseModel):
    """Base of cross-process contracts: strict about what we produce, tolerant of unknown fields."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


def contract(name: str, version: int) -> Callable[[M], M]:
    """Register a model as the contract `name`, schema version `version`."""

    def register(model: M) -> M:
        key = f"{name}.v{version}"
        if key in _REGISTRY and _REGISTRY[key] is not model:
            raise ValueError(f"contract {key} is registered twice")
        _REGISTRY[key] = model
        return model

    return register


def registered_contracts() -> dict[str, type[BaseModel]]:
    _import_all()
    return dict(sorted(_REGISTRY.items()))


def schema_of(key: str) -> str:
    model = registered_contracts()[key]
    return json.dumps(model.model_json_schema(mode="serialization"), indent=2, sort_keys=True) + "\n"


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for key in registered_contracts():
        path = directory / f"{key}.json"
        path.write_text(schema_of(key))
        written.append(path)
    return written


def _import_all() -> None:
    # Each area's contracts module registers itself on import; list them here.
    from verbatim.contracts import (
        api,  # noqa: F401
        callrecords,  # noqa: F401
        chat,  # noqa: F401
        evidence,  # noqa: F401
        exports,  # noqa: F401
        health,  # noqa: F401
        ledger,  # noqa: F401
        lifecycle,  # noqa: F401
        policy,  # noqa: F401
        reconciliation,  # noqa: F401
        recorder,  # noqa: F401
        retention,  # noqa: F401
    )
