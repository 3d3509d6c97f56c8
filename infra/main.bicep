// Verbatim in one subscription: what `azd up` provisions.
// Traces to ARCHITECTURE.md "The pieces and where they live" (infra/) and "Running it" (In Azure):
// the Function App and its stores, the recorder scale set, and the vault that holds their secrets.
// Every module says at its top which part of ARCHITECTURE.md it implements.
targetScope = 'subscription'

// ---------------------------------------------------------------------------------------------
// Parameters (values come from main.parameters.json, i.e. from the azd environment)
// ---------------------------------------------------------------------------------------------

@minLength(1)
@maxLength(40)
@description('azd environment name; names the resource group and seeds the resource token.')
param environmentName string

// The regions that offer Flex Consumption, as Microsoft's own azd quickstart lists them
// (Azure-Samples/functions-quickstart-python-http-azd@7ed4638, infra/main.bicep; the early-access
// region eastus2euap left out). Re-check with `az functionapp list-flexconsumption-locations`
// (https://learn.microsoft.com/azure/azure-functions/flex-consumption-how-to#view-currently-supported-regions).
@minLength(1)
@description('Region for every resource. It must offer Flex Consumption and the recorder VM size.')
@allowed([
  'australiaeast'
  'australiasoutheast'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'centralus'
  'eastasia'
  'eastus'
  'eastus2'
  'francecentral'
  'germanywestcentral'
  'italynorth'
  'japaneast'
  'koreacentral'
  'northcentralus'
  'northeurope'
  'norwayeast'
  'southafricanorth'
  'southcentralus'
  'southeastasia'
  'southindia'
  'spaincentral'
  'swedencentral'
  'uaenorth'
  'uksouth'
  'ukwest'
  'westcentralus'
  'westeurope'
  'westus'
  'westus2'
  'westus3'
])
@metadata({ azd: { type: 'location' } })
param location string

@description('Object id of the person or pipeline running azd; gets only what the hooks need (package upload, certificate import). Empty: no deployer roles.')
param principalId string = ''

@allowed(['User', 'ServicePrincipal'])
@description('Kind of principal behind principalId.')
param principalType string = 'User'

@description('Entra tenant of the Graph app registration (the Teams tenant); empty: the subscription\'s tenant.')
param graphTenantId string = ''

@minLength(36)
@maxLength(36)
@description('Application (client) id of the Entra app registration used for Graph and the Teams calling bot.')
param graphClientId string

@secure()
@description('Client secret of that app registration; stored only in Key Vault.')
param graphClientSecret string

@description('Application (client) id of the compliance portal\'s single-page-app registration (docs/deploy.md); empty: the portal cannot sign anyone in.')
param portalClientId string = ''

@secure()
@description('clientState shared with Graph change-notification subscriptions; generated once by the preprovision hook and stored only in Key Vault.')
param graphClientState string

@secure()
@description('Function key of the Graph webhooks (part of the notification URLs); generated once by the preprovision hook.')
param graphWebhookKey string

@description('Capture Teams chats (docs/chat.md). The app registration then needs Chat.Read.All (application).')
param chatCaptureEnabled bool = false

@description('Graph endpoint (sovereign clouds differ).')
param graphBaseUrl string = 'https://graph.microsoft.com'

@description('Entra authority host for Graph tokens (sovereign clouds differ).')
param graphAuthorityHost string = 'https://login.microsoftonline.com'

@minValue(1)
@description('Recorder instances to start with, and the autoscale minimum. Two or more for availability.')
param recorderInstanceCount int = 2

// A scale set PUT sets the capacity it names (azure-quickstart-templates, quickstarts/microsoft.compute/
// vmss-scale-existing: "The capacity specified will be the new capacity of the scale set"), so naming
// recorderInstanceCount on every provision would undo autoscale and scale in instances holding calls.
@minValue(0)
@description('Current capacity of the recorder scale set, read by the preprovision hook (0: the scale set does not exist yet). Kept on every later provision.')
param recorderCurrentCapacity int = 0

