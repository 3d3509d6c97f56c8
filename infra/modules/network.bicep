// The recorder's network: a virtual network, the NSG with the signalling, per-instance notification
// and media ports, and a Standard load balancer (443 to every instance; NAT rules v2 for the
// per-instance ports). Traces to ARCHITECTURE.md "Data flow of one recorded call", steps 1-2: Teams
// POSTs the incoming call to the load-balanced webhook, the recorder answers with its own per-instance
// callbackUri so later notifications stick to it. The subnet for the Function App's VNet integration
// lives here too (used when publicNetworkAccess is SelectedNetworks).

param location string
param tags object
param vnetName string
param nsgName string
param loadBalancerName string
param loadBalancerIpName string
param dnsLabel string

@description('The port plan from main.bicep (signalling, notification, media and their public ranges).')
param ports object

// Where Teams comes from: the Microsoft 365 endpoint sets Microsoft publishes for Teams
// (https://learn.microsoft.com/microsoft-365/enterprise/urls-and-ip-address-ranges, "Microsoft Teams":
// ID 11, UDP 3478-3481, and ID 12, TCP 443, both 52.112.0.0/14 and 52.122.0.0/15 for IPv4). These are
// Microsoft 365 ranges, not Azure datacenter ranges: the AzureCloud service tag does not contain them.
@description('Source prefixes of Teams signalling and media control (TCP): the recorder\'s webhook, per-instance notifications and media platform control.')
param teamsSignallingPrefixes array = ['52.112.0.0/14', '52.122.0.0/15']

@description('Source prefixes of Teams media (UDP) to each instance\'s public IP.')
param teamsMediaPrefixes array = ['52.112.0.0/14', '52.122.0.0/15']

@description('Operators\' public ranges (CIDR) also allowed to the load-balanced port (/health, what `verbatim doctor` checks); empty: none.')
param operatorPrefixes array = []

param addressPrefix string = '10.60.0.0/16'
param recorderSubnetPrefix string = '10.60.1.0/24'
param functionsSubnetPrefix string = '10.60.2.0/24'

var backendPoolName = 'recorders'
var frontendName = 'public'
var probeName = 'signalling-health'
var notificationRuleName = 'notification'
var mediaRuleName = 'media-control'

