// Diagnostic settings: who read, wrote or deleted what, in Log Analytics. Traces to ARCHITECTURE.md
// "Evidence and trust" (every read audited; the evidence store's own access log next to the app's
// audit trail) and "Running it" (In Azure). Categories are those Azure Monitor documents per resource
// type (https://learn.microsoft.com/azure/azure-monitor/reference/logs-index):
//   - Key Vault: AuditEvent (every secret, key and certificate operation, with the caller);
//   - Storage blob, queue and table services: StorageRead, StorageWrite, StorageDelete (the account
//     itself has no log categories; logs are per service);
//   - Cosmos DB: DataPlaneRequests and ControlPlaneRequests, in resource-specific tables.
// The queue logs also feed the poison-message alert (alerts.bicep).

param workspaceId string
param keyVaultName string
param certificateVaultName string
param runtimeStorageName string
param recordingsStorageName string
param cosmosAccountName string

var settingName = 'to-log-analytics'
var storageLogs = [
  { category: 'StorageRead', enabled: true }
  { category: 'StorageWrite', enabled: true }
  { category: 'StorageDelete', enabled: true }
]

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource certificateVault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: certificateVaultName
}

resource vaultDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: settingName
  scope: vault
  properties: { workspaceId: workspaceId, logs: [{ category: 'AuditEvent', enabled: true }] }
}

resource certificateVaultDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: settingName
  scope: certificateVault
  properties: { workspaceId: workspaceId, logs: [{ category: 'AuditEvent', enabled: true }] }
}

resource runtimeStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: runtimeStorageName

  resource blobService 'blobServices' existing = {
    name: 'default'
  }

  resource queueService 'queueServices' existing = {
    name: 'default'
  }

  resource tableService 'tableServices' existing = {
    name: 'default'
  }
}

resource recordingsStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: recordingsStorageName

  resource blobService 'blobServices' existing = {
    name: 'default'
  }
}

resource runtimeBlobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: settingName
  scope: runtimeStorage::blobService
  properties: { workspaceId: workspaceId, logs: storageLogs }
}

resource runtimeQueueDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: settingName
  scope: runtimeStorage::queueService
  properties: { workspaceId: workspaceId, logs: storageLogs }
}

resource runtimeTableDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: settingName
  scope: runtimeStorage::tableService
  properties: { workspaceId: workspaceId, logs: storageLogs }
}

resource recordingsBlobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: settingName
  scope: recordingsStorage::blobService
  properties: { workspaceId: workspaceId, logs: storageLogs }
}

resource cosmos 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' existing = {
  name: cosmosAccountName
}

resource cosmosDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: settingName
  scope: cosmos
  properties: {
    workspaceId: workspaceId
    logAnalyticsDestinationType: 'Dedicated'
    logs: [
      { category: 'DataPlaneRequests', enabled: true }
      { category: 'ControlPlaneRequests', enabled: true }
    ]
  }
}
