// Cosmos DB: the metadata stores (calls, recordings, verdicts, holds, subscriptions, ledger, audit,
// policy snapshots, PSTN rows, control documents). Traces to ARCHITECTURE.md "Stores" (Cosmos DB,
// partition keys chosen so the hot queries are single-partition) and "Evidence and trust" (ledger,
// audit). The containers and partition keys below must equal verbatim.platform.layout.COSMOS_CONTAINERS
// (tests/infra checks it). No container has a default TTL: retention is explicit, never silent.
// Local (key) auth is off; the Function App's identity gets the data-plane Data Contributor role.

param location string
param tags object
param accountName string
param databaseName string = 'verbatim'

@allowed(['serverless', 'autoscale'])
param capacityMode string = 'serverless'

@minValue(1000)
param autoscaleMaxThroughput int = 1000

@allowed(['Enabled', 'SelectedNetworks'])
param publicNetworkAccess string = 'Enabled'
param allowedIpRanges array = []
param allowedSubnetIds array = []

@description('Principals (object ids) that read and write documents.')
param dataContributorPrincipalIds array

// verbatim.platform.layout.COSMOS_CONTAINERS
var containers = [
  { name: 'calls', partitionKeyPath: '/id' }
  { name: 'recordings', partitionKeyPath: '/id' }
  { name: 'verdicts', partitionKeyPath: '/callId' }
  { name: 'recording_index', partitionKeyPath: '/observedUserId' }
  { name: 'holds', partitionKeyPath: '/id' }
  { name: 'subscriptions', partitionKeyPath: '/id' }
  { name: 'ledger', partitionKeyPath: '/chain' }
  { name: 'ledger_log', partitionKeyPath: '/pk' }
  { name: 'audit', partitionKeyPath: '/day' }
  { name: 'policy_snapshots', partitionKeyPath: '/userId' }
  { name: 'pstn_calls', partitionKeyPath: '/day' }
  { name: 'control', partitionKeyPath: '/id' }
  { name: 'exports', partitionKeyPath: '/id' }
  { name: 'chats', partitionKeyPath: '/chatId' }
  { name: 'recording_pairs', partitionKeyPath: '/id' }
]

// Cosmos DB Built-in Data Contributor, a data-plane role (sqlRoleDefinitions), not an Azure RBAC role.
var cosmosDataContributorRoleId = '00000000-0000-0000-0000-000000000002'

resource account 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' = {
  name: accountName
  location: location
  tags: tags
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    locations: [{ locationName: location, failoverPriority: 0, isZoneRedundant: false }]
    consistencyPolicy: { defaultConsistencyLevel: 'Session' }
    capabilities: capacityMode == 'serverless' ? [{ name: 'EnableServerless' }] : []
    disableLocalAuth: true
    disableKeyBasedMetadataWriteAccess: true
    // Point-in-time restore of the whole account for 30 days, per second, without a backup schedule
    // to look after: the ledger and the audit trail can be brought back to the moment before a faulty
    // write or a deletion (https://learn.microsoft.com/azure/cosmos-db/continuous-backup-restore-introduction;
    // https://learn.microsoft.com/azure/cosmos-db/provision-account-continuous-backup, "Bicep").
    // An account created with periodic backup migrates to continuous on update, one way only.
    backupPolicy: {
      type: 'Continuous'
      continuousModeProperties: { tier: 'Continuous30Days' }
    }
    minimalTlsVersion: 'Tls12'
    publicNetworkAccess: 'Enabled'
    isVirtualNetworkFilterEnabled: publicNetworkAccess == 'SelectedNetworks'
    virtualNetworkRules: [for subnetId in allowedSubnetIds: { id: subnetId }]
    ipRules: [for range in allowedIpRanges: { ipAddressOrRange: range }]
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-11-15' = {
  parent: account
  name: databaseName
  properties: {
    resource: { id: databaseName }
    options: capacityMode == 'autoscale' ? { autoscaleSettings: { maxThroughput: autoscaleMaxThroughput } } : {}
  }
}

resource containerResources 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = [
  for container in containers: {
    parent: database
    name: container.name
    properties: {
      resource: {
        id: container.name
        partitionKey: { paths: [container.partitionKeyPath], kind: 'Hash', version: 2 }
      }
    }
  }
]

resource dataContributors 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-11-15' = [
  for principalId in dataContributorPrincipalIds: {
    parent: account
    name: guid(account.id, principalId, cosmosDataContributorRoleId)
    properties: {
      principalId: principalId
      roleDefinitionId: '${account.id}/sqlRoleDefinitions/${cosmosDataContributorRoleId}'
      scope: account.id
    }
  }
]

output name string = account.name
output endpoint string = account.properties.documentEndpoint
output databaseName string = database.name
