"""The compliance API's service layer (`/api/v1`): search, recording detail, media, reports, audit.

Triggers in `functions/compliance_api.py` parse requests and call these services; every read is
recorded in the ledger with who, what, when and why.
"""