@minValue(1)
@maxValue(100)
@description('Upper bound for recorder autoscale (each instance takes one notification and one media port).')
param recorderMaxInstanceCount int = 10

@description('Recorder VM size: at least 4 vCPU outside the Dv2 family (Teams media platform requirement).')
param recorderVmSize string = 'Standard_D4s_v5'

@description('Availability zones for the recorder scale set, e.g. [\'1\', \'2\', \'3\']; empty for a regional deployment.')
param recorderZones array = []

@description('Local administrator of the recorder VMs (break-glass only; no inbound RDP rule exists).')
param recorderAdminUsername string = 'verbatimadmin'

@secure()
@description('Password of that administrator; generated by the preprovision hook and kept in the azd environment.')
param recorderAdminPassword string

@minLength(3)
@description('Public DNS name of the recorder (a CNAME to the load balancer); the certificate must match it.')
param recorderFqdn string

@description('Name of the recorder TLS certificate in its own Key Vault (imported after provisioning; the VM extension picks it up).')
param recorderCertificateName string = 'recorder-tls'

@description('Source prefixes (comma-separated CIDRs) allowed to reach the recorder\'s signalling, notification and media-control ports. Default: the IPv4 ranges of Microsoft 365 endpoint set 12 (Microsoft Teams, TCP).')
param teamsSignallingPrefixes string = '52.112.0.0/14,52.122.0.0/15'

@description('Source prefixes (comma-separated CIDRs) of Teams media (UDP) to each instance. Default: the IPv4 ranges of Microsoft 365 endpoint set 11 (Microsoft Teams, UDP).')
param teamsMediaPrefixes string = '52.112.0.0/14,52.122.0.0/15'

@minLength(1)
@description('Content version of the recorder package; computed and set by the preprovision hook.')
param recorderPackageVersion string

@minValue(1)
@description('Default (minimum) retention of every recording, in days: the recordings container\'s default WORM period. Set it to the shortest retention class.')
param defaultRetentionDays int = 1827

// ARM creates or updates a container's immutability policy only while it is unlocked ("Creates or
// updates an unlocked immutability policy", Blob Containers - Create Or Update Immutability Policy;
// "The only action allowed on a Locked policy is ExtendImmutabilityPolicy action", Blob Containers -
// Lock Immutability Policy, https://learn.microsoft.com/rest/api/storagerp/blob-containers). Once locked,
// the template must leave the policy alone or every later provision fails.
@description('Whether the recordings container\'s default WORM policy is locked; read by the preprovision hook. True: the template no longer declares the policy.')
param recordingsWormLocked bool = false

@description('Whether the ledger container\'s WORM policy is locked; read by the preprovision hook. True: the template no longer declares the policy.')
param ledgerWormLocked bool = false

@description('Whether the ledger anchor container\'s policy is locked; read by the preprovision hook. True: the template no longer declares the policy.')
param ledgerAnchorsWormLocked bool = false

@minValue(1)
@description('Delete previous versions of the recorder\'s capture blobs (left by the lifecycle\'s clean-up after the seal) this many days after they were written; deleted versions stay soft-deleted 30 more days.')
param captureVersionsDeleteAfterDays int = 7

@minValue(0)
@description('Move lossless evidence to the cold tier after this many days.')
param evidenceColdAfterDays int = 30

@minValue(0)
@description('Move lossless evidence to the archive tier after this many days; 0 keeps it online (archive rehydration takes hours).')
param evidenceArchiveAfterDays int = 0

@allowed(['serverless', 'autoscale'])
@description('Cosmos DB capacity mode: serverless (default) or provisioned autoscale throughput shared by the database.')
param cosmosCapacityMode string = 'serverless'

@minValue(1000)
@description('Autoscale maximum RU/s of the database when cosmosCapacityMode is autoscale.')
param cosmosAutoscaleMaxThroughput int = 1000

@allowed(['Enabled', 'SelectedNetworks'])
@description('Public network access of storage, Cosmos DB and Key Vault: Enabled (Entra-authenticated, from anywhere) or SelectedNetworks (the Function App and recorder subnets plus allowedIpRanges).')
param publicNetworkAccess string = 'Enabled'

