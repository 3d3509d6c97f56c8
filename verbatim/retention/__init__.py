"""Retention: retention classes chosen at seal time and only ever lengthened, legal holds with four-eyes
release, the retention sweep that deletes what is due and leaves a deletion certificate in the ledger,
data-subject requests (GDPR search and erasure) and the retention reports.

Seal-time hooks for the lifecycle: `retention_policy(...)` (a `RetentionPolicy`: which class, until when) and
`SealHoldMatcher` (a `HoldMatcher`: which active holds cover a new recording). The composition root
(`verbatim.wiring`) builds them.
"""
