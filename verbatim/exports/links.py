"""Short-lived download links for export packages: a user-delegation SAS (Azure Storage), read-only, for the one
package blob, signed with a user delegation key that the Function App's Microsoft Entra identity obtains from
the storage service (Get User Delegation Key) — no account key anywhere. Microsoft recommends user-delegation SAS
over account-key SAS; the key may live at most 7 days and a SAS signed with it cannot outlive it; the identity
needs `Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action` (Storage Blob Delegator)
and the SAS grants at most what the identity itself may do on the blob (its read role on the container).
Sources: learn.microsoft.com/rest/api/storageservices/create-user-delegation-sas,
/get-user-delegation-key, /azure/storage/blobs/storage-blob-user-delegation-sas-create-python (the `generate_blob_sas`
with `user_delegation_key` pattern of Azure-Samples/AzureStorageSnippets blob_devguide_create_sas.py).

A client downloads through the link with ordinary HTTP Range requests (Get Blob), straight from storage; the API
still serves the package in Range parts for deployments without an identity-based storage connection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from azure.storage.blob import BlobSasPermissions, BlobServiceClient, UserDelegationKey, generate_blob_sas

KEY_LIFETIME = timedelta(hours=6)  # well under the 7-day maximum; one key signs many links
CLOCK_SKEW = timedelta(minutes=5)  # the SAS starts a little in the past: the storage clock may run behind ours


class PackageLinks(Protocol):
    def link(self, blob_name: str, *, expires_at: datetime, filename: str) -> str:
        """A URL that reads `blob_name` (and nothing else) until `expires_at`."""
        ...


class UserDelegationLinks:
    """User-delegation SAS URLs for blobs of one container, with a cached user delegation key."""

    def __init__(
        self,
        service: BlobServiceClient,
        container: str,
        clock: Callable[[], datetime],
        *,
        key_lifetime: timedelta = KEY_LIFETIME,
    ) -> None:
        self._service = service
        self._container = container
        self._clock = clock
        self._key_lifetime = key_lifetime
        self._key: UserDelegationKey | None = None
        self._key_expires: datetime | None = None
        self._lock = threading.Lock()

    def _delegation_key(self, needed_until: datetime) -> UserDelegationKey:
        with self._lock:
            if self._key is None or self._key_expires is None or self._key_expires < needed_until:
                start = self._clock() - CLOCK_SKEW
                expiry = max(start + self._key_lifetime, needed_until)
                self._key = self._service.get_user_delegation_key(key_start_time=start, key_expiry_time=expiry)
                self._key_expires = expiry
            return self._key

    def link(self, blob_name: str, *, expires_at: datetime, filename: str) -> str:
        key = self._delegation_key(expires_at)
        blob = self._service.get_blob_client(self._container, blob_name)
        token = generate_blob_sas(
            account_name=blob.account_name or "",
            container_name=self._container,
            blob_name=blob_name,
            user_delegation_key=key,
            permission=BlobSasPermissions(read=True),
            start=self._clock() - CLOCK_SKEW,
            expiry=expires_at,
            protocol="https",
            content_disposition=f'attachment; filename="{filename}"',
            content_type="application/zip",
        )
        return f"{blob.url}?{token}"
