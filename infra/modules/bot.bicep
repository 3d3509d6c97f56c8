// The Azure Bot resource that makes the recorder a Teams calling bot. Traces to ARCHITECTURE.md "Data
// flow of one recorded call", step 1 (Teams invites the recorder into a policy user's call by POSTing
// to the bot's calling webhook) and graph-teams.md section 5 ("Calls go to voicemail for policy users"
// when the Teams channel, calling or the webhook is missing).
//
// A calling bot needs an Azure Bot registration with the Microsoft Teams channel, calling enabled and the
// calling webhook pointing at the recorder (https://learn.microsoft.com/microsoftteams/platform/bots/
// calls-and-meetings/registering-calling-bot). Its identity is the existing Entra app registration
// (GRAPH_CLIENT_ID), single-tenant: "Multi-tenant bot creation will be deprecated after July 31, 2025 ...
// use single-tenant or user-assigned managed identity going forward"
// (https://learn.microsoft.com/azure/bot-service/abs-quickstart). A user-assigned managed identity cannot
// be the bot here: the recorder answers calls with the same app's Graph application permissions, which a
// managed identity of this subscription's tenant cannot hold in another (Teams) tenant.
//
// Resource shapes: Microsoft.BotService/botServices and botServices/channels (MsTeamsChannel properties
// isEnabled, enableCalling, callingWebhook, deploymentEnvironment), Azure template reference
// https://learn.microsoft.com/azure/templates/microsoft.botservice/botservices.

param tags object
param name string

@description('Application (client) id of the Entra app registration (the bot\'s identity).')
param appId string

@description('Tenant of that app registration (single-tenant bot).')
param appTenantId string

@description('Public DNS name of the recorder; Teams POSTs incoming calls to https://<name>/api/calling.')
param recorderFqdn string

@allowed(['F0', 'S1'])
param sku string = 'F0'

resource bot 'Microsoft.BotService/botServices@2022-09-15' = {
  name: name
  // Bot registrations are global resources.
  location: 'global'
  tags: tags
  kind: 'azurebot'
  sku: { name: sku }
  properties: {
    displayName: 'Verbatim compliance recorder'
    description: 'Policy-based compliance recording for Microsoft Teams'
    // A calling-only bot receives no Bot Framework messages: its endpoint is the calling webhook of the
    // Teams channel below. Microsoft's own template example registers a bot with an empty endpoint.
    endpoint: ''
    msaAppId: appId
    msaAppType: 'SingleTenant'
    msaAppTenantId: appTenantId
  }
}

resource teams 'Microsoft.BotService/botServices/channels@2022-09-15' = {
  parent: bot
  name: 'MsTeamsChannel'
  location: 'global'
  properties: {
    channelName: 'MsTeamsChannel'
    properties: {
      isEnabled: true
      enableCalling: true
      callingWebhook: 'https://${recorderFqdn}/api/calling'
      deploymentEnvironment: 'CommercialDeployment'
    }
  }
}

output name string = bot.name
output callingWebhook string = 'https://${recorderFqdn}/api/calling'
