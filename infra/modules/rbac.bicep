// Role assignments, least privilege: each identity gets the smallest built-in role at the
// smallest scope its job needs. Traces to ARCHITECTURE.md "Choices of library" (azure-identity,
// keyless data plane), "Stores" and "Evidence and trust" (only the Function App seals: it alone may
// set immutability policies and legal holds on evidence). Role definition ids are named in `roles`;
// tests/infra checks each id against the same names. The recorder's self-service role (its own
// per-instance NAT ports, its own scale-in protection) and the Function App's evidence role (sealing without
// Owner's super-user blob operations) are custom roles with exactly those actions.

param functionPrincipalId string
param recorderPrincipalId string

@description('The person or pipeline running azd; empty: no deployer roles.')
param deployerPrincipalId string = ''

@description('Chat capture is on: postprovision creates the chat encryption certificate in the main vault.')
param chatCaptureEnabled bool = false

@allowed(['User', 'ServicePrincipal'])
param deployerPrincipalType string = 'User'

param runtimeStorageName string
param recordingsStorageName string
param keyVaultName string

@description('The vault that holds only the recorder\'s TLS certificate (certificate-vault.bicep).')
param certificateVaultName string
param appInsightsName string
param loadBalancerName string

var roles = {
  // Storage Blob Data Owner: the Functions host's own storage account needs it (Functions docs); never on
  // the evidence, where the Function App holds the narrower custom role `evidenceKeeper` below.
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  // Storage Blob Data Contributor: read, write, delete blobs; Set Blob Legal Hold (containers/write).
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  // Storage Blob Data Reader: read blobs.
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  // Storage Queue Data Contributor: the queue triggers and the durable control queues.
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  // Storage Queue Data Message Sender: add messages, nothing else.
  storageQueueDataMessageSender: 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a'
  // Storage Table Data Contributor: the durable task hub's history and instance tables.
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  // Reader: read a resource's ARM properties (here: whether the recordings' WORM policy is locked).
  reader: 'acdd72a7-3385-48ef-bd42-f606fba81ae7'
  // Monitoring Metrics Publisher: Entra-authenticated telemetry ingestion.
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  // Storage Blob Delegator: Get User Delegation Key (generateUserDelegationKey/action), to sign user-delegation
  // SAS links of export packages; the SAS grants no more than the identity's own data role on the blob.
  storageBlobDelegator: 'db58b8e5-c6ad-4a2a-8342-4190687cbf4a'
  // Key Vault Secrets User: read secret values.
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  // Key Vault Crypto User: sign and verify with a key (it never leaves the vault).
  keyVaultCryptoUser: '12338af0-0e69-4776-bea7-57ae8d297424'
  // Key Vault Certificates Officer: import and renew certificates (the deployer, for the recorder's).
  keyVaultCertificatesOfficer: 'a4417e6f-fecd-4de8-b567-7b0420556985'
}

resource runtimeStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: runtimeStorageName

  resource blobService 'blobServices' existing = {
    name: 'default'

    resource recorderPackages 'containers' existing = {
      name: 'recorder-packages'
    }
  }

  resource queueService 'queueServices' existing = {
    name: 'default'

    resource recorderEvents 'queues' existing = {
      name: 'recorder-events'
    }
  }

  resource tableService 'tableServices' existing = {
    name: 'default'

    resource recorderProgress 'tables' existing = {
      name: 'recorderprogress'
    }
  }
}

resource recordingsStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: recordingsStorageName

  resource blobService 'blobServices' existing = {
    name: 'default'

    resource recordings 'containers' existing = {
      name: 'recordings'
    }

    resource captures 'containers' existing = {
      name: 'captures'
    }

    resource reports 'containers' existing = {
      name: 'reports'
    }

    resource callRecords 'containers' existing = {
      name: 'callrecords'
    }

    resource ledger 'containers' existing = {
      name: 'ledger'
    }

    resource ledgerAnchors 'containers' existing = {
      name: 'ledger-anchors'
    }

    resource exports 'containers' existing = {
      name: 'exports'
    }
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName

  resource graphClientSecret 'secrets' existing = {
    name: 'graph-client-secret'
  }

  resource graphClientState 'secrets' existing = {
    name: 'graph-client-state'
  }

  resource ledgerSigning 'keys' existing = {
    name: 'ledger-signing'
  }
}

