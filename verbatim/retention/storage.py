"""A recording's objects in the recordings container — everything under its folder, every version — and the WORM
requests and deletes retention sends for them.

The immutability and legal-hold requests go through `verbatim.evidence.worm.Worm` (real Azure Blob requests;
Azurite answers 501 and that is tolerated only on the emulator). Deleting follows version-level WORM: the
current version is deleted first (it becomes a previous version), then every version by its id. In Azure
each of those deletes is refused (409/403) while the version's immutability period runs or a legal hold is
set; Azurite accepts them all, which is why the callers check retention and holds themselves first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob import ContainerClient

from verbatim.contracts.lifecycle import RecordingRecord
from verbatim.evidence import names
from verbatim.evidence.worm import Enforcement, Worm, WormNotApplied


class DeletionRefusedByStore(RuntimeError):
    """The store refused a delete: in Azure, WORM (retention period or legal hold) still protects the version."""


@dataclass(frozen=True)
class StoredObject:
    name: str
    version_id: str | None
    is_current: bool


def recording_folders(record: RecordingRecord) -> list[str]:
    """Where the seal put everything of the recording, derived from its id (`verbatim.evidence.names`): its own
    `<recording id>/` folder, and for a recording sealed before the captures container the date folder its seal
    names, when that name has exactly the old shape for this id. Nothing else a record says becomes a folder."""
    sealed = [record.seal.manifest_blob, record.seal.evidence_blob] if record.seal else []
    return names.recording_folders(record.id, sealed)


def recording_folder(record: RecordingRecord) -> str:
    """The recording's own folder (`<recording id>/`)."""
    return recording_folders(record)[0]


class RecordingBlobs:
    def __init__(self, container: ContainerClient, *, emulator: bool) -> None:
        self.container = container
        self._worm = Worm(container, emulator=emulator)

    def objects(self, record: RecordingRecord) -> list[StoredObject]:
        found = []
        for folder in recording_folders(record):
            for blob in self.container.list_blobs(name_starts_with=folder, include=["versions"]):
                # Without versioning (Azurite) there is one item per blob and no version id: it is the current one.
                current = blob.version_id is None or bool(blob.is_current_version)
                found.append(StoredObject(blob.name, blob.version_id, current))
        return found

    def protect_until(self, record: RecordingRecord, until: datetime) -> tuple[Enforcement | None, int]:
        """Extend the immutability of every version to `until` (extend-only: later dates are kept)."""
        return self._each(record, lambda o: self._worm.protect_until(o.name, until, o.version_id).enforcement)

    def set_legal_hold(self, record: RecordingRecord, hold: bool) -> tuple[Enforcement | None, int]:
        return self._each(record, lambda o: self._worm.set_legal_hold(o.name, hold, o.version_id).enforcement)

    def _each(
        self, record: RecordingRecord, action: Callable[[StoredObject], Enforcement]
    ) -> tuple[Enforcement | None, int]:
        """Apply `action` to every object; the enforcement is "emulator-not-enforced" if any was (None: no objects)."""
        outcomes = [action(item) for item in self.objects(record)]
        if not outcomes:
            return None, 0
        return ("emulator-not-enforced" if "emulator-not-enforced" in outcomes else "azure"), len(outcomes)

    def delete(self, objects: Iterable[StoredObject]) -> int:
        """Delete every given object (current version first, then each version by id); gone ones are skipped.
        Raises `DeletionRefusedByStore` when the store refuses (Azure WORM)."""
        objects = list(objects)
        deleted = 0
        for item in sorted(objects, key=lambda o: not o.is_current):
            blob = self.container.get_blob_client(item.name)
            try:
                if item.is_current:
                    blob.delete_blob(delete_snapshots="include")
                if item.version_id is not None:
                    blob.delete_blob(version_id=item.version_id)
                deleted += 1
            except ResourceNotFoundError:
                continue  # already gone (an earlier attempt of the same deletion)
            except HttpResponseError as error:
                if error.status_code in (403, 409):
                    # Azure: "This operation is not permitted as the blob is immutable due to a policy" / legal hold.
                    raise DeletionRefusedByStore(
                        f"the store refused to delete {item.name}: {error.status_code} {error.reason}"
                    ) from error
                raise
        return deleted


__all__ = [
    "DeletionRefusedByStore",
    "RecordingBlobs",
    "StoredObject",
    "WormNotApplied",
    "recording_folder",
    "recording_folders",
]
