"""The blob index tag that tells evidence from access copies in `recordings`, for the lifecycle tiering rules.

Both live under one per-recording prefix (`.../audio.flac`, `.../access.opus`) and lifecycle filters match name
prefixes and index tags only (infra/modules/recordings-storage.bicep). Only the Function App sets the tag: it needs
`blobs/tags/write`, which Storage Blob Data Owner has and the recorder's Storage Blob Data Contributor lacks
(https://learn.microsoft.com/azure/storage/blobs/storage-manage-find-blobs#setting-blob-index-tags). With versioning
on, a tag belongs to one version, so the version that is sealed is the one tagged. Version-level WORM forbids
Delete Blob, Set Blob Metadata and Put Page on a protected version, not Set Blob Tags
(https://learn.microsoft.com/azure/storage/blobs/immutable-version-level-worm-policies#scenarios).
"""

from __future__ import annotations

from typing import Final, Literal

Kind = Literal["evidence", "access-copy"]

KIND_TAG: Final = "verbatim-kind"
EVIDENCE: Final[Kind] = "evidence"
ACCESS_COPY: Final[Kind] = "access-copy"


def kind_tags(kind: Kind) -> dict[str, str]:
    """The index tags of a blob of this kind."""
    return {KIND_TAG: kind}
