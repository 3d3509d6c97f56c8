// The runtime storage account: the Functions host, the durable task hub (Azure Storage backend),
// the queues between the recorder and the Function App, the Flex deployment package and the
// recorder package. Traces to ARCHITECTURE.md "Stores" (Blob/Queue/Table, runtime account) and
// "Running it" (the recorder package installed by the scale set's custom-script extension).
// Keyless: shared keys are off, so every client (host, bindings, SDKs, azd) uses Entra ID.

param location string
param tags object
param name string
param deploymentContainerName string

@allowed(['Standard_LRS', 'Standard_ZRS', 'Standard_GRS', 'Standard_GZRS'])
param skuName string = 'Standard_LRS'

@allowed(['Enabled', 'SelectedNetworks'])
param publicNetworkAccess string = 'Enabled'
param allowedIpRanges array = []
param allowedSubnetIds array = []

// Blob containers of verbatim.platform.layout.BLOB_CONTAINERS that live on this account: the recorder package,
// and scratch space for access-copy chunks between transcoding activities.
var blobContainers = ['recorder-packages', 'lifecycle-scratch']
// verbatim.platform.layout.QUEUES: the recorder's events, Graph's call-record notifications and lifecycle
// events, reconciliation requests, chat notifications, chat lifecycle events and chat back-fills, access copies to make, with the poison queues the Functions host moves failed messages to (created here so they exist up front).
var queues = [
  'recorder-events'
  'recorder-events-poison'
  'callrecord-notifications'
  'callrecord-notifications-poison'
  'reconciliation-requests'
  'reconciliation-requests-poison'
  'graph-lifecycle'
  'graph-lifecycle-poison'
  'chat-messages'
  'chat-messages-poison'
  'chat-lifecycle'
  'chat-lifecycle-poison'
  'chat-backfill'
  'chat-backfill-poison'
  'access-copies'
  'access-copies-poison'
]

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
    deleteRetentionPolicy: { enabled: true, days: 7 }
    containerDeleteRetentionPolicy: { enabled: true, days: 7 }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: { publicAccess: 'None' }
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for containerName in blobContainers: {
    parent: blobService
    name: containerName
    properties: { publicAccess: 'None' }
  }
]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource queueResources 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queueName in queues: {
    parent: queueService
    name: queueName
  }
]

// Scratch chunks are intermediate files, never evidence: swept after a week.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'scratch-cleanup'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: { blobTypes: ['blockBlob'], prefixMatch: ['${blobContainers[1]}/'] }
            actions: { baseBlob: { delete: { daysAfterModificationGreaterThan: 7 } } }
          }
        }
      ]
    }
  }
  dependsOn: [containers]
}

// The durable task hub creates its own tables and control queues; the service must exist.
resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: account
  name: 'default'
}

// The recorder's heartbeat per recording (verbatim.evidence.progress.PROGRESS_TABLE), created here so
// the recorder's role can be scoped to this one table.
var progressTableName = 'recorderprogress'

resource progressTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: progressTableName
}

output name string = account.name
output id string = account.id
output blobEndpoint string = account.properties.primaryEndpoints.blob
output queueEndpoint string = account.properties.primaryEndpoints.queue
output tableEndpoint string = account.properties.primaryEndpoints.table
output recorderPackagesContainer string = blobContainers[0]
output deploymentContainerName string = deploymentContainer.name
output progressTableName string = progressTable.name
