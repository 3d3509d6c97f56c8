"""Builders and fakes that both tests/ and benchmarks/ use, so that benchmarks never import tests/:
real speech and the comparisons that prove a recording matches it (`audio`), captures staged as the
recorder leaves them (`captures`), call records, recordings and policy snapshots as stored (`records`),
and a test-side Teams platform that drives one recorder (`teams_platform`)."""
