// The recorder bot's Windows VM scale set. Traces to ARCHITECTURE.md "The pieces and where they
// live" (recorder_vm/: the recorder that runs on the Windows VM scale set), "Running it" (the recorder
// package is installed on the VM scale set by its custom-script extension) and "The one piece we
// cannot run here" (Microsoft's media library is Windows-only), with the platform rules of
// graph-teams.md section 5: instance-level public IPs, a public port per instance, >= 4 vCPU,
// calls pinned to one VM for up to 24 h (no Spot, manual upgrades, no automatic OS updates).
//
// Installation. The custom-script extension runs a one-line stage that writes the bootstrap script
// (infra/scripts/recorder-bootstrap.ps1, shipped with this module's configuration as the scale set's
// userData) and runs it. The bootstrap downloads the recorder package that the predeploy hook
// uploads (`recorder-packages/<version>/verbatim-recorder.zip`), resolves Key Vault references with
// the managed identity, asks the load balancer which public ports are this instance's, and runs the
// package's `recorder_vm/deploy/install.ps1`. On the first `azd up` the scale set exists before the
// package does (provision runs before deploy); the bootstrap then leaves a scheduled task that installs
// the package as soon as it appears, so provisioning never waits on deployment.
//
// Draining and scale-in. Upgrades are manual: a new package version changes the model only;
// instances take it when an operator drains them (POST /admin/drain, wait for zero calls) and runs
// `az vmss update-instances`. Autoscale scales out on CPU; it scales in only instances that are not
// protected: the recorder sets protectFromScaleIn on itself while it holds calls (self-service role,
// assigned below) and the terminate notification (scheduled events, 15 min) makes it drain. The
// load balancer's health probe and the Application Health extension use /health, which reports
// unhealthy while draining, so no new call lands on a draining instance.

param location string
param tags object
param scaleSetName string
param autoscaleName string
param logLevel string
param vmSize string
param zones array
param instanceCount int

@description('The scale set\'s capacity now (0 before it exists): a PUT sets the capacity it names, so every later provision names the current one and leaves scaling to autoscale.')
param currentCapacity int = 0
param maxInstanceCount int
param adminUsername string

@secure()
param adminPassword string

param identityId string
param identityClientId string
param identityPrincipalId string
param subnetId string
param loadBalancerName string
param backendPoolName string

@description('Names of the NAT rules v2 whose ports are this instance\'s callback and media ports.')
param natRuleNames object

@description('The port plan from main.bicep (signalling, notification, media and their public ranges).')
param ports object

@description('URI of the vault that holds only the recorder\'s certificate (ends with /).')
param certificateVaultUri string
param certificateName string

@description('Public DNS name of the recorder (CNAME to the load balancer); its certificate matches it.')
param publicFqdn string
param graphSecretUri string
param selfServiceRoleId string

@description('Monitoring Metrics Publisher (rbac.bicep names every role): the recorder posts its calls metric on the scale set.')
param metricsPublisherRoleId string
param packageUrl string
param packageVersion string
param runtimeStorageName string
param recordingsStorageName string
param graphTenantId string
param graphClientId string
param graphBaseUrl string
param graphAuthorityHost string

@allowed(['Premium_LRS', 'StandardSSD_LRS'])
param osDiskType string = 'Premium_LRS'

@description('Log Analytics workspace the Azure Monitor Agent sends the recorder\'s events and heartbeats to.')
param workspaceId string
param dataCollectionRuleName string

var nicConfigName = 'recorder-nic'

// Calls one instance takes (RECORDER_MAX_CONCURRENT_CALLS) and the autoscale thresholds on calls per instance.
var maxCallsPerInstance = 100
var scaleOutAboveCalls = maxCallsPerInstance / 2
var scaleInBelowCalls = maxCallsPerInstance / 10
// The calls metric the recorder posts (recorder_vm.metrics: NAMESPACE, METRIC), against the scale set's id.
var callsMetricNamespace = 'Verbatim Recorder'
var callsMetricName = 'ActiveCalls'
var ipConfigName = 'recorder-ip'

