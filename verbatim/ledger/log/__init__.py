"""Ledger v2: the evidence ledger as an RFC 9162 transparency log (docs/ledger-v2.md).

Writers append through `TransparencyLog.append` (the `LedgerWriter` port); processes sequence batches of
entries against the mutable sequencing state in Cosmos DB, the tree is written once to blob storage as C2SP
tiles, and signed C2SP checkpoints are made on a timer and on demand.
"""