@description('Public IP ranges (comma-separated CIDRs) allowed through the firewalls when publicNetworkAccess is SelectedNetworks, and to the recorder\'s /health; include the machine that runs azd.')
param allowedIpRanges string = ''

// A purge-protected vault stays soft-deleted for its retention period after `azd down` and its name
// cannot be reused, except by recovering it (createMode 'recover',
// https://learn.microsoft.com/azure/key-vault/general/key-vault-recovery). The preprovision hook sets
// these when it finds this environment's vaults soft-deleted; recovering also brings back the ledger
// key, so old checkpoints still verify.
@description('Recover the soft-deleted main Key Vault of this environment instead of creating it (set by preprovision).')
param mainVaultRecover bool = false

@description('Recover the soft-deleted certificate Key Vault of this environment instead of creating it (set by preprovision).')
param certificateVaultRecover bool = false

@description('E-mail address that receives Verbatim\'s alerts (action group).')
param alertEmail string

@description('Alert while the recordings container\'s default WORM policy is unlocked (false for test environments that are never locked).')
param alertOnUnlockedWorm bool = true

@allowed(['F0', 'S1'])
@description('Azure Bot pricing tier; Microsoft Teams is a standard channel (no message charges on F0).')
param botSku string = 'F0'

@minValue(0)
@description('Always-ready instances for the HTTP group (webhooks must answer Graph within 3 s).')
param alwaysReadyHttpInstances int = 1

@minValue(0)
@description('Always-ready instances for the durable group (orchestrations start without a cold start).')
param alwaysReadyDurableInstances int = 1

@description('Task hub of the durable orchestrations (Azure Storage backend on the runtime account).')
param durableTaskHubName string = 'verbatim'

@allowed(['DEBUG', 'INFO', 'WARNING', 'ERROR'])
param logLevel string = 'INFO'

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

var abbrs = loadJsonContent('./abbreviations.json')
var teamsTenantId = empty(graphTenantId) ? subscription().tenantId : graphTenantId
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName, application: 'verbatim' }
// azd hands every parameter over as text; lists travel comma-separated.
var allowedIpRangeList = empty(allowedIpRanges) ? [] : split(allowedIpRanges, ',')

var functionAppName = '${abbrs.webSitesFunctions}verbatim-${resourceToken}'
var names = {
  functionIdentity: '${abbrs.managedIdentityUserAssignedIdentities}func-${resourceToken}'
  recorderIdentity: '${abbrs.managedIdentityUserAssignedIdentities}rec-${resourceToken}'
  logAnalytics: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
  appInsights: '${abbrs.insightsComponents}${resourceToken}'
  runtimeStorage: '${abbrs.storageStorageAccounts}rt${resourceToken}'
  recordingsStorage: '${abbrs.storageStorageAccounts}rec${resourceToken}'
  cosmos: '${abbrs.documentDBDatabaseAccounts}${resourceToken}'
  keyVault: '${abbrs.keyVaultVaults}${resourceToken}'
  // The recorder's TLS certificate alone: the recorder may read every secret of this vault, none other.
  certificateVault: '${abbrs.keyVaultVaults}rec-${resourceToken}'
  bot: 'bot-verbatim-${resourceToken}'
  actionGroup: 'ag-verbatim-${resourceToken}'
  recorderDataCollection: 'dcr-rec-${resourceToken}'
  plan: '${abbrs.webServerFarms}${resourceToken}'
  functionApp: functionAppName
  deploymentContainer: 'app-package-${take(functionAppName, 32)}-${take(uniqueString(functionAppName, resourceToken), 7)}'
  vnet: '${abbrs.networkVirtualNetworks}${resourceToken}'
  nsg: '${abbrs.networkNetworkSecurityGroups}rec-${resourceToken}'
  loadBalancer: '${abbrs.networkLoadBalancersExternal}rec-${resourceToken}'
  loadBalancerIp: '${abbrs.networkPublicIPAddresses}rec-${resourceToken}'
  scaleSet: '${abbrs.computeVirtualMachineScaleSets}rec-${resourceToken}'
  autoscale: '${abbrs.insightsAutoscaleSettings}rec-${resourceToken}'
}

