// The Function App on Flex Consumption (Python 3.11) with its user-assigned identity and
// identity-based connections only. Traces to ARCHITECTURE.md "The pieces and where they live"
// (function_app.py: one DFApp, blueprints in functions/) and "Data flow" steps 5-9 (queue triggers,
// durable orchestrations, the Graph webhook that must answer within 3 s, timers). Always-ready
// instances keep the HTTP group (webhooks) and the durable group (orchestrations) warm.
//
// `appSettings` below is the complete list of settings the app receives; tests/infra checks its
// names against verbatim.platform.settings.app_setting_names() (plus a commented allow-list of platform
// settings). No setting holds a key or a secret: secrets are Key Vault references.

param location string
param tags object
param planName string
param name string
param environmentName string
param logLevel string
param identityId string
param identityClientId string
param appInsightsName string
param runtimeStorageName string
param deploymentContainerName string
param recordingsStorageName string
param cosmosEndpoint string
param cosmosDatabaseName string
param graphSecretUri string
param graphClientStateUri string

@description('Vault URI (ends with /); the webhook URL secrets are written by webhook-secrets.bicep.')
param keyVaultUri string
param ledgerKeyId string
param defaultRetentionDays int
param durableTaskHubName string
param graphTenantId string
param graphClientId string
param graphBaseUrl string
param graphAuthorityHost string
param portalClientId string = ''
@description('The recorders\' public DNS name: the only host the lifecycle asks about a capture.')
param recorderFqdn string
param alwaysReadyHttpInstances int
param alwaysReadyDurableInstances int

@description('Capture Teams chats (docs/chat.md): a tenant-wide /chats/getAllMessages subscription with resource data.')
param chatCaptureEnabled bool = false

@description('Subnet for VNet integration (delegated to Microsoft.App/environments); empty for none.')
param subnetId string = ''

@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

@maxValue(1000)
param maximumInstanceCount int = 100

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource runtimeStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: runtimeStorageName
}

resource recordingsStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: recordingsStorageName
}

// The proxies of Azure's own in front of the app that append to X-Forwarded-For: App Service's front end, where
// TLS terminates ("In App Service, TLS/SSL termination happens at the network load balancers, so all HTTPS requests
// reach your app as unencrypted HTTP requests", MicrosoftDocs/azure-docs articles/app-service/configure-language-
// python.md, "Detect HTTPS session"; Functions on App Service plans and Flex Consumption share that front end). The
// client address is the entry this many places from the right (verbatim.platform.inputs.forwarded_client); a
// front door or gateway put in front of the app adds one hop each.
var trustedForwardedHops = 1

