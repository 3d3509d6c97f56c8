// Key Vault (RBAC mode, purge protection): the Graph app credential, the clientState shared with
// Graph subscriptions, the webhook URLs and the ledger signing key. Traces to
// ARCHITECTURE.md "Evidence and trust" (periodic ledger roots signed with a Key Vault key) and
// "Data flow" steps 1-2 and 7 (the bot's Graph credential; the webhook checks clientState).
// Secrets are written by ARM from secure parameters; nobody gets a data-plane role on the whole
// vault (rbac.bicep): every assignment names one secret or the key. The recorder's TLS certificate
// lives in a vault of its own (certificate-vault.bicep).

param location string
param tags object
param name string

@description('Recover this environment\'s soft-deleted vault instead of creating it (after `azd down`; purge protection keeps the name).')
param recover bool = false

@secure()
param graphClientSecret string

@secure()
param graphClientState string

@allowed(['Enabled', 'SelectedNetworks'])
param publicNetworkAccess string = 'Enabled'
param allowedIpRanges array = []
param allowedSubnetIds array = []

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: { family: 'A', name: 'standard' }
    createMode: recover ? 'recover' : 'default'
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    // Certificates reach the VMs through the Key Vault VM extension, not osProfile.secrets.
    enabledForDeployment: false
    enabledForTemplateDeployment: false
    enabledForDiskEncryption: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: publicNetworkAccess == 'SelectedNetworks' ? 'Deny' : 'Allow'
      bypass: 'AzureServices'
      ipRules: [for range in allowedIpRanges: { value: range }]
      virtualNetworkRules: [for subnetId in allowedSubnetIds: { id: subnetId }]
    }
  }
}

resource graphSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'graph-client-secret'
  properties: {
    value: graphClientSecret
    contentType: 'Entra app client secret (Microsoft Graph, Teams calling bot)'
  }
}

resource clientState 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'graph-client-state'
  properties: {
    value: graphClientState
    contentType: 'clientState of Graph change-notification subscriptions'
  }
}

// The ledger's checkpoint signing key: never leaves the vault; the app signs through the vault.
// Rotated yearly by Key Vault itself; each new version expires two years after it is made, with a
// notification a month before (https://learn.microsoft.com/azure/key-vault/keys/how-to-configure-key-rotation).
// The app names the key without a version, so it signs with the current one from its next start, and
// every checkpoint carries its own public key: verification trusts every version of this key
// (verbatim.ledger), so rotation never breaks the verification of older checkpoints.
resource ledgerKey 'Microsoft.KeyVault/vaults/keys@2023-07-01' = {
  parent: vault
  name: 'ledger-signing'
  properties: {
    kty: 'EC'
    curveName: 'P-256'
    keyOps: ['sign', 'verify']
    rotationPolicy: {
      attributes: { expiryTime: 'P2Y' }
      lifetimeActions: [
        { trigger: { timeAfterCreate: 'P1Y' }, action: { type: 'rotate' } }
        { trigger: { timeBeforeExpiry: 'P30D' }, action: { type: 'notify' } }
      ]
    }
  }
}

output name string = vault.name
output id string = vault.id
output uri string = vault.properties.vaultUri
output graphClientSecretName string = graphSecret.name
output graphClientSecretUri string = graphSecret.properties.secretUri
output graphClientStateName string = clientState.name
output graphClientStateUri string = clientState.properties.secretUri
output ledgerKeyName string = ledgerKey.name
output ledgerKeyUri string = ledgerKey.properties.keyUri
output ledgerKeyUriWithVersion string = ledgerKey.properties.keyUriWithVersion
