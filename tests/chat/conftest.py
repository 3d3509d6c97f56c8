"""Fixtures of the chat tests: the Teams/Graph simulator (a real process) shared with the call-record tests, and
the retention tests' world (data-subject requests reach chat); a module's own `world` fixture takes precedence."""

from tests.callrecords.conftest import sim_env, simulator
from tests.retention.conftest import provider, retention_env, world

__all__ = ["provider", "retention_env", "sim_env", "simulator", "world"]
