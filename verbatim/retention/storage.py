"""A recording's objects — in the recordings container everything under its folder, every version; in the captures
and scratch containers what the lifecycle keeps of its capture and its work — and the WORM requests and deletes
retention sends for them.

The immutability and legal-hold requests go through `verbatim.evidence.worm.Worm` (real Azure Blob requests;
Azurite answers 501 and that is tolerated only on the emulator). Deleting follows version-level WORM: the
current version is deleted first (it becomes a previous version), then every version by its id. In Azure
each of those deletes is refused (409/403) while the version's immutability period runs or a legal hold is
set; Azurite accepts them all, which is why the callers check retention and holds themselves first.

The captures container (the recorder's staging area, on the recordings account, no WORM) keeps a salvaged
capture generation's blocks under `<recording id>/g<n>/`; the scratch container keeps the lifecycle's work
(`finalised/<id>.json`, `salvaged/<id>/`, `access-chunks/<id>/`). A deletion lists and deletes those too, every
version and every blob that has only staged blocks, breaking a recorder's lease first (Azure refuses to delete a
leased blob). WORM requests and holds stay on `recordings`: only the sealed evidence is immutable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob import BlobClient, BlobLeaseClient, ContainerClient

from verbatim.contracts.lifecycle import RecordingRecord
from verbatim.contracts.retention import RecordingContainer
from verbatim.evidence import names
from verbatim.evidence.worm import Enforcement, Worm, WormNotApplied


class DeletionRefusedByStore(RuntimeError):
    """The store refused a delete: in Azure, WORM (retention period or legal hold) still protects the version."""


@dataclass(frozen=True)
class StoredObject:
    name: str
    version_id: str | None
    is_current: bool
    container: RecordingContainer = "recordings"


def recording_folders(record: RecordingRecord) -> list[str]:
    """Where the seal put everything of the recording, derived from its id (`verbatim.evidence.names`): its own
    `<recording id>/` folder, and for a recording sealed before the captures container the date folder its seal
    names, when that name has exactly the old shape for this id. Nothing else a record says becomes a folder."""
    sealed = [record.seal.manifest_blob, record.seal.evidence_blob] if record.seal else []
    return names.recording_folders(record.id, sealed)


def recording_folder(record: RecordingRecord) -> str:
    """The recording's own folder (`<recording id>/`)."""
    return recording_folders(record)[0]


def scratch_prefixes(recording_id: str) -> list[str]:
    """Where the lifecycle keeps its work on a recording in scratch (`verbatim.lifecycle.activities`,
    `verbatim.evidence.access_copy`): each ends in a separator or is the whole name's stem, so no other recording's
    objects match (ids are letters, digits and hyphens)."""
    base = names.check_recording_id(recording_id)
    return [f"finalised/{base}.", f"salvaged/{base}/", f"access-chunks/{base}/"]


def is_scratch_of(recording_id: str, name: str) -> bool:
    """`finalised/<id>.json` and `finalised/<id>.part-<n>.json`, but never `finalised/<id>.<something else>`."""
    if name.startswith(f"finalised/{recording_id}."):
        rest = name[len(f"finalised/{recording_id}.") :]
        return rest == "json" or (rest.startswith("part-") and rest.endswith(".json"))
    return True


class RecordingBlobs:
    def __init__(
        self,
        container: ContainerClient,
        *,
        emulator: bool,
        captures: ContainerClient | None = None,
        scratch: ContainerClient | None = None,
    ) -> None:
        self.container = container
        self._worm = Worm(container, emulator=emulator)
        self._containers: dict[RecordingContainer, ContainerClient] = {"recordings": container}
        if captures is not None:
            self._containers["captures"] = captures
        if scratch is not None:
            self._containers["scratch"] = scratch

    def objects(self, record: RecordingRecord) -> list[StoredObject]:
        """Every version of every object under the recording's folders in `recordings` (what WORM protects)."""
        return [o for folder in recording_folders(record) for o in self._listed("recordings", folder)]

    def everything(self, record: RecordingRecord, *, scratch: bool = True) -> list[StoredObject]:
        """`objects`, and the recording's objects in captures (every generation) and, with `scratch`, in scratch:
        what a deletion deletes."""
        found = self.objects(record)
        if "captures" in self._containers:
            found += self._listed("captures", names.capture_folder(record.id))
        if scratch and "scratch" in self._containers:
            for prefix in scratch_prefixes(record.id):
                found += [o for o in self._listed("scratch", prefix) if is_scratch_of(record.id, o.name)]
        return found

    def _listed(self, container: RecordingContainer, prefix: str) -> list[StoredObject]:
        # Blobs with only staged blocks (a recorder that never committed) are listed too: they hold audio.
        include = ["versions", "uncommittedblobs"] if container == "captures" else ["versions"]
        found = []
        for blob in self._containers[container].list_blobs(name_starts_with=prefix, include=include):
            # Without versioning (Azurite) there is one item per blob and no version id: it is the current one.
            current = blob.version_id is None or bool(blob.is_current_version)
            found.append(StoredObject(blob.name, blob.version_id, current, container))
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
            blob = self._containers[item.container].get_blob_client(item.name)
            try:
                if item.is_current:
                    if item.container == "captures":
                        _break_lease(blob)  # the recorder's lease on a track it wrote (a salvage broke fenced ones)
                    blob.delete_blob(delete_snapshots="include")
                if item.version_id is not None:
                    blob.delete_blob(version_id=item.version_id)
                deleted += 1
            except ResourceNotFoundError:
                continue  # already gone (an earlier attempt of the same deletion)
            except HttpResponseError as error:
                if error.status_code in (403, 409):
                    # Azure: "This operation is not permitted as the blob is immutable due to a policy" / legal hold.
                    # In captures and scratch (no WORM) a refusal is the role's: a version needs deleteBlobVersion.
                    raise DeletionRefusedByStore(
                        f"the store refused to delete {item.container}/{item.name}: {error.status_code} {error.reason}"
                    ) from error
                raise
        return deleted


def _break_lease(blob: BlobClient) -> None:
    try:
        BlobLeaseClient(blob).break_lease(lease_break_period=0)
    except ResourceNotFoundError:
        return
    except HttpResponseError as error:
        if error.status_code != 409:  # 409 LeaseNotPresentWithLeaseOperation: nothing held it
            raise


__all__ = [
    "DeletionRefusedByStore",
    "RecordingBlobs",
    "StoredObject",
    "WormNotApplied",
    "is_scratch_of",
    "recording_folder",
    "recording_folders",
    "scratch_prefixes",
]
