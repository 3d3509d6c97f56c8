// Alerts an operator must act on, sent to one action group (e-mail). Traces to ARCHITECTURE.md
// "Reconciliation and completeness" (a policy user's call without a complete recording is the failure
// this product exists to surface), "Evidence and trust" (WORM locked, the daily signed completeness
// report) and "Running it" (recorders healthy, callRecords subscription alive, no poisoned messages).
//
// Resource shapes: Microsoft.Insights/actionGroups, scheduledQueryRules (log search alerts, queries over
// the Log Analytics workspace that Application Insights, the diagnostic settings and the Azure Monitor
// Agent write to) and metricAlerts (https://learn.microsoft.com/azure/azure-monitor/alerts/alerts-types).
// Each query names a log message or function that exists in the code; tests/infra checks every one.
// Application Insights does not sample requests or traces (host.json), so "none in a day" and "one
// alert line" queries see every row.

param location string
param tags object
param actionGroupName string

@description('E-mail address of the operators.')
param alertEmail string
param workspaceId string
param loadBalancerId string
param scaleSetName string

@description('Alert while the evidence store\'s default WORM policy is not locked (set false for test environments that are never locked).')
param alertOnUnlockedWorm bool = true

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: actionGroupName
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: 'verbatim'
    enabled: true
    emailReceivers: [
      { name: 'operators', emailAddress: alertEmail, useCommonAlertSchema: true }
    ]
  }
}

// Log search alerts: name -> what it means, the query, how often and over what window, and the condition.
var logAlerts = [
  {
    name: 'policy-call-not-recorded'
    description: 'A policy user\'s call has a missing or partial recording (reconciliation verdict). Open the verdict in the portal and follow docs/deploy.md, "When an alert fires".'
    severity: 1
    query: 'AppTraces | where Message startswith "policy user\'s call not fully recorded"'
    frequency: 'PT5M'
    window: 'PT5M'
    operator: 'GreaterThan'
    threshold: 0
    enabled: true
  }
  {
    name: 'callrecords-subscription-not-renewed'
    description: 'Renewing or recreating the Graph callRecords subscription failed; call records stop arriving when it expires.'
    severity: 1
    query: 'AppTraces | where Message has "ensuring the callRecords subscription failed"'
    frequency: 'PT30M'
    window: 'PT1H'
    operator: 'GreaterThan'
    threshold: 0
    enabled: true
  }
  {
    name: 'completeness-report-missing'
    description: 'No daily completeness report was produced in the last 26 hours.'
    severity: 2
    query: 'AppRequests | where Name == "completeness_report" and Success == true'
    frequency: 'PT1H'
    window: 'PT26H'
    operator: 'LessThan'
    threshold: 1
    enabled: true
  }
  {
    name: 'evidence-worm-not-locked'
    description: 'The recordings container\'s default WORM policy is not locked (docs/deploy.md, "Locking WORM").'
    severity: 2
    query: 'AppTraces | where Message startswith "evidence store WORM policy is not locked"'
    frequency: 'PT6H'
    window: 'P1D'
    operator: 'GreaterThan'
    threshold: 0
    enabled: alertOnUnlockedWorm
  }
  {
    name: 'poison-messages'
    description: 'A queue message failed five times and was moved to a poison queue.'
    severity: 2
    query: 'StorageQueueLogs | where OperationName == "PutMessage" and Uri has "-poison/messages"'
    frequency: 'PT5M'
    window: 'PT5M'
    operator: 'GreaterThan'
    threshold: 0
    enabled: true
  }
  {
    name: 'recorder-silent'
    description: 'A recorder VM stopped sending the Azure Monitor Agent heartbeat (stopped, hung or cut off). A scale-in also ends an instance\'s heartbeat once.'
    severity: 1
    query: 'Heartbeat | where _ResourceId has "/virtualmachinescalesets/${toLower(scaleSetName)}/" | summarize last = max(TimeGenerated) by Computer | where last < ago(10m)'
    frequency: 'PT5M'
    window: 'PT30M'
    operator: 'GreaterThan'
    threshold: 0
    enabled: true
  }
]

resource logAlertRules 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = [for alert in logAlerts: {
  name: 'verbatim-${alert.name}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Verbatim: ${alert.name}'
    description: alert.description
    severity: alert.severity
    enabled: alert.enabled
    scopes: [workspaceId]
    evaluationFrequency: alert.frequency
    windowSize: alert.window
    criteria: {
      allOf: [
        {
          query: alert.query
          timeAggregation: 'Count'
          operator: alert.operator
          threshold: alert.threshold
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    autoMitigate: true
    actions: { actionGroups: [actionGroup.id] }
  }
}]

// An instance that fails the load balancer's health probe (unhealthy, draining, or not answering at all).
resource recorderUnhealthy 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'verbatim-recorder-unhealthy'
  location: 'global'
  tags: tags
  properties: {
    description: 'A recorder instance fails the load balancer health probe (/health) for 5 minutes: it takes no new calls. Expected while an instance drains for an update.'
    severity: 1
    enabled: true
    scopes: [loadBalancerId]
    evaluationFrequency: 'PT1M'
    windowSize: 'PT5M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'health-probe'
          metricNamespace: 'Microsoft.Network/loadBalancers'
          metricName: 'DipAvailability'
          dimensions: [{ name: 'BackendIPAddress', operator: 'Include', values: ['*'] }]
          operator: 'LessThan'
          threshold: 100
          timeAggregation: 'Average'
        }
      ]
    }
    autoMitigate: true
    actions: [{ actionGroupId: actionGroup.id }]
  }
}

output actionGroupId string = actionGroup.id
output logAlertNames array = [for alert in logAlerts: 'verbatim-${alert.name}']
