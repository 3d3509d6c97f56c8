// The recordings storage account: lossless evidence (FLAC), Opus access copies, manifests, the
// signed completeness reports and raw call-record payloads. Traces to ARCHITECTURE.md "Stores" (Blob `recordings`: version-level
// WORM, legal hold per blob, separate account from the Functions runtime) and "Evidence and trust"
// (nothing deleted before its retention date or under a hold; deletion leaves a certificate).
//
// What Bicep can and cannot do here: it enables version-level immutability on the `recordings`
// container and creates its default time-based policy UNLOCKED. Locking is an irreversible POST
// action, never run by the template: the postprovision hook prints the command instead.
// Lifecycle rules tier data but never delete a current blob: retention deletions are the app's
// explicit sweeps, which write deletion certificates (no silent TTL).

param location string
param tags object
param name string

@description('Default (minimum) WORM retention of every blob version in `recordings`, in days.')
param defaultRetentionDays int

// ARM only creates or updates an unlocked policy; once an operator has locked it (the printed
// postprovision step), declaring it again fails every provision. The preprovision hook reads its state.
@description('Whether the container\'s default policy is locked: then it is left out of the template.')
param defaultPolicyLocked bool = false

@description('Days every version of the ledger v2 log and every anchored checkpoint is kept immutable.')
param ledgerRetentionDays int = 3653

@description('Whether the ledger container\'s policy is locked (then left out of the template).')
param ledgerPolicyLocked bool = false

@description('Whether the anchor container\'s policy is locked (then left out of the template).')
param anchorPolicyLocked bool = false

// Previous versions in `captures`: versioning is on for the whole account (WORM needs it), so a capture the
// lifecycle deletes once its evidence is sealed (verbatim/lifecycle/activities.py `clean_up`) is not gone: its
// current version only becomes a previous version, a second, unsealed copy of the audio outside the WORM
// container. Nothing reads a previous version there (finalise, salvage and the seal read the current blob and
// its block lists; verification reads `recordings` only), so the days are a margin, not a dependency: a
// week, as `scratch-cleanup` gives the lifecycle's scratch work (an attempt unfinished after a week has lost
// that work too and starts again from the current versions). The delete is soft: the account's
// deleteRetentionPolicy keeps each one 30 more days.
@minValue(1)
@description('Previous versions of capture blobs (what the lifecycle deleted after the seal) are deleted this many days after they were written.')
param captureVersionsDeleteAfterDays int = 7

@description('Lossless evidence moves to the cold tier after this many days since creation.')
param evidenceColdAfterDays int

@description('Lossless evidence moves to archive after this many days; 0 keeps it online.')
param evidenceArchiveAfterDays int

@allowed(['Standard_LRS', 'Standard_ZRS', 'Standard_GRS', 'Standard_GZRS', 'Standard_RAGRS', 'Standard_RAGZRS'])
@description('Evidence deserves geo-redundancy; pick ZRS/GZRS where the region offers zones.')
param skuName string = 'Standard_GRS'

@allowed(['Enabled', 'SelectedNetworks'])
param publicNetworkAccess string = 'Enabled'
param allowedIpRanges array = []
param allowedSubnetIds array = []

// Blob containers of verbatim.platform.layout.BLOB_CONTAINERS that live on this account.
var recordingsContainerName = 'recordings'
var reportsContainerName = 'reports'
// The recorder's staging container: it stages and commits captures here (the only container its identity may
// write); the Function App verifies them and writes the sealed copy into `recordings`. No WORM: the lifecycle
// deletes a capture once its sealed copy exists and the recorder is done with it, and the
// `capture-versions-after-seal` rule below the previous versions that delete leaves.
var capturesContainerName = 'captures'
// Raw Graph call-record payloads too large for a Cosmos item (kept as long as the records).
var callRecordsContainerName = 'callrecords'
// The ledger v2 log (tiles, entry bundles, checkpoints; docs/ledger-v2.md) and its anchor store.
var ledgerContainerName = 'ledger'
var ledgerAnchorsContainerName = 'ledger-anchors'
// Export packages and their work areas (docs/exports.md): copies of sealed evidence, deleted when they expire.
var exportsContainerName = 'exports'
// Blob index tag that tells evidence from access copies: both live under the same per-recording prefix
// (`<yyyy>/<mm>/<dd>/<recording id>/audio.flac` and `.../access.opus`), and lifecycle filters match
// name prefixes and index tags only, never suffixes (lifecycle-management-policy-structure). The Function
// App sets it (verbatim.evidence.kinds): finalising tags each evidence track, the access-copy writer tags
// the copy. Setting tags needs .../blobs/tags/write, which Storage Blob Data Owner (the Function App's
// role on `recordings`) includes and Storage Blob Data Contributor (the recorder's) does not
// (https://learn.microsoft.com/azure/storage/blobs/storage-manage-find-blobs#setting-blob-index-tags).
var kindTag = 'verbatim-kind'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: skuName }
  properties: {
    accessTier: 'Hot'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    // Version-level WORM needs a flat namespace.
    isHnsEnabled: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: publicNetworkAccess == 'SelectedNetworks' ? 'Deny' : 'Allow'
      bypass: 'AzureServices'
      ipRules: [for range in allowedIpRanges: { value: range, action: 'Allow' }]
      virtualNetworkRules: [for subnetId in allowedSubnetIds: { id: subnetId, action: 'Allow' }]
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    // Version-level immutability requires versioning; every overwrite keeps the previous version.
    isVersioningEnabled: true
    // The change feed is an independent, ordered log of every change to the evidence.
    changeFeed: { enabled: true }
    deleteRetentionPolicy: { enabled: true, days: 30 }
    containerDeleteRetentionPolicy: { enabled: true, days: 30 }
  }
}