// The recorder's ports. One place: the NSG, the load balancer, the health checks and the recorder
// settings all read them from here (see the README, "Deploy to Azure", for the port plan).
var recorderPorts = {
  // HTTPS incoming-call webhook (/api/calling), load-balanced: public 443 -> this port on every instance.
  signalling: 9442
  // HTTPS per-instance notifications (the answer's callbackUri): public notificationPublicStart + n -> this port.
  notification: 9441
  notificationPublicStart: 10100
  // Media platform control (TCP/TLS): public mediaPublicStart + n -> this port.
  media: 8445
  mediaPublicStart: 20000
  // Size of each per-instance public port range; at least the autoscale maximum.
  publicRangeSize: max(100, recorderMaxInstanceCount)
}

// ---------------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------------

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module identities './modules/identities.bicep' = {
  name: 'identities'
  scope: rg
  params: {
    location: location
    tags: tags
    functionIdentityName: names.functionIdentity
    recorderIdentityName: names.recorderIdentity
  }
}

module monitoring './modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    tags: tags
    logAnalyticsName: names.logAnalytics
    appInsightsName: names.appInsights
  }
}

module network './modules/network.bicep' = {
  name: 'network'
  scope: rg
  params: {
    location: location
    tags: tags
    vnetName: names.vnet
    nsgName: names.nsg
    loadBalancerName: names.loadBalancer
    loadBalancerIpName: names.loadBalancerIp
    dnsLabel: 'verbatim-rec-${resourceToken}'
    ports: recorderPorts
    teamsSignallingPrefixes: split(teamsSignallingPrefixes, ',')
    teamsMediaPrefixes: split(teamsMediaPrefixes, ',')
    operatorPrefixes: allowedIpRangeList
  }
}

module runtimeStorage './modules/runtime-storage.bicep' = {
  name: 'runtime-storage'
  scope: rg
  params: {
    location: location
    tags: tags
    name: names.runtimeStorage
    deploymentContainerName: names.deploymentContainer
    publicNetworkAccess: publicNetworkAccess
    allowedIpRanges: allowedIpRangeList
    allowedSubnetIds: [network.outputs.functionsSubnetId, network.outputs.recorderSubnetId]
  }
}

module recordingsStorage './modules/recordings-storage.bicep' = {
  name: 'recordings-storage'
  scope: rg
  params: {
    location: location
    tags: tags
    name: names.recordingsStorage
    defaultRetentionDays: defaultRetentionDays
    defaultPolicyLocked: recordingsWormLocked
    ledgerPolicyLocked: ledgerWormLocked
    anchorPolicyLocked: ledgerAnchorsWormLocked
    evidenceColdAfterDays: evidenceColdAfterDays
    captureVersionsDeleteAfterDays: captureVersionsDeleteAfterDays
    evidenceArchiveAfterDays: evidenceArchiveAfterDays
    publicNetworkAccess: publicNetworkAccess
    allowedIpRanges: allowedIpRangeList
    allowedSubnetIds: [network.outputs.functionsSubnetId, network.outputs.recorderSubnetId]
  }
}

module cosmos './modules/cosmos.bicep' = {
  name: 'cosmos'
  scope: rg
  params: {
    location: location
    tags: tags
    accountName: names.cosmos
    capacityMode: cosmosCapacityMode
    autoscaleMaxThroughput: cosmosAutoscaleMaxThroughput
    publicNetworkAccess: publicNetworkAccess
    allowedIpRanges: allowedIpRangeList
    allowedSubnetIds: [network.outputs.functionsSubnetId]
    dataContributorPrincipalIds: [identities.outputs.functionPrincipalId]
  }
}

module keyVault './modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    location: location
    tags: tags
    name: names.keyVault
    recover: mainVaultRecover
    graphClientSecret: graphClientSecret
    graphClientState: graphClientState
    publicNetworkAccess: publicNetworkAccess
    allowedIpRanges: allowedIpRangeList
    allowedSubnetIds: [network.outputs.functionsSubnetId, network.outputs.recorderSubnetId]
  }
}

