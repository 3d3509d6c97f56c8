"""Reconciliation: prove that every call a policy user took part in was recorded.

For each call-record version, the policy users in the call (effective policy at call time) are matched
to recordings and a verdict per (call, policy user) is kept in Cosmos `verdicts`: recorded, partial
(coverage and gaps) or missing, with the likely reason. A daily completeness report is signed and
appended to the ledger.
"""