resource runtimeStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: runtimeStorageName
}

resource recordingsStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: recordingsStorageName
}

resource loadBalancer 'Microsoft.Network/loadBalancers@2024-05-01' existing = {
  name: loadBalancerName
}

// The recorder's app settings (environment of the recorder service). tests/infra checks the names
// against recorder_vm.settings.app_setting_names(). Values of the form @Microsoft.KeyVault(SecretUri=...)
// are resolved by the bootstrap with the managed identity; the bootstrap adds this instance's public
// ports and IP (RECORDER_CALLBACK_PUBLIC_PORT, RECORDER_MEDIA_PUBLIC_PORT, RECORDER_MEDIA_PUBLIC_IP).
var recorderSettings = {
  VERBATIM_LOG_LEVEL: logLevel
  // Also written to the Application log (source VerbatimRecorder), which the data collection rule collects.
  RECORDER_EVENT_LOG_LEVEL: 'WARNING'
  RECORDER_STATE_DIR: 'C:\\verbatim\\state'

  // Signalling: the load-balanced webhook and the per-instance callbacks on their own ports.
  RECORDER_LISTEN_HOST: '0.0.0.0'
  RECORDER_LISTEN_PORT: string(ports.signalling)
  RECORDER_CALLBACK_LISTEN_PORT: string(ports.notification)
  RECORDER_SERVICE_FQDN: publicFqdn
  RECORDER_MAX_NOTIFICATION_BYTES: '262144'

  // Platform tokens (Teams -> bot).
  RECORDER_PLATFORM_OPENID_CONFIG_URL: 'https://api.aps.skype.com/v1/.well-known/OpenIdConfiguration'
  RECORDER_PLATFORM_ISSUERS: 'https://api.botframework.com,https://graph.microsoft.com'
  RECORDER_PLATFORM_KEYS_REFRESH_SECONDS: '7200'
  RECORDER_PLATFORM_LEEWAY_SECONDS: '60'

  // The bot's Graph credential (answer, updateRecordingStatus, keepAlive).
  GRAPH_BASE_URL: graphBaseUrl
  GRAPH_AUTHORITY_HOST: graphAuthorityHost
  GRAPH_SCOPE: '${graphBaseUrl}/.default'
  GRAPH_TENANT_ID: graphTenantId
  GRAPH_CLIENT_ID: graphClientId
  GRAPH_CLIENT_SECRET: '@Microsoft.KeyVault(SecretUri=${graphSecretUri})'

  // Calls and the media platform (Microsoft's library on Windows).
  RECORDER_MAX_CONCURRENT_CALLS: string(maxCallsPerInstance)
  RECORDER_ANSWER_BUDGET_SECONDS: '4'
  RECORDER_KEEPALIVE_SECONDS: '900'
  RECORDER_DELTA_ROSTER: 'false'
  RECORDER_UNMIXED_AUDIO: 'false'
  RECORDER_MEDIA_END_GRACE_SECONDS: '10'
  RECORDER_MEDIA_PLATFORM: 'windows'
  RECORDER_MEDIA_HOST: '0.0.0.0'
  RECORDER_MEDIA_PORT: string(ports.media)
  // Video and screen share (docs/video.md): off until a policy asks for them per modality; an operator turns them
  // on here (RECORDER_VIDEO_SOCKETS up to 10 receive-only H.264 sockets; RECORDER_SCREEN_SHARE the VBSS socket).
  RECORDER_VIDEO_SOCKETS: '0'
  RECORDER_SCREEN_SHARE: 'false'
  RECORDER_VIDEO_QUEUE_UNITS: '2000'

  // Capture.
  RECORDER_BLOCK_SECONDS: '1.5'
  RECORDER_FRAME_QUEUE_FRAMES: '3000'
  RECORDER_SPILL_MAX_BYTES: '2147483648'
  RECORDER_STORAGE_TIMEOUT_SECONDS: '5'
  RECORDER_STOP_DRAIN_SECONDS: '30'
  // Invitations are still answered this long after a drain begins: the signalling probe (network.bicep) takes an
  // instance out after 2 failed probes 5 s apart, and an invitation it sends meanwhile must not be declined.
  RECORDER_DRAIN_ACCEPT_SECONDS: '15'
  RECORDER_HEARTBEAT_SECONDS: '5'

  // Operations: terminate notifications (scale-in, maintenance) make the recorder drain.
  RECORDER_SCHEDULED_EVENTS_ENABLED: 'true'
  RECORDER_SCHEDULED_EVENTS_URL: 'http://169.254.169.254/metadata/scheduledevents?api-version=2020-07-01'
  RECORDER_SCHEDULED_EVENTS_POLL_SECONDS: '10'
  RECORDER_SHUTDOWN_GRACE_SECONDS: '60'
  // Calls per instance for autoscale (recorder_vm.metrics): the region's custom-metrics ingestion endpoint
  // (https://learn.microsoft.com/azure/azure-monitor/metrics/metrics-store-custom-rest-api; public cloud) and the
  // scale set the metric is posted against (its id by name: the scale set's own settings cannot reference it).
  RECORDER_METRICS_ENDPOINT: 'https://${location}.monitoring.azure.com'
  RECORDER_METRICS_RESOURCE_ID: resourceId('Microsoft.Compute/virtualMachineScaleSets', scaleSetName)

  // Storage, keyless: events on the runtime account's queue, progress in its table, captures in the
  // recordings account's staging container — the only container it may write (rbac.bicep); the Function App
  // seals a verified copy into `recordings`, which the recorder cannot write.
  AZURE_CLIENT_ID: identityClientId
  AzureWebJobsStorage__accountName: runtimeStorage.name
  AzureWebJobsStorage__queueServiceUri: runtimeStorage.properties.primaryEndpoints.queue
  AzureWebJobsStorage__tableServiceUri: runtimeStorage.properties.primaryEndpoints.table
  AzureWebJobsStorage__clientId: identityClientId
  RECORDER_EVENTS_QUEUE: 'recorder-events'
  RECORDINGS_STORAGE__accountName: recordingsStorage.name
  RECORDINGS_STORAGE__blobServiceUri: recordingsStorage.properties.primaryEndpoints.blob
  RECORDINGS_STORAGE__clientId: identityClientId
  CAPTURES_CONTAINER: 'captures'

  // Who may ask this recorder about its captures (GET /api/captures/{id}): tokens of the tenant for our API
  // holding the Recorder.Lifecycle app role, i.e. the Function App.
  AUTH_OPENID_CONFIG_URL: '${graphAuthorityHost}/${graphTenantId}/v2.0/.well-known/openid-configuration'
  AUTH_AUDIENCE: 'api://${graphClientId},${graphClientId}'
}