resource certificateVault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: certificateVaultName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource loadBalancer 'Microsoft.Network/loadBalancers@2024-05-01' existing = {
  name: loadBalancerName
}

// ----- Function App -------------------------------------------------------------------------

resource fnRuntimeBlob 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(runtimeStorage.id, functionPrincipalId, roles.storageBlobDataOwner)
  scope: runtimeStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource fnRuntimeQueue 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(runtimeStorage.id, functionPrincipalId, roles.storageQueueDataContributor)
  scope: runtimeStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource fnRuntimeTable 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(runtimeStorage.id, functionPrincipalId, roles.storageTableDataContributor)
  scope: runtimeStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Sealing sets per-version immutability policies and legal holds on evidence, only on the `recordings`
// container, with a custom role: Storage Blob Data Owner minus what sealing never needs (issue 13, finding 3).
resource fnRecordings 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(recordingsStorage::blobService::recordings.id, functionPrincipalId, evidenceKeeper.name)
  scope: recordingsStorage::blobService::recordings
  properties: {
    roleDefinitionId: evidenceKeeperRoleId
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The daily check of the WORM lock reads the container's immutability policy (management plane).
resource fnRecordingsPolicyRead 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(recordingsStorage::blobService::recordings.id, functionPrincipalId, roles.reader)
  scope: recordingsStorage::blobService::recordings
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.reader)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The lifecycle reads the recorder's captures, commits what a silent recorder staged (salvage), breaks the
// recorder's leases to fence a capture it salvages, and deletes captures once sealed; retention deletes a deleted
// recording's captures, every version (versioning is on for the whole account): read, write and delete blobs and
// their versions in `captures` only, with the custom role `captureKeeper` below (Storage Blob Data Contributor
// has no blobs/deleteBlobVersion/action, the permission of Delete Blob with a versionid: learn.microsoft.com/azure/
// storage/blobs/versioning-overview, "Deleting a version ... deleteBlobVersion/action ... Storage Blob Data Owner").
resource fnCaptures 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(recordingsStorage::blobService::captures.id, functionPrincipalId, captureKeeperRoleId)
  scope: recordingsStorage::blobService::captures
  properties: {
    roleDefinitionId: captureKeeperRoleId
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource fnReports 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(recordingsStorage::blobService::reports.id, functionPrincipalId, roles.storageBlobDataContributor)
  scope: recordingsStorage::blobService::reports
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource fnCallRecords 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(recordingsStorage::blobService::callRecords.id, functionPrincipalId, roles.storageBlobDataContributor)
  scope: recordingsStorage::blobService::callRecords
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The ledger v2 log writes its tiles, entry bundles and checkpoints once (never overwriting) into `ledger`, and
// each signed checkpoint again into `ledger-anchors`. Neither container's contents can be changed or deleted by
// a data role: version-level WORM on `ledger`, a time-based policy on `ledger-anchors` (locked by the operator,
// docs/deploy.md), and changing a policy is a management-plane action no data role has. Read and write blobs.
resource fnLedger 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(recordingsStorage::blobService::ledger.id, functionPrincipalId, roles.storageBlobDataContributor)
  scope: recordingsStorage::blobService::ledger
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource fnLedgerAnchors 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(recordingsStorage::blobService::ledgerAnchors.id, functionPrincipalId, roles.storageBlobDataContributor)
  scope: recordingsStorage::blobService::ledgerAnchors
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Export packages (docs/exports.md): the app writes copies of sealed evidence and deletes them when they expire.
resource fnExports 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(recordingsStorage::blobService::exports.id, functionPrincipalId, roles.storageBlobDataContributor)
  scope: recordingsStorage::blobService::exports
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Download links of export packages (POST /api/v1/exports/{id}/link): a user delegation key, requested at the
// account (the role must be assigned at the storage account or above); reading stays limited to `exports` above.
resource fnExportLinks 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(recordingsStorage.id, functionPrincipalId, roles.storageBlobDelegator)
  scope: recordingsStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDelegator)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource fnGraphSecret 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault::graphClientSecret.id, functionPrincipalId, roles.keyVaultSecretsUser)
  scope: vault::graphClientSecret
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource fnClientState 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault::graphClientState.id, functionPrincipalId, roles.keyVaultSecretsUser)
  scope: vault::graphClientState
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource fnLedgerKey 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault::ledgerSigning.id, functionPrincipalId, roles.keyVaultCryptoUser)
  scope: vault::ledgerSigning
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultCryptoUser)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource fnTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, functionPrincipalId, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// ----- Recorder scale set -------------------------------------------------------------------

