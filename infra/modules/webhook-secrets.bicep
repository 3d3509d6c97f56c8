// The public URLs Graph posts call-record notifications and lifecycle events to, kept in Key Vault
// because they carry the webhook's function key. Traces to ARCHITECTURE.md "Data flow of one
// recorded call", step 7 (Graph POSTs a change notification to the Function App; the webhook checks
// clientState and answers 202) and step 9 (timers renew the subscriptions that point at these URLs).
// The routes are those of functions/graph_webhook.py (tests/infra checks them). The key is generated
// once by the preprovision hook; the postdeploy hook gives the Function App a host key of that value
// (ARM cannot set Flex host keys before the app runs).

param keyVaultName string
param functionAppHostName string
param functionPrincipalId string

@secure()
param webhookKey string

var routes = {
  notifications: 'graph/notifications'
  lifecycle: 'graph/lifecycle'
  chatNotifications: 'chat/notifications'
  chatLifecycle: 'chat/lifecycle'
}

// Key Vault Secrets User: read secret values.
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource notificationUrl 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'graph-notification-url'
  properties: {
    value: 'https://${functionAppHostName}/api/${routes.notifications}?code=${webhookKey}'
    contentType: 'Graph callRecords notificationUrl (carries the webhook key)'
  }
}

resource lifecycleUrl 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'graph-lifecycle-url'
  properties: {
    value: 'https://${functionAppHostName}/api/${routes.lifecycle}?code=${webhookKey}'
    contentType: 'Graph callRecords lifecycleNotificationUrl (carries the webhook key)'
  }
}

resource chatNotificationUrl 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'chat-notification-url'
  properties: {
    value: 'https://${functionAppHostName}/api/${routes.chatNotifications}?code=${webhookKey}'
    contentType: 'Graph /chats/getAllMessages notificationUrl (carries the webhook key)'
  }
}

resource chatLifecycleUrl 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'chat-lifecycle-url'
  properties: {
    value: 'https://${functionAppHostName}/api/${routes.chatLifecycle}?code=${webhookKey}'
    contentType: 'Graph /chats/getAllMessages lifecycleNotificationUrl (carries the webhook key)'
  }
}

resource readNotificationUrl 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(notificationUrl.id, functionPrincipalId, keyVaultSecretsUser)
  scope: notificationUrl
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource readLifecycleUrl 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(lifecycleUrl.id, functionPrincipalId, keyVaultSecretsUser)
  scope: lifecycleUrl
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource readChatNotificationUrl 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(chatNotificationUrl.id, functionPrincipalId, keyVaultSecretsUser)
  scope: chatNotificationUrl
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource readChatLifecycleUrl 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(chatLifecycleUrl.id, functionPrincipalId, keyVaultSecretsUser)
  scope: chatLifecycleUrl
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output notificationUrlSecretName string = notificationUrl.name
output lifecycleUrlSecretName string = lifecycleUrl.name