resource recordingsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: recordingsContainerName
  properties: {
    publicAccess: 'None'
    immutableStorageWithVersioning: { enabled: true }
  }
}

// The container's default policy: every new blob version is protected for defaultRetentionDays
// even if sealing never ran. The app sets longer per-version policies (retention classes) and legal
// holds through the data plane. Created unlocked; locking is the printed postprovision step, after which
// the policy is only extended (POST .../extend), never declared again.
resource defaultRetention 'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@2023-05-01' = if (!defaultPolicyLocked) {
  parent: recordingsContainer
  name: 'default'
  properties: {
    immutabilityPeriodSinceCreationInDays: defaultRetentionDays
    allowProtectedAppendWrites: false
  }
}

// The log's files are written once each; version-level WORM keeps every version for ledgerRetentionDays (at
// least the longest recording retention), like the evidence.
resource ledgerContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: ledgerContainerName
  properties: {
    publicAccess: 'None'
    immutableStorageWithVersioning: { enabled: true }
  }
}

resource ledgerRetention 'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@2023-05-01' = if (!ledgerPolicyLocked) {
  parent: ledgerContainer
  name: 'default'
  properties: {
    immutabilityPeriodSinceCreationInDays: ledgerRetentionDays
    allowProtectedAppendWrites: false
  }
}

// The anchor store: a container-level time-based policy (new blobs can be added; none can be changed or
// deleted until it expires). Locked, it holds even against the Function App's identity: a ledger rewritten
// with the signing key is caught against the checkpoints anchored here. Locking is an operator step, as for
// the recordings container's default policy.
resource ledgerAnchorsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: ledgerAnchorsContainerName
  properties: { publicAccess: 'None' }
}

resource ledgerAnchorsRetention 'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@2023-05-01' = if (!anchorPolicyLocked) {
  parent: ledgerAnchorsContainer
  name: 'default'
  properties: {
    immutabilityPeriodSinceCreationInDays: ledgerRetentionDays
    allowProtectedAppendWrites: false
  }
}

resource capturesContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: capturesContainerName
  properties: { publicAccess: 'None' }
}

resource reportsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: reportsContainerName
  properties: { publicAccess: 'None' }
}

resource callRecordsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: callRecordsContainerName
  properties: { publicAccess: 'None' }
}

resource exportsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: exportsContainerName
  properties: { publicAccess: 'None' }
}

var evidenceTiering = union(
  { tierToCold: { daysAfterCreationGreaterThan: evidenceColdAfterDays } },
  evidenceArchiveAfterDays > 0 ? { tierToArchive: { daysAfterCreationGreaterThan: evidenceArchiveAfterDays } } : {}
)

resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'evidence-to-cold'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: ['blockBlob']
              prefixMatch: ['${recordingsContainerName}/']
              blobIndexMatch: [{ name: kindTag, op: '==', value: 'evidence' }]
            }
            actions: { baseBlob: evidenceTiering }
          }
        }
        {
          name: 'access-copies-cool'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: ['blockBlob']
              prefixMatch: ['${recordingsContainerName}/']
              blobIndexMatch: [{ name: kindTag, op: '==', value: 'access-copy' }]
            }
            actions: { baseBlob: { tierToCool: { daysAfterCreationGreaterThan: 0 } } }
          }
        }
        {
          // Superseded versions (a salvage re-commit, a rewritten manifest) go once the retention
          // they were written under is over; WORM refuses the delete any earlier anyway.
          name: 'superseded-versions-after-retention'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: ['blockBlob']
              prefixMatch: ['${recordingsContainerName}/']
            }
            actions: { version: { delete: { daysAfterCreationGreaterThan: defaultRetentionDays + 1 } } }
          }
        }
        {
          // The recorder's staging area: a completed capture's blobs are deleted by the lifecycle after the seal
          // and live on as previous versions (versioning is account-wide); this rule deletes them. Only the
          // `version` action: a current blob in `captures` is either a capture not sealed yet (its only copy)
          // or a salvaged generation kept on purpose (its recorder may not know it was fenced), which no rule
          // here can tell apart, so current blobs stay until the app's retention deletion takes every version.
          // Shape, from Microsoft's docs: a policy can "delete current versions of a blob, previous versions of a
          // blob, or blob snapshots" and `baseBlob` is the current version (learn.microsoft.com/azure/storage/
          // blobs/lifecycle-management-overview, .../lifecycle-management-policy-delete); `version` is the
          // "management policy action for blob version", its `delete` a DateAfterCreation whose
          // `daysAfterCreationGreaterThan` is "the age in days after creation" (learn.microsoft.com/azure/
          // templates/microsoft.storage/storageaccounts/managementpolicies). With blob soft delete on, a
          // lifecycle delete soft-deletes: kept for deleteRetentionPolicy's 30 days (lifecycle-management-policy-delete).
          name: 'capture-versions-after-seal'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: ['blockBlob']
              prefixMatch: ['${capturesContainerName}/']
            }
            actions: { version: { delete: { daysAfterCreationGreaterThan: captureVersionsDeleteAfterDays } } }
          }
        }
      ]
    }
  }
}

output name string = account.name
output id string = account.id
output blobEndpoint string = account.properties.primaryEndpoints.blob
output recordingsContainer string = recordingsContainer.name
output capturesContainer string = capturesContainer.name
output reportsContainer string = reportsContainer.name
output callRecordsContainer string = callRecordsContainer.name
output exportsContainer string = exportsContainer.name
output ledgerContainer string = ledgerContainer.name
output ledgerAnchorsContainer string = ledgerAnchorsContainer.name