// The recorder stages and commits captures in `captures`, its only writable container: it has no role on
// `recordings`, so nothing sealed can be rewritten by the recorder's identity (issue 13, finding 3; issue 14).
resource recCaptures 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(recordingsStorage::blobService::captures.id, recorderPrincipalId, roles.storageBlobDataContributor)
  scope: recordingsStorage::blobService::captures
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: recorderPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource recEvents 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(runtimeStorage::queueService::recorderEvents.id, recorderPrincipalId, roles.storageQueueDataMessageSender)
  scope: runtimeStorage::queueService::recorderEvents
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataMessageSender)
    principalId: recorderPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The capture progress record (heartbeat) the lifecycle reads to spot a silent recorder.
resource recProgress 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(runtimeStorage::tableService::recorderProgress.id, recorderPrincipalId, roles.storageTableDataContributor)
  scope: runtimeStorage::tableService::recorderProgress
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: recorderPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource recPackages 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(runtimeStorage::blobService::recorderPackages.id, recorderPrincipalId, roles.storageBlobDataReader)
  scope: runtimeStorage::blobService::recorderPackages
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
    principalId: recorderPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The bot answers calls with the Graph app credential.
resource recGraphSecret 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault::graphClientSecret.id, recorderPrincipalId, roles.keyVaultSecretsUser)
  scope: vault::graphClientSecret
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: recorderPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The TLS certificate is imported after provisioning, so the role cannot name it: it sits on the
// certificate's own vault, which holds nothing else. The Key Vault VM extension reads the certificate
// through its backing secret, so Key Vault Secrets User is all it needs
// (https://learn.microsoft.com/azure/virtual-machines/extensions/key-vault-windows, "Key Vault Secrets
// User" for Azure RBAC vaults); never a role on the main vault, whose secrets include the webhook key.
resource recCertificate 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(certificateVault.id, recorderPrincipalId, roles.keyVaultSecretsUser)
  scope: certificateVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: recorderPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Custom role: what a recorder instance may do to itself. Assigned on the load balancer here
// (which public ports are mine) and on the scale set in recorder.bicep (protect me from scale-in
// while I hold calls).
var resourceGroupId = resourceGroup().id

