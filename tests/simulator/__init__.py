"""Tests of the Teams/Graph simulator (devstack/simulator)."""