// Everything the bootstrap needs, in one object (userData, below).
var bootstrapConfig = {
  packageUrl: packageUrl
  packageVersion: packageVersion
  clientId: identityClientId
  settings: recorderSettings
  loadBalancerId: loadBalancer.id
  backendPoolName: backendPoolName
  natRuleNames: natRuleNames
  nicConfigName: nicConfigName
  ipConfigName: ipConfigName
  ports: ports
  certificateUrl: '${certificateVaultUri}secrets/${certificateName}'
  publicFqdn: publicFqdn
  installScript: 'recorder_vm\\deploy\\install.ps1'
}

// userData (up to 64 KB, read from IMDS on the VM): the bootstrap script and its configuration. It
// holds no secret: settings carry Key Vault references, resolved on the VM with the managed identity.
var userData = {
  bootstrap: loadTextContent('../scripts/recorder-bootstrap.ps1')
  config: bootstrapConfig
}

// Stage one, run by the custom-script extension: write the bootstrap from userData and run it. Kept
// short and fixed in size (Windows command lines have length limits; userData does not).
var stageOne = 'powershell.exe -NoProfile -ExecutionPolicy Bypass -Command "$ErrorActionPreference=\'Stop\'; New-Item -ItemType Directory -Force -Path C:\\verbatim | Out-Null; $u=Invoke-RestMethod -Headers @{Metadata=\'true\'} -Uri \'http://169.254.169.254/metadata/instance/compute/userData?api-version=2021-01-01&format=text\'; $d=[Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($u)) | ConvertFrom-Json; [IO.File]::WriteAllText(\'C:\\verbatim\\bootstrap.ps1\', $d.bootstrap); & C:\\verbatim\\bootstrap.ps1 -FromUserData; exit $LASTEXITCODE"'

