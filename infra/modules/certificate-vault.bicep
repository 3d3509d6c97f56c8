// The Key Vault that holds the recorder's TLS certificate and nothing else. Traces to ARCHITECTURE.md
// "Data flow of one recorded call", steps 1-2 (the recorder's HTTPS endpoints and the media platform use
// the certificate of RECORDER_FQDN) and "Evidence and trust" (least privilege: the webhook key, the
// clientState and the ledger key stay out of the recorder's reach).
//
// Why a vault of its own: the Key Vault VM extension reads a certificate through its backing secret
// (`.../secrets/<name>`), so the recorder's identity needs a secret-reading role, and the certificate
// is imported after provisioning, so that role cannot be scoped to a secret that does not exist yet.
// Key Vault Certificate User (or Secrets User) on the main vault would let the recorder read every
// secret there (https://learn.microsoft.com/azure/key-vault/general/rbac-guide, "Key Vault scope
// role assignment ... applies to all keys, secrets and certificates"). Here, reading every secret means
// reading the certificate. The role assignments are in rbac.bicep.

param location string
param tags object
param name string

@description('Recover this environment\'s soft-deleted vault instead of creating it (after `azd down`; purge protection keeps the name).')
param recover bool = false

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
    // The Key Vault VM extension fetches the certificate with the managed identity (not osProfile.secrets).
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

output name string = vault.name
output id string = vault.id
output uri string = vault.properties.vaultUri