// Custom role names are unique per Entra tenant ("The role name must be unique",
// https://learn.microsoft.com/azure/role-based-access-control/custom-roles#custom-role-properties), and
// resource group names repeat across subscriptions (rg-prod in two of them): the name carries a hash of
// the resource group's full id, which is unique.
resource recorderSelfService 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'verbatim-recorder-self-service')
  properties: {
    roleName: 'Verbatim recorder self-service ${resourceGroup().name} ${uniqueString(resourceGroup().id)}'
    description: 'Lets a Verbatim recorder instance read its own NAT port mapping and set its own scale-in protection.'
    type: 'CustomRole'
    assignableScopes: [resourceGroupId]
    permissions: [
      {
        actions: [
          'Microsoft.Network/loadBalancers/read'
          'Microsoft.Network/loadBalancers/backendAddressPools/queryInboundNatRulePortMapping/action'
          'Microsoft.Compute/virtualMachineScaleSets/read'
          'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read'
          'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/write'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
  }
}

// The Function App's role on the `recordings` container. Storage Blob Data Owner has every blob data action
// (blobs/*), including the super-user ones: blobs/runAsSuperUser/action (privileged operations such as
// undelete, and bypassing ACLs), blobs/permanentDelete/action, move, manageOwnership and modifyPermissions,
// and container delete. Sealing needs none of them. It does need immutableStorage/runAsSuperUser/action:
// Microsoft lists it as the permission of Set Blob Immutability Policy and Delete Immutability Policy
// (https://learn.microsoft.com/rest/api/storageservices/authorize-with-azure-active-directory#permissions-for-calling-data-operations),
// so a per-version policy cannot be set without it, and whoever may set one may delete an unlocked one. That
// is why the container's default policy must be locked (docs/deploy.md, "Locking the evidence"): a version
// whose own policy is deleted still keeps the locked default's DEFAULT_RETENTION_DAYS. Set Blob Legal Hold
// is containers/write (same table).
resource evidenceKeeper 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'verbatim-evidence-keeper')
  properties: {
    roleName: 'Verbatim evidence keeper ${resourceGroup().name} ${uniqueString(resourceGroup().id)}'
    description: 'Lets the Verbatim Function App seal recordings: read, write, tag and (after retention) delete blobs and versions, set immutability policies and legal holds. No super-user blob operations.'
    type: 'CustomRole'
    assignableScopes: [resourceGroupId]
    permissions: [
      {
        actions: [
          'Microsoft.Storage/storageAccounts/blobServices/containers/read'
          'Microsoft.Storage/storageAccounts/blobServices/containers/write'
        ]
        notActions: []
        dataActions: [
          'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'
          'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write'
          'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action'
          'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete'
          'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/deleteBlobVersion/action'
          'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags/read'
          'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags/write'
          'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/immutableStorage/runAsSuperUser/action'
        ]
        notDataActions: []
      }
    ]
  }
}

var evidenceKeeperRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', evidenceKeeper.name)

// The Function App's role on the `captures` container (no WORM there): what the lifecycle and retention do with the
// recorder's captures (see fnCaptures). No container write or delete, no super-user blob action.
resource captureKeeper 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'verbatim-capture-keeper')
  properties: {
    roleName: 'Verbatim capture keeper ${resourceGroup().name} ${uniqueString(resourceGroup().id)}'
    description: 'Lets the Verbatim Function App read, commit, fence and delete the recorder\'s captures, every version of them.'
    type: 'CustomRole'
    assignableScopes: [resourceGroupId]
    permissions: [
      {
        actions: [
          'Microsoft.Storage/storageAccounts/blobServices/containers/read'
        ]
        notActions: []
        dataActions: [
          'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'
          'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write'
          'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action'
          'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete'
          'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/deleteBlobVersion/action'
        ]
        notDataActions: []
      }
    ]
  }
}

var captureKeeperRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', captureKeeper.name)

// Role definitions live at the subscription level; assignments name them by that id.
var recorderSelfServiceRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', recorderSelfService.name)

resource recNatPorts 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(loadBalancer.id, recorderPrincipalId, recorderSelfServiceRoleId)
  scope: loadBalancer
  properties: {
    roleDefinitionId: recorderSelfServiceRoleId
    principalId: recorderPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// ----- Deployer (hooks) ---------------------------------------------------------------------

// predeploy uploads the recorder package.
resource deployerPackages 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(runtimeStorage::blobService::recorderPackages.id, deployerPrincipalId, roles.storageBlobDataContributor)
  scope: runtimeStorage::blobService::recorderPackages
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
  }
}

// The recorder's TLS certificate is imported by the deployer after provisioning (docs/deploy.md).
resource deployerCertificates 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(certificateVault.id, deployerPrincipalId, roles.keyVaultCertificatesOfficer)
  scope: certificateVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultCertificatesOfficer)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
  }
}

// With chat capture, postprovision creates the self-signed certificate Graph encrypts chat messages for in
// the main vault (Key Vault generates the key; it never leaves the vault but as the secret the Function App
// reads) and gives the Function App Secrets User on that one secret (docs/chat.md, "Deploying"). Certificates
// Officer reads no secret and no key.
resource deployerChatCertificate 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (chatCaptureEnabled && !empty(deployerPrincipalId)) {
  name: guid(vault.id, deployerPrincipalId, roles.keyVaultCertificatesOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultCertificatesOfficer)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
  }
}

output recorderSelfServiceRoleId string = recorderSelfServiceRoleId
// Assigned on the scale set in recorder.bicep (its scope is created there): the recorder's calls metric.
output monitoringMetricsPublisherRoleId string = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