resource scaleSet 'Microsoft.Compute/virtualMachineScaleSets@2024-07-01' = {
  name: scaleSetName
  location: location
  tags: tags
  zones: empty(zones) ? null : zones
  sku: { name: vmSize, tier: 'Standard', capacity: currentCapacity > 0 ? currentCapacity : instanceCount }
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    orchestrationMode: 'Uniform'
    // Extra VMs would take NAT ports and calls only to be deleted.
    overprovision: false
    singlePlacementGroup: true
    zoneBalance: empty(zones) ? null : true
    // Calls are pinned to their VM for up to 24 h: nothing replaces an instance behind its back.
    upgradePolicy: { mode: 'Manual' }
    automaticRepairsPolicy: { enabled: false }
    scaleInPolicy: { rules: ['Default'], forceDeletion: false }
    virtualMachineProfile: {
      // Regular capacity: Spot evictions would drop calls (and block policy users' calls).
      priority: 'Regular'
      userData: base64(string(userData))
      scheduledEventsProfile: {
        terminateNotificationProfile: { enable: true, notBeforeTimeout: 'PT15M' }
      }
      osProfile: {
        computerNamePrefix: 'rec'
        adminUsername: adminUsername
        adminPassword: adminPassword
        windowsConfiguration: {
          provisionVMAgent: true
          // Patches are applied by draining and reimaging, never mid-call.
          enableAutomaticUpdates: false
          patchSettings: { patchMode: 'Manual' }
        }
      }
      securityProfile: {
        securityType: 'TrustedLaunch'
        uefiSettings: { secureBootEnabled: true, vTpmEnabled: true }
      }
      storageProfile: {
        imageReference: {
          publisher: 'MicrosoftWindowsServer'
          offer: 'WindowsServer'
          sku: '2022-datacenter-azure-edition'
          version: 'latest'
        }
        osDisk: { createOption: 'FromImage', caching: 'ReadWrite', managedDisk: { storageAccountType: osDiskType } }
      }
      diagnosticsProfile: { bootDiagnostics: { enabled: true } }
      networkProfile: {
        networkInterfaceConfigurations: [
          {
            name: nicConfigName
            properties: {
              primary: true
              enableAcceleratedNetworking: true
              ipConfigurations: [
                {
                  name: ipConfigName
                  properties: {
                    primary: true
                    subnet: { id: subnetId }
                    loadBalancerBackendAddressPools: [
                      { id: resourceId('Microsoft.Network/loadBalancers/backendAddressPools', loadBalancerName, backendPoolName) }
                    ]
                    // Instance-level public IP: media flows straight to the VM (Teams requirement).
                    // Uniform scale sets take the SKU of the Standard load balancer (verify on first deploy).
                    publicIPAddressConfiguration: {
                      name: 'instance-ip'
                      properties: { idleTimeoutInMinutes: 15 }
                    }
                  }
                }
              ]
            }
          }
        ]
      }
      extensionProfile: {
        extensions: [
          {
            // Installs (and re-installs on renewal) the recorder's TLS certificate from Key Vault.
            name: 'key-vault-certificates'
            properties: {
              publisher: 'Microsoft.Azure.KeyVault'
              type: 'KeyVaultForWindows'
              typeHandlerVersion: '3.0'
              autoUpgradeMinorVersion: true
              settings: {
                secretsManagementSettings: {
                  pollingIntervalInS: '300'
                  // The certificate is imported after the first provisioning (README): do not fail now.
                  requireInitialSync: false
                  observedCertificates: [
                    {
                      url: bootstrapConfig.certificateUrl
                      certificateStoreName: 'MY'
                      certificateStoreLocation: 'LocalMachine'
                      // The recorder's Python TLS listener needs the key as PEM (install.ps1 exports it with
                      // pfx_to_pem.py into a file readable only by the service account), so it must be exportable.
                      keyExportable: true
                      accounts: ['Network Service', 'Local Service']
                    }
                  ]
                }
                authenticationSettings: {
                  msiEndpoint: 'http://169.254.169.254/metadata/identity/oauth2/token'
                  msiClientId: identityClientId
                }
              }
            }
          }
          {
            // Runs the bootstrap, which runs recorder_vm/deploy/install.ps1 from the package.
            name: 'install-recorder'
            properties: {
              publisher: 'Microsoft.Compute'
              type: 'CustomScriptExtension'
              typeHandlerVersion: '1.10'
              autoUpgradeMinorVersion: true
              // Re-run when the package, the settings or the bootstrap change.
              forceUpdateTag: uniqueString(string(userData))
              provisionAfterExtensions: ['key-vault-certificates']
              protectedSettings: {
                commandToExecute: stageOne
              }
            }
          }
          {
            // Instance health for operators and the scale set (automatic repairs stay off).
            name: 'application-health'
            properties: {
              publisher: 'Microsoft.ManagedServices'
              type: 'ApplicationHealthWindows'
              typeHandlerVersion: '2.0'
              autoUpgradeMinorVersion: true
              provisionAfterExtensions: ['install-recorder']
              settings: {
                protocol: 'https'
                port: ports.signalling
                requestPath: '/health'
                intervalInSeconds: 10
                numberOfProbes: 3
                gracePeriod: 1800
              }
            }
          }
          {
            // Azure Monitor Agent: the recorder's Windows events (its service and the recorder's own log
            // lines, event source VerbatimRecorder) and a heartbeat per VM leave the VM for Log Analytics
            // (data collection rule below). Authenticates with the recorder's user-assigned identity
            // (https://learn.microsoft.com/azure/azure-monitor/agents/azure-monitor-agent-manage,
            // "User-assigned identity": authentication.managedIdentity identifier-name mi_res_id).
            name: 'azure-monitor-agent'
            properties: {
              publisher: 'Microsoft.Azure.Monitor'
              type: 'AzureMonitorWindowsAgent'
              typeHandlerVersion: '1.0'
              autoUpgradeMinorVersion: true
              enableAutomaticUpgrade: true
              settings: {
                authentication: {
                  managedIdentity: { 'identifier-name': 'mi_res_id', 'identifier-value': identityId }
                }
              }
            }
          }
        ]
      }
    }
  }
}

