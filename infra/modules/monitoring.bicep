// Log Analytics + Application Insights for the Function App (and anything else that logs).
// Traces to ARCHITECTURE.md "Running it" (In Azure) and STYLE.md "Logging is structured with
// correlation ids": the JSON logs of verbatim.platform.logging land here. Local (key-based) ingestion is off;
// the Function App's identity publishes with Entra auth (Monitoring Metrics Publisher, rbac.bicep).

param location string
param tags object
param logAnalyticsName string
param appInsightsName string

@minValue(30)
param retentionInDays int = 90

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: retentionInDays
    features: { disableLocalAuth: true }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
  }
}

output appInsightsName string = appInsights.name
output workspaceId string = workspace.id
// The workspace's id for queries (`verbatim doctor`, the Log Analytics query API).
output workspaceCustomerId string = workspace.properties.customerId