module certificateVault './modules/certificate-vault.bicep' = {
  name: 'certificate-vault'
  scope: rg
  params: {
    location: location
    tags: tags
    name: names.certificateVault
    recover: certificateVaultRecover
    publicNetworkAccess: publicNetworkAccess
    allowedIpRanges: allowedIpRangeList
    allowedSubnetIds: [network.outputs.recorderSubnetId]
  }
}

module functionApp './modules/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    location: location
    tags: tags
    planName: names.plan
    name: names.functionApp
    environmentName: environmentName
    logLevel: logLevel
    identityId: identities.outputs.functionIdentityId
    identityClientId: identities.outputs.functionClientId
    appInsightsName: monitoring.outputs.appInsightsName
    runtimeStorageName: runtimeStorage.outputs.name
    deploymentContainerName: names.deploymentContainer
    recordingsStorageName: recordingsStorage.outputs.name
    cosmosEndpoint: cosmos.outputs.endpoint
    cosmosDatabaseName: cosmos.outputs.databaseName
    graphSecretUri: keyVault.outputs.graphClientSecretUri
    graphClientStateUri: keyVault.outputs.graphClientStateUri
    keyVaultUri: keyVault.outputs.uri
    ledgerKeyId: keyVault.outputs.ledgerKeyUri
    defaultRetentionDays: defaultRetentionDays
    durableTaskHubName: durableTaskHubName
    graphTenantId: teamsTenantId
    graphClientId: graphClientId
    graphBaseUrl: graphBaseUrl
    graphAuthorityHost: graphAuthorityHost
    portalClientId: portalClientId
    recorderFqdn: recorderFqdn
    alwaysReadyHttpInstances: alwaysReadyHttpInstances
    alwaysReadyDurableInstances: alwaysReadyDurableInstances
    chatCaptureEnabled: chatCaptureEnabled
    subnetId: publicNetworkAccess == 'SelectedNetworks' ? network.outputs.functionsSubnetId : ''
  }
  dependsOn: [rbac]
}

module webhookSecrets './modules/webhook-secrets.bicep' = {
  name: 'webhook-secrets'
  scope: rg
  params: {
    keyVaultName: keyVault.outputs.name
    functionAppHostName: functionApp.outputs.hostName
    functionPrincipalId: identities.outputs.functionPrincipalId
    webhookKey: graphWebhookKey
  }
}

module recorder './modules/recorder.bicep' = {
  name: 'recorder'
  scope: rg
  params: {
    location: location
    tags: tags
    scaleSetName: names.scaleSet
    autoscaleName: names.autoscale
    logLevel: logLevel
    vmSize: recorderVmSize
    zones: recorderZones
    instanceCount: recorderInstanceCount
    currentCapacity: recorderCurrentCapacity
    maxInstanceCount: recorderMaxInstanceCount
    adminUsername: recorderAdminUsername
    adminPassword: recorderAdminPassword
    identityId: identities.outputs.recorderIdentityId
    identityClientId: identities.outputs.recorderClientId
    identityPrincipalId: identities.outputs.recorderPrincipalId
    subnetId: network.outputs.recorderSubnetId
    loadBalancerName: network.outputs.loadBalancerName
    backendPoolName: network.outputs.backendPoolName
    natRuleNames: network.outputs.natRuleNames
    ports: recorderPorts
    certificateVaultUri: certificateVault.outputs.uri
    certificateName: recorderCertificateName
    publicFqdn: recorderFqdn
    graphSecretUri: keyVault.outputs.graphClientSecretUri
    selfServiceRoleId: rbac.outputs.recorderSelfServiceRoleId
    metricsPublisherRoleId: rbac.outputs.monitoringMetricsPublisherRoleId
    packageUrl: '${runtimeStorage.outputs.blobEndpoint}${runtimeStorage.outputs.recorderPackagesContainer}/${recorderPackageVersion}/verbatim-recorder.zip'
    packageVersion: recorderPackageVersion
    runtimeStorageName: runtimeStorage.outputs.name
    recordingsStorageName: recordingsStorage.outputs.name
    graphTenantId: teamsTenantId
    graphClientId: graphClientId
    graphBaseUrl: graphBaseUrl
    graphAuthorityHost: graphAuthorityHost
    workspaceId: monitoring.outputs.workspaceId
    dataCollectionRuleName: names.recorderDataCollection
  }
}