// What the agent collects: Windows events of the recorder (Application log, source VerbatimRecorder:
// the service wrapper and the recorder's own log lines) and of the service control manager (service
// stops, crashes and restarts). Kind Windows, Microsoft-Event stream into the Event table
// (https://learn.microsoft.com/azure/azure-monitor/vm/data-collection-windows-events).
resource dataCollectionRule 'Microsoft.Insights/dataCollectionRules@2022-06-01' = {
  name: dataCollectionRuleName
  location: location
  tags: tags
  kind: 'Windows'
  properties: {
    dataSources: {
      windowsEventLogs: [
        {
          name: 'recorder-events'
          streams: ['Microsoft-Event']
          xPathQueries: [
            'Application!*[System[Provider[@Name=\'VerbatimRecorder\']]]'
            'System!*[System[Provider[@Name=\'Service Control Manager\'] and (Level=1 or Level=2 or Level=3)]]'
          ]
        }
      ]
    }
    destinations: {
      logAnalytics: [{ name: 'workspace', workspaceResourceId: workspaceId }]
    }
    dataFlows: [{ streams: ['Microsoft-Event'], destinations: ['workspace'] }]
  }
}

resource dataCollectionOnScaleSet 'Microsoft.Insights/dataCollectionRuleAssociations@2022-06-01' = {
  name: 'recorder-events'
  scope: scaleSet
  properties: {
    dataCollectionRuleId: dataCollectionRule.id
    description: 'Recorder events and heartbeats to Log Analytics'
  }
}

