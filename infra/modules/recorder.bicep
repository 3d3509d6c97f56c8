// The recorder bot's Windows VM scale set. Traces to ARCHITECTURE.md "The pieces and where they
// live" (recorder_vm/: the recorder that runs on the Windows VM scale set), "Running it" (the recorder
// package is installed on the VM scale set by its custom-script extension) and "The one piece we
// cannot run here" (Microsoft's media library is Windows-only), with the platform rules of
// graph-teams.md section 5: instance-level public IPs, a public port per instance, >= 4 vCPU,
// calls pinned to one VM for up to 24 h (no Spot, manual upgrades, no automatic OS updates).
//
// Installation. The custom-script extension runs a one-line stage that writes the bootstrap script
// (infra/scripts/recorder-bootstrap.ps1, shipped as the scale set's userData) and runs it with this
// module's configuration. The bootstrap downloads the recorder package that the predeploy hook
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
param environmentName string
param logLevel string
param vmSize string
param zones array
param instanceCount int
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

@description('The port plan from main.bicep (signalling, notification, media and their public ranges).')
param ports object

param keyVaultUri string
param certificateName string

@description('Public DNS name of the recorder (CNAME to the load balancer); its certificate matches it.')
param publicFqdn string
param graphSecretUri string
param selfServiceRoleId string
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

var nicConfigName = 'recorder-nic'
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
// against verbatim.settings.app_setting_names(), together with the Function App's. Values of the
// form @Microsoft.KeyVault(SecretUri=...) are resolved by the bootstrap with the managed identity.
var recorderSettings = {
  VERBATIM_ENVIRONMENT: environmentName
  VERBATIM_LOG_LEVEL: logLevel
  AZURE_CLIENT_ID: identityClientId

  // The recorder-events queue on the runtime account, keyless.
  AzureWebJobsStorage__accountName: runtimeStorage.name
  AzureWebJobsStorage__queueServiceUri: runtimeStorage.properties.primaryEndpoints.queue
  AzureWebJobsStorage__clientId: identityClientId
  RECORDER_EVENTS_QUEUE: 'recorder-events'

  // Evidence goes straight to the recordings account, keyless.
  RECORDINGS_STORAGE__accountName: recordingsStorage.name
  RECORDINGS_STORAGE__blobServiceUri: recordingsStorage.properties.primaryEndpoints.blob
  RECORDINGS_STORAGE__clientId: identityClientId
  RECORDINGS_CONTAINER: 'recordings'

  // The bot's Graph credential (answer, updateRecordingStatus, keepAlive).
  GRAPH_BASE_URL: graphBaseUrl
  GRAPH_AUTHORITY_HOST: graphAuthorityHost
  GRAPH_TENANT_ID: graphTenantId
  GRAPH_CLIENT_ID: graphClientId
  GRAPH_CLIENT_SECRET: '@Microsoft.KeyVault(SecretUri=${graphSecretUri})'
}

// Everything the bootstrap needs, in one object (base64 JSON on its command line, protected settings).
var bootstrapConfig = {
  packageUrl: packageUrl
  packageVersion: packageVersion
  clientId: identityClientId
  settings: recorderSettings
  loadBalancerId: loadBalancer.id
  backendPoolName: backendPoolName
  nicConfigName: nicConfigName
  ipConfigName: ipConfigName
  ports: ports
  certificateUrl: '${keyVaultUri}secrets/${certificateName}'
  publicFqdn: publicFqdn
  installScript: 'recorder_vm\\deploy\\install.ps1'
}

// Stage one: fetch the bootstrap from IMDS userData, write it, run it. Kept short: Windows command
// lines have length limits, the bootstrap itself does not.
var stageOne = 'powershell.exe -NoProfile -ExecutionPolicy Bypass -Command "$ErrorActionPreference=\'Stop\'; New-Item -ItemType Directory -Force -Path C:\\verbatim | Out-Null; $u=Invoke-RestMethod -Headers @{Metadata=\'true\'} -Uri \'http://169.254.169.254/metadata/instance/compute/userData?api-version=2021-01-01&format=text\'; [IO.File]::WriteAllBytes(\'C:\\verbatim\\bootstrap.ps1\', [Convert]::FromBase64String($u)); & C:\\verbatim\\bootstrap.ps1 -EncodedConfig \'${base64(string(bootstrapConfig))}\'; exit $LASTEXITCODE"'

resource scaleSet 'Microsoft.Compute/virtualMachineScaleSets@2024-07-01' = {
  name: scaleSetName
  location: location
  tags: tags
  zones: empty(zones) ? null : zones
  sku: { name: vmSize, tier: 'Standard', capacity: instanceCount }
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
      userData: loadFileAsBase64('../scripts/recorder-bootstrap.ps1')
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
                      keyExportable: false
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
              forceUpdateTag: packageVersion
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
        ]
      }
    }
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

resource autoscale 'Microsoft.Insights/autoscalesettings@2022-10-01' = {
  name: autoscaleName
  location: location
  tags: tags
  properties: {
    enabled: true
    targetResourceUri: scaleSet.id
    profiles: [
      {
        name: 'cpu'
        capacity: {
          minimum: string(instanceCount)
          maximum: string(maxInstanceCount)
          default: string(instanceCount)
        }
        rules: [
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
              threshold: 60
            }
            scaleAction: { direction: 'Increase', type: 'ChangeCount', value: '1', cooldown: 'PT10M' }
          }
          {
            // Slow and conservative; protected instances (holding calls) are never chosen.
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