module bot './modules/bot.bicep' = {
  name: 'bot'
  scope: rg
  params: {
    tags: tags
    name: names.bot
    appId: graphClientId
    appTenantId: teamsTenantId
    recorderFqdn: recorderFqdn
    sku: botSku
  }
}

module diagnostics './modules/diagnostics.bicep' = {
  name: 'diagnostics'
  scope: rg
  params: {
    workspaceId: monitoring.outputs.workspaceId
    keyVaultName: keyVault.outputs.name
    certificateVaultName: certificateVault.outputs.name
    runtimeStorageName: runtimeStorage.outputs.name
    recordingsStorageName: recordingsStorage.outputs.name
    cosmosAccountName: cosmos.outputs.name
  }
}

module alerts './modules/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    actionGroupName: names.actionGroup
    alertEmail: alertEmail
    workspaceId: monitoring.outputs.workspaceId
    loadBalancerId: network.outputs.loadBalancerId
    scaleSetName: recorder.outputs.scaleSetName
    alertOnUnlockedWorm: alertOnUnlockedWorm
  }
}

module rbac './modules/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    functionPrincipalId: identities.outputs.functionPrincipalId
    recorderPrincipalId: identities.outputs.recorderPrincipalId
    deployerPrincipalId: principalId
    deployerPrincipalType: principalType
    chatCaptureEnabled: chatCaptureEnabled
    runtimeStorageName: runtimeStorage.outputs.name
    recordingsStorageName: recordingsStorage.outputs.name
    keyVaultName: keyVault.outputs.name
    certificateVaultName: certificateVault.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    loadBalancerName: network.outputs.loadBalancerName
  }
}

// ---------------------------------------------------------------------------------------------
// Outputs: azd writes them into the environment; azure.yaml's hooks read them (tests check both)
// ---------------------------------------------------------------------------------------------

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_URL string = functionApp.outputs.url
output AZURE_FUNCTION_PRINCIPAL_ID string = identities.outputs.functionPrincipalId
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_URI string = keyVault.outputs.uri
output RECORDER_CERTIFICATE_KEY_VAULT_NAME string = certificateVault.outputs.name
output BOT_NAME string = bot.outputs.name
output BOT_CALLING_WEBHOOK string = bot.outputs.callingWebhook
output COSMOS_ENDPOINT string = cosmos.outputs.endpoint
output RUNTIME_STORAGE_ACCOUNT_NAME string = runtimeStorage.outputs.name
output RECORDINGS_STORAGE_ACCOUNT_NAME string = recordingsStorage.outputs.name
output RECORDINGS_CONTAINER_NAME string = recordingsStorage.outputs.recordingsContainer
output LEDGER_CONTAINER_NAME string = recordingsStorage.outputs.ledgerContainer
output LEDGER_ANCHORS_CONTAINER_NAME string = recordingsStorage.outputs.ledgerAnchorsContainer
output CAPTURES_CONTAINER_NAME string = recordingsStorage.outputs.capturesContainer
output RECORDER_PACKAGES_CONTAINER string = runtimeStorage.outputs.recorderPackagesContainer
output RECORDER_SCALE_SET_NAME string = recorder.outputs.scaleSetName
output RECORDER_LOAD_BALANCER_FQDN string = network.outputs.loadBalancerFqdn
output RECORDER_LOAD_BALANCER_IP string = network.outputs.loadBalancerIp
output RECORDER_CERTIFICATE_NAME string = recorderCertificateName
output RECORDER_FQDN string = recorderFqdn
output GRAPH_TENANT_ID string = teamsTenantId
output AZURE_LOG_ANALYTICS_WORKSPACE_ID string = monitoring.outputs.workspaceCustomerId