var appSettings = {
  // Platform: telemetry with Entra-only ingestion (the component has local auth disabled).
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'

  // verbatim.platform.settings: general
  VERBATIM_ENVIRONMENT: environmentName
  VERBATIM_LOG_LEVEL: logLevel
  AZURE_CLIENT_ID: identityClientId

  // Runtime account: the host, the durable task hub and the queue triggers, keyless.
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AzureWebJobsStorage__accountName: runtimeStorage.name
  AzureWebJobsStorage__blobServiceUri: runtimeStorage.properties.primaryEndpoints.blob
  AzureWebJobsStorage__queueServiceUri: runtimeStorage.properties.primaryEndpoints.queue
  AzureWebJobsStorage__tableServiceUri: runtimeStorage.properties.primaryEndpoints.table
  DURABLE_TASK_HUB_NAME: durableTaskHubName

  // Recordings account (evidence), keyless.
  RECORDINGS_STORAGE__accountName: recordingsStorage.name
  RECORDINGS_STORAGE__blobServiceUri: recordingsStorage.properties.primaryEndpoints.blob
  RECORDINGS_STORAGE__clientId: identityClientId
  RECORDINGS_CONTAINER: 'recordings'
  // The recorder's staging container: the lifecycle verifies what is staged there and seals a copy into
  // `recordings` (verbatim.evidence.names); it breaks the recorder's leases there to fence a salvaged capture.
  CAPTURES_CONTAINER: 'captures'
  // The daily WORM-lock check reads the container's immutability policy from ARM (Reader on it, rbac.bicep).
  RECORDINGS_CONTAINER_RESOURCE_ID: '${recordingsStorage.id}/blobServices/default/containers/recordings'
  ARM_ENDPOINT: environment().resourceManager

  // Cosmos DB through the identity (local auth is off).
  COSMOS_ENDPOINT: cosmosEndpoint
  COSMOS_DATABASE: cosmosDatabaseName

  // Microsoft Graph (the bot's app registration; the secrets are Key Vault references).
  GRAPH_BASE_URL: graphBaseUrl
  GRAPH_AUTHORITY_HOST: graphAuthorityHost
  GRAPH_SCOPE: '${graphBaseUrl}/.default'
  GRAPH_TENANT_ID: graphTenantId
  GRAPH_CLIENT_ID: graphClientId
  GRAPH_CLIENT_SECRET: '@Microsoft.KeyVault(SecretUri=${graphSecretUri})'

  // Call-record ingestion: subscriptions, webhook, fetch, back-fill, PSTN reports.
  CALLRECORD_TENANT_IDS: graphTenantId
  GRAPH_CLIENT_STATE: '@Microsoft.KeyVault(SecretUri=${graphClientStateUri})'
  GRAPH_NOTIFICATION_URL: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/graph-notification-url)'
  GRAPH_LIFECYCLE_URL: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/graph-lifecycle-url)'
  GRAPH_WEBHOOK_MAX_BYTES: '1048576'
  CALLRECORD_SUBSCRIPTION_LIFETIME_MINUTES: '4200'
  CALLRECORD_SUBSCRIPTION_RENEW_BEFORE_MINUTES: '1440'
  CALLRECORD_NOT_YET_GRACE_MINUTES: '150'
  CALLRECORD_NOT_YET_RETRY_SECONDS: '600'
  CALLRECORD_BACKFILL_OVERLAP_MINUTES: '720'
  CALLRECORD_BACKFILL_INITIAL_DAYS: '2'
  PSTN_REPORT_DAYS: '2'

  // Chat capture (docs/chat.md), off unless chatCaptureEnabled: a subscription living 70 h of Graph's 72
  // (lifecycle notifications make lifetimes over an hour possible), renewed 12 h before it ends; the URLs and
  // the key pair Graph encrypts for are Key Vault references (webhook-secrets.bicep); a chat-day is sealed
  // 3 h after it ends; back-fills through the export API overlap the last one by 2 h and reach 1 day back
  // at the first start.
  CHAT_CAPTURE_ENABLED: chatCaptureEnabled ? 'true' : 'false'
  CHAT_TENANT_IDS: graphTenantId
  CHAT_NOTIFICATION_URL: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/chat-notification-url)'
  CHAT_LIFECYCLE_URL: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/chat-lifecycle-url)'
  CHAT_ENCRYPTION_PEM: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/chat-encryption)'
  CHAT_SUBSCRIPTION_LIFETIME_MINUTES: '4200'
  CHAT_SUBSCRIPTION_RENEW_BEFORE_MINUTES: '720'
  CHAT_SEAL_GRACE_MINUTES: '180'
  CHAT_BACKFILL_OVERLAP_MINUTES: '120'
  CHAT_BACKFILL_INITIAL_DAYS: '1'

  // Our API's bearer tokens: Entra ID of the Teams tenant; the audience is the same app registration.
  AUTH_OPENID_CONFIG_URL: '${graphAuthorityHost}/${graphTenantId}/v2.0/.well-known/openid-configuration'
  AUTH_AUDIENCE: 'api://${graphClientId},${graphClientId}'
  AUTH_LEEWAY_SECONDS: '60'
  // X-Forwarded-For is believed only this many hops from the right (the client writes the rest).
  TRUSTED_FORWARDED_HOPS: string(trustedForwardedHops)

  // The compliance portal signs people in with MSAL.js (authorization code flow with PKCE) for the API's scope.
  PORTAL_CLIENT_ID: portalClientId
  PORTAL_AUTHORITY: '${graphAuthorityHost}/${graphTenantId}'
  PORTAL_API_SCOPE: 'api://${graphClientId}/user_impersonation'

  // Before salvaging a silent capture the lifecycle asks the recorder instance that holds it, at its own
  // callback address (https://<recorder FQDN>:<its NAT port>/api/captures/<id>), with a token for our API that
  // carries the Recorder.Lifecycle app role (verbatim.lifecycle.liveness). Only this host is ever asked.
  RECORDER_CONTROL_HOSTS: recorderFqdn

  // Ledger and sealing: checkpoints signed with the Key Vault key; retention at seal time.
  LEDGER_CHAIN: 'main'
  LEDGER_CHECKPOINT_INTERVAL: '100'
  LEDGER_SIGNING_KEY_VAULT_KEY_ID: ledgerKeyId
  // The ledger v2 log's name (its checkpoints' origin line): fixed for the life of the log.
  LEDGER_ORIGIN: '${name}.azurewebsites.net/verbatim/ledger'
  LEDGER_CONTAINER: 'ledger'
  LEDGER_ANCHOR_CONTAINER: 'ledger-anchors'
  SEAL_DEFAULT_RETENTION_CLASS: 'default'
  SEAL_DEFAULT_RETENTION_DAYS: string(defaultRetentionDays)

  // Reconciliation, completeness reports and the compliance API's media responses.
  RECONCILIATION_JOIN_TOLERANCE_SECONDS: '3'
  RECONCILIATION_END_TOLERANCE_SECONDS: '1'
  // How long after a call reconciliation waits for the recorder's report before judging it unrecorded (an alert).
  RECONCILIATION_RECORDER_REPORT_GRACE_SECONDS: '900'
  REPORTS_CONTAINER: 'reports'
  EXPORT_RETENTION_DAYS: '30'
  EXPORT_LINK_MINUTES: '15'
  MEDIA_CHUNK_BYTES: '1048576'
  MEDIA_MAX_FULL_BYTES: '16777216'
  // An export that carries access copies waits this long (checking every poll) for copies still being made.
  EXPORT_ACCESS_COPY_WAIT_MINUTES: '30'
  EXPORT_ACCESS_COPY_POLL_SECONDS: '30'

  // Access copies (the access-copies queue trigger): made one at a time per instance (CPU-bound; Flex
  // Consumption scales the trigger out in its own instances), asked for again 30 minutes after the evidence
  // seal if still not sealed.
  ACCESS_COPY_CONCURRENCY: '1'
  ACCESS_COPY_SWEEP_MINUTES: '30'

  // Queues (verbatim.platform.layout.QUEUES).
  RECORDER_EVENTS_QUEUE: 'recorder-events'
  CALLRECORD_NOTIFICATIONS_QUEUE: 'callrecord-notifications'
  RECONCILIATION_REQUESTS_QUEUE: 'reconciliation-requests'
  GRAPH_LIFECYCLE_QUEUE: 'graph-lifecycle'
  ACCESS_COPIES_QUEUE: 'access-copies'
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { name: 'FC1', tier: 'FlexConsumption' }
  properties: { reserved: true }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  // azd deploys the `api` service of azure.yaml to the app carrying this tag.
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    keyVaultReferenceIdentity: identityId
    virtualNetworkSubnetId: empty(subnetId) ? null : subnetId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${runtimeStorage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      runtime: { name: 'python', version: '3.11' }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        alwaysReady: [
          { name: 'http', instanceCount: alwaysReadyHttpInstances }
          { name: 'durable', instanceCount: alwaysReadyDurableInstances }
        ]
      }
    }
  }
}

resource siteAppSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: appSettings
}

// No publishing passwords: deployment goes through Entra ID (azd), never basic auth.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: { allow: false }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: { allow: false }
}

output name string = site.name
output url string = 'https://${site.properties.defaultHostName}'
output hostName string = site.properties.defaultHostName
