"""Whole-stack chaos (issue 23): seeded traffic through the Teams/Graph simulator (`traffic`), faults injected by
PID and through the simulator's `/sim/faults` while it flows (`faults`), and the invariants checked once the stack
has settled (`invariants`); `run` ties them together and `python -m devstack.chaos` (`make chaos`) runs it."""
