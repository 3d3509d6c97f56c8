// User-assigned managed identities: one for the Function App, one for the recorder scale set.
// Traces to ARCHITECTURE.md "Choices of library" (azure-identity, keyless identity-based connections)
// and "The pieces and where they live" (function_app.py, recorder_vm/): each compute tier gets its own
// identity so its roles (rbac.bicep) can be as small as its job.

param location string
param tags object
param functionIdentityName string
param recorderIdentityName string

resource functionIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: functionIdentityName
  location: location
  tags: tags
}

resource recorderIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: recorderIdentityName
  location: location
  tags: tags
}

output functionIdentityId string = functionIdentity.id
output functionClientId string = functionIdentity.properties.clientId
output functionPrincipalId string = functionIdentity.properties.principalId
output recorderIdentityId string = recorderIdentity.id
output recorderClientId string = recorderIdentity.properties.clientId
output recorderPrincipalId string = recorderIdentity.properties.principalId
