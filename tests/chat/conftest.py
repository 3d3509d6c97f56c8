"""Fixtures of the chat tests: the Teams/Graph simulator (a real process) shared with the call-record tests."""

from tests.callrecords.conftest import sim_env, simulator

__all__ = ["sim_env", "simulator"]