// The recorder protects itself from scale-in while it holds calls (custom role from rbac.bicep).
resource selfServiceOnScaleSet 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(scaleSet.id, identityPrincipalId, selfServiceRoleId)
  scope: scaleSet
  properties: {
    roleDefinitionId: selfServiceRoleId
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The recorder posts its calls metric against the scale set (Monitoring Metrics Publisher on the resource the metric
// is for, metrics-store-custom-rest-api#authentication).
resource metricsPublisherOnScaleSet 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(scaleSet.id, identityPrincipalId, metricsPublisherRoleId)
  scope: scaleSet
  properties: {
    roleDefinitionId: metricsPublisherRoleId
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Scale on calls per instance, the recorder's real limit, with CPU as a guard. Autoscale scales out when any
// scale-out rule fires and in only when every scale-in rule does
// (https://learn.microsoft.com/azure/azure-monitor/autoscale/autoscale-understanding-settings); Average over the
// scale set of every instance's samples is calls per instance. Instances holding calls are protected from
// scale-in (recorder_vm.scale_in), so scale-in only ever removes idle ones.
resource autoscale 'Microsoft.Insights/autoscalesettings@2022-10-01' = {
  name: autoscaleName
  location: location
  tags: tags
  properties: {
    enabled: true
    targetResourceUri: scaleSet.id
    profiles: [
      {
        name: 'calls'
        capacity: {
          minimum: string(instanceCount)
          maximum: string(maxInstanceCount)
          default: string(instanceCount)
        }
        rules: [
          {
            metricTrigger: {
              metricName: callsMetricName
              metricNamespace: callsMetricNamespace
              metricResourceUri: scaleSet.id
              timeGrain: 'PT1M'
              statistic: 'Average'
              timeWindow: 'PT5M'
              timeAggregation: 'Average'
              operator: 'GreaterThan'
              threshold: scaleOutAboveCalls
            }
            scaleAction: { direction: 'Increase', type: 'ChangeCount', value: '1', cooldown: 'PT5M' }
          }
          {
            metricTrigger: {
              metricName: 'Percentage CPU'
              metricNamespace: 'microsoft.compute/virtualmachinescalesets'
              metricResourceUri: scaleSet.id
              timeGrain: 'PT1M'
              statistic: 'Average'
              timeWindow: 'PT10M'
              timeAggregation: 'Average'
              operator: 'GreaterThan'
              threshold: 75
            }
            scaleAction: { direction: 'Increase', type: 'ChangeCount', value: '1', cooldown: 'PT10M' }
          }
          {
            // Slow and conservative.
            metricTrigger: {
              metricName: callsMetricName
              metricNamespace: callsMetricNamespace
              metricResourceUri: scaleSet.id
              timeGrain: 'PT1M'
              statistic: 'Average'
              timeWindow: 'PT30M'
              timeAggregation: 'Average'
              operator: 'LessThan'
              threshold: scaleInBelowCalls
            }
            scaleAction: { direction: 'Decrease', type: 'ChangeCount', value: '1', cooldown: 'PT30M' }
          }
          {
            metricTrigger: {
              metricName: 'Percentage CPU'
              metricNamespace: 'microsoft.compute/virtualmachinescalesets'
              metricResourceUri: scaleSet.id
              timeGrain: 'PT1M'
              statistic: 'Average'
              timeWindow: 'PT30M'
              timeAggregation: 'Average'
              operator: 'LessThan'
              threshold: 20
            }
            scaleAction: { direction: 'Decrease', type: 'ChangeCount', value: '1', cooldown: 'PT30M' }
          }
        ]
      }
    ]
  }
}

output scaleSetName string = scaleSet.name
output scaleSetId string = scaleSet.id