resource nsg 'Microsoft.Network/networkSecurityGroups@2024-05-01' = {
  name: nsgName
  location: location
  tags: tags
  properties: {
    securityRules: [
      {
        // Incoming-call webhook through the load balancer (public 443), and /health for the operators'
        // checks. Every request's JWT is validated by the recorder as well.
        name: 'allow-teams-signalling'
        properties: {
          priority: 100
          direction: 'Inbound'
          access: 'Allow'
          protocol: 'Tcp'
          sourceAddressPrefixes: concat(teamsSignallingPrefixes, operatorPrefixes)
          sourcePortRange: '*'
          destinationAddressPrefix: '*'
          destinationPortRange: string(ports.signalling)
        }
      }
      {
        // Per-instance call notifications (the answer's callbackUri), reached through NAT rule v2.
        name: 'allow-teams-notifications'
        properties: {
          priority: 110
          direction: 'Inbound'
          access: 'Allow'
          protocol: 'Tcp'
          sourceAddressPrefixes: teamsSignallingPrefixes
          sourcePortRange: '*'
          destinationAddressPrefix: '*'
          destinationPortRange: string(ports.notification)
        }
      }
      {
        // Media platform control channel (TCP/TLS), reached through NAT rule v2.
        name: 'allow-teams-media-control'
        properties: {
          priority: 120
          direction: 'Inbound'
          access: 'Allow'
          protocol: 'Tcp'
          sourceAddressPrefixes: teamsSignallingPrefixes
          sourcePortRange: '*'
          destinationAddressPrefix: '*'
          destinationPortRange: string(ports.media)
        }
      }
      {
        // Media itself (RTP over UDP, ephemeral ports) straight to each instance's public IP.
        name: 'allow-teams-media-udp'
        properties: {
          priority: 130
          direction: 'Inbound'
          access: 'Allow'
          protocol: 'Udp'
          sourceAddressPrefixes: teamsMediaPrefixes
          sourcePortRange: '*'
          destinationAddressPrefix: '*'
          destinationPortRange: '*'
        }
      }
      {
        // Nothing else from the internet: no RDP, no WinRM (the default rules would already deny it;
        // this rule makes the intent visible and survives edits above). The load balancer's probes
        // come from the AzureLoadBalancer tag, which the default rule 65001 allows.
        name: 'deny-other-internet-inbound'
        properties: {
          priority: 4000
          direction: 'Inbound'
          access: 'Deny'
          protocol: '*'
          sourceAddressPrefix: 'Internet'
          sourcePortRange: '*'
          destinationAddressPrefix: '*'
          destinationPortRange: '*'
        }
      }
    ]
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: vnetName
  location: location
  tags: tags
  properties: {
    addressSpace: { addressPrefixes: [addressPrefix] }
    subnets: [
      {
        name: 'recorder'
        properties: {
          addressPrefix: recorderSubnetPrefix
          networkSecurityGroup: { id: nsg.id }
          serviceEndpoints: [{ service: 'Microsoft.Storage' }, { service: 'Microsoft.KeyVault' }]
        }
      }
      {
        name: 'functions'
        properties: {
          addressPrefix: functionsSubnetPrefix
          serviceEndpoints: [
            { service: 'Microsoft.Storage' }
            { service: 'Microsoft.KeyVault' }
            { service: 'Microsoft.AzureCosmosDB' }
          ]
          delegations: [
            { name: 'flex', properties: { serviceName: 'Microsoft.App/environments' } }
          ]
        }
      }
    ]
  }
}

resource loadBalancerIp 'Microsoft.Network/publicIPAddresses@2024-05-01' = {
  name: loadBalancerIpName
  location: location
  tags: tags
  sku: { name: 'Standard', tier: 'Regional' }
  properties: {
    publicIPAllocationMethod: 'Static'
    publicIPAddressVersion: 'IPv4'
    dnsSettings: { domainNameLabel: dnsLabel }
  }
}

var frontendId = resourceId('Microsoft.Network/loadBalancers/frontendIPConfigurations', loadBalancerName, frontendName)
var backendPoolId = resourceId('Microsoft.Network/loadBalancers/backendAddressPools', loadBalancerName, backendPoolName)

resource loadBalancer 'Microsoft.Network/loadBalancers@2024-05-01' = {
  name: loadBalancerName
  location: location
  tags: tags
  sku: { name: 'Standard', tier: 'Regional' }
  properties: {
    frontendIPConfigurations: [
      { name: frontendName, properties: { publicIPAddress: { id: loadBalancerIp.id } } }
    ]
    backendAddressPools: [{ name: backendPoolName }]
    probes: [
      {
        // /health answers unhealthy while the recorder drains, so the balancer stops sending it new
        // calls while per-instance notifications (NAT rules, no probe) keep reaching its live calls.
        name: probeName
        properties: {
          protocol: 'Https'
          port: ports.signalling
          requestPath: '/health'
          intervalInSeconds: 5
          numberOfProbes: 2
          probeThreshold: 2
        }
      }
    ]
    loadBalancingRules: [
      {
        name: 'signalling'
        properties: {
          protocol: 'Tcp'
          frontendPort: 443
          backendPort: ports.signalling
          frontendIPConfiguration: { id: frontendId }
          backendAddressPool: { id: backendPoolId }
          probe: { id: resourceId('Microsoft.Network/loadBalancers/probes', loadBalancerName, probeName) }
          idleTimeoutInMinutes: 15
          // Instances have their own public IPs, which carry their outbound traffic.
          disableOutboundSnat: true
        }
      }
    ]
    // NAT rules v2 (frontend port range + backend pool): v1 rules and NAT pools retire in 2027.
    // The balancer gives each instance one port from each range; the recorder's bootstrap asks the
    // balancer which ones are its own (queryInboundNatRulePortMapping) instead of guessing.
    inboundNatRules: [
      {
        name: notificationRuleName
        properties: {
          protocol: 'Tcp'
          frontendPortRangeStart: ports.notificationPublicStart
          frontendPortRangeEnd: ports.notificationPublicStart + ports.publicRangeSize - 1
          backendPort: ports.notification
          frontendIPConfiguration: { id: frontendId }
          backendAddressPool: { id: backendPoolId }
          idleTimeoutInMinutes: 15
        }
      }
      {
        name: mediaRuleName
        properties: {
          protocol: 'Tcp'
          frontendPortRangeStart: ports.mediaPublicStart
          frontendPortRangeEnd: ports.mediaPublicStart + ports.publicRangeSize - 1
          backendPort: ports.media
          frontendIPConfiguration: { id: frontendId }
          backendAddressPool: { id: backendPoolId }
          idleTimeoutInMinutes: 15
        }
      }
    ]
  }
}

output recorderSubnetId string = vnet.properties.subnets[0].id
output functionsSubnetId string = vnet.properties.subnets[1].id
output loadBalancerName string = loadBalancer.name
output loadBalancerId string = loadBalancer.id
output backendPoolName string = backendPoolName
output natRuleNames object = { callback: notificationRuleName, media: mediaRuleName }
output loadBalancerFqdn string = loadBalancerIp.properties.dnsSettings.fqdn
output loadBalancerIp string = loadBalancerIp.properties.ipAddress
