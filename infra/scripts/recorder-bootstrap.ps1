<#
.SYNOPSIS
    Verbatim recorder bootstrap: gets the recorder package onto a scale-set instance and runs its
    installer (recorder_vm\deploy\install.ps1).

.DESCRIPTION
    Shipped in the scale set's userData (base64 JSON {bootstrap, config}) and started by the
    custom-script extension (infra/modules/recorder.bicep) with -FromUserData. The config holds packageUrl, packageVersion,
    clientId (the managed identity), settings (the recorder's app settings), loadBalancerId,
    backendPoolName, natRuleNames, nicConfigName, ipConfigName, ports, certificateUrl, publicFqdn and
    installScript.

    1. Downloads the package blob with the managed identity. If it is not published yet (the first
       `azd up` provisions before it deploys), registers a scheduled task that re-runs this script
       with -Wait and exits successfully, so provisioning never waits on deployment.
    2. Resolves settings of the form @Microsoft.KeyVault(SecretUri=...) through Key Vault.
    3. Asks the load balancer which public ports (NAT rules v2) belong to this instance and adds them to
       the settings (RECORDER_CALLBACK_PUBLIC_PORT, RECORDER_MEDIA_PUBLIC_PORT). The instance's public IP
       comes from IMDS's load balancer metadata, read by the installer (recorder_vm.deploy.instance_endpoints).
    4. Writes the settings (JSON: app-setting name -> value) and the instance facts to files readable by
       SYSTEM and Administrators only, and runs the package's installer with them. The installer exits
       with 3 while the TLS certificate is not on the VM yet (it is imported into Key Vault after
       `azd up`): the same scheduled task tries again every 15 minutes until the install succeeds.
    Windows PowerShell 5.1 (what Windows Server 2022 ships); idempotent per package version.
#>
[CmdletBinding(DefaultParameterSetName = 'UserData')]
param(
    # Read the configuration from this VM's userData (IMDS).
    [Parameter(Mandatory = $true, ParameterSetName = 'UserData')]
    [switch] $FromUserData,

    [Parameter(Mandatory = $true, ParameterSetName = 'File')]
    [string] $ConfigFile,

    # Keep polling for the package instead of deferring to a scheduled task.
    [switch] $Wait,

    [int] $WaitMinutes = 240,

    [string] $Root = 'C:\verbatim'
)

$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
Set-StrictMode -Version 2.0
[Net.ServicePointManager]::SecurityProtocol = [Net.SecurityProtocolType]::Tls12

$TaskName = 'VerbatimRecorderInstall'
$Imds = 'http://169.254.169.254/metadata'

function Write-Log {
    param([string] $Message)
    $line = '{0:o} {1}' -f (Get-Date).ToUniversalTime(), $Message
    Add-Content -Path (Join-Path $Root 'bootstrap.log') -Value $line
    Write-Output $line
}

function New-PrivateDirectory {
    param([string] $Path)
    New-Item -ItemType Directory -Force -Path $Path | Out-Null
}

function Protect-File {
    # Only SYSTEM and Administrators may read it (the installer grants the service account).
    param([string] $Path)
    & icacls.exe $Path /inheritance:r /grant:r 'SYSTEM:(F)' 'Administrators:(F)' | Out-Null
    if ($LASTEXITCODE -ne 0) { throw "icacls failed on $Path" }
}

function Write-PrivateJson {
    param([string] $Path, [object] $Value)
    $json = $Value | ConvertTo-Json -Depth 10
    [IO.File]::WriteAllText($Path, $json, (New-Object Text.UTF8Encoding($false)))
    Protect-File -Path $Path
}

function Get-ManagedIdentityToken {
    param([string] $Resource, [string] $ClientId)
    $uri = '{0}/identity/oauth2/token?api-version=2018-02-01&resource={1}&client_id={2}' -f `
        $Imds, [Uri]::EscapeDataString($Resource), $ClientId
    $response = Invoke-RestMethod -Uri $uri -Headers @{ Metadata = 'true' } -UseBasicParsing
    return $response.access_token
}

function Get-HttpStatus {
    param($ErrorRecord)
    $response = $ErrorRecord.Exception.Response
    if ($null -eq $response) { return 0 }
    return [int]$response.StatusCode
}

function Receive-Package {
    # $true when the package was downloaded, $false when it is not published yet (404).
    param($Config, [string] $Destination)
    $token = Get-ManagedIdentityToken -Resource 'https://storage.azure.com/' -ClientId $Config.clientId
    $headers = @{ Authorization = "Bearer $token"; 'x-ms-version' = '2023-11-03' }
    try {
        Invoke-WebRequest -Uri $Config.packageUrl -Headers $headers -OutFile $Destination -UseBasicParsing
        return $true
    }
    catch {
        $status = Get-HttpStatus $_
        # 404: not uploaded yet. 403: the blob role may still be propagating after provisioning.
        if ($status -eq 404 -or $status -eq 403) {
            Write-Log "package not available yet (HTTP $status)"
            return $false
        }
        throw
    }
}

function Resolve-Settings {
    # Returns an ordered hashtable of the settings with Key Vault references replaced by values.
    param($Config)
    $pattern = '^@Microsoft\.KeyVault\(SecretUri=(?<uri>[^)]+)\)$'
    $vaultToken = $null
    $resolved = [ordered]@{}
    foreach ($property in $Config.settings.PSObject.Properties) {
        $value = [string]$property.Value
        if ($value -match $pattern) {
            if ($null -eq $vaultToken) {
                $vaultToken = Get-ManagedIdentityToken -Resource 'https://vault.azure.net' -ClientId $Config.clientId
            }
            $secretUri = $Matches['uri'].TrimEnd('/') + '?api-version=7.4'
            $secret = Invoke-RestMethod -Uri $secretUri -Headers @{ Authorization = "Bearer $vaultToken" } -UseBasicParsing
            $value = $secret.value
        }
        $resolved[$property.Name] = $value
    }
    return $resolved
}

function Get-InstanceFacts {
    # This instance's id and the public ports the load balancer gave it (NAT rules v2).
    param($Config)
    $compute = Invoke-RestMethod -Uri "$Imds/instance/compute?api-version=2021-02-01" -Headers @{ Metadata = 'true' } -UseBasicParsing
    $ipConfigurationId = '{0}/networkInterfaces/{1}/ipConfigurations/{2}' -f `
        $compute.resourceId, $Config.nicConfigName, $Config.ipConfigName
    $uri = 'https://management.azure.com{0}/backendAddressPools/{1}/queryInboundNatRulePortMapping?api-version=2024-05-01' -f `
        $Config.loadBalancerId, $Config.backendPoolName
    $body = @{ ipConfiguration = @{ id = $ipConfigurationId } } | ConvertTo-Json -Depth 4

    $mappings = $null
    for ($attempt = 1; $attempt -le 20 -and $null -eq $mappings; $attempt++) {
        try {
            $token = Get-ManagedIdentityToken -Resource 'https://management.azure.com/' -ClientId $Config.clientId
            $headers = @{ Authorization = "Bearer $token" }
            $response = Invoke-WebRequest -Uri $uri -Method Post -Body $body -ContentType 'application/json' `
                -Headers $headers -UseBasicParsing
            # The query is a long-running operation: 202 with a Location to poll.
            while ([int]$response.StatusCode -eq 202) {
                Start-Sleep -Seconds 2
                $response = Invoke-WebRequest -Uri $response.Headers['Location'] -Headers $headers -UseBasicParsing
            }
            $mappings = ($response.Content | ConvertFrom-Json).inboundNatRulePortMappings
        }
        catch {
            # The role assignment can take minutes to propagate after provisioning.
            Write-Log "NAT port mapping not readable yet (attempt $attempt): $($_.Exception.Message)"
            Start-Sleep -Seconds 30
        }
    }
    if ($null -eq $mappings) { throw 'could not read this instance''s NAT port mapping' }

    $publicPorts = [ordered]@{}
    foreach ($mapping in $mappings) {
        $publicPorts[$mapping.inboundNatRuleName] = [int]$mapping.frontendPort
    }
    return [ordered]@{
        vmResourceId = $compute.resourceId
        instanceName = $compute.name
        packageVersion = $Config.packageVersion
        certificateUrl = $Config.certificateUrl
        publicFqdn = $Config.publicFqdn
        internalPorts = $Config.ports
        publicPorts = $publicPorts
    }
}

function Register-DeferredInstall {
    param([string] $ConfigPath)
    $arguments = '-NoProfile -ExecutionPolicy Bypass -File "{0}" -ConfigFile "{1}" -Wait' -f `
        (Join-Path $Root 'bootstrap.ps1'), $ConfigPath
    $action = New-ScheduledTaskAction -Execute 'powershell.exe' -Argument $arguments
    # At start-up, and every 15 minutes until an install succeeds (which removes the task).
    $triggers = @(
        (New-ScheduledTaskTrigger -AtStartup),
        (New-ScheduledTaskTrigger -Once -At (Get-Date).AddMinutes(1) -RepetitionInterval (New-TimeSpan -Minutes 15))
    )
    $principal = New-ScheduledTaskPrincipal -UserId 'SYSTEM' -LogonType ServiceAccount -RunLevel Highest
    $settings = New-ScheduledTaskSettingsSet -ExecutionTimeLimit (New-TimeSpan -Hours 6) -StartWhenAvailable `
        -MultipleInstances IgnoreNew
    Register-ScheduledTask -TaskName $TaskName -Action $action -Trigger $triggers -Principal $principal `
        -Settings $settings -Force | Out-Null
}

# ----- main -----------------------------------------------------------------------------------

New-PrivateDirectory -Path $Root
$configDirectory = Join-Path $Root 'config'
New-PrivateDirectory -Path $configDirectory

if ($PSCmdlet.ParameterSetName -eq 'UserData') {
    $userData = Invoke-RestMethod -Uri "$Imds/instance/compute/userData?api-version=2021-01-01&format=text" `
        -Headers @{ Metadata = 'true' } -UseBasicParsing
    $document = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($userData)) | ConvertFrom-Json
    $ConfigFile = Join-Path $configDirectory 'bootstrap.json'
    Write-PrivateJson -Path $ConfigFile -Value $document.config
}
$configText = Get-Content -Raw -Path $ConfigFile
$config = $configText | ConvertFrom-Json

# One marker per package version and configuration: a settings change re-runs the installer too.
$sha = [Security.Cryptography.SHA256]::Create()
$configHash = -join ($sha.ComputeHash([Text.Encoding]::UTF8.GetBytes($configText))[0..7] | ForEach-Object { $_.ToString('x2') })
$releaseDirectory = Join-Path $Root ('releases\' + $config.packageVersion)
$installedMarker = Join-Path $releaseDirectory ('.installed-' + $configHash)
if (Test-Path $installedMarker) {
    Write-Log "recorder $($config.packageVersion) is already installed with this configuration"
    exit 0
}

$packageDirectory = Join-Path $Root 'packages'
New-PrivateDirectory -Path $packageDirectory
$packageFile = Join-Path $packageDirectory ('verbatim-recorder-' + $config.packageVersion + '.zip')

$deadline = (Get-Date).AddMinutes($WaitMinutes)
while (-not (Receive-Package -Config $config -Destination $packageFile)) {
    if (-not $Wait) {
        Register-DeferredInstall -ConfigPath $ConfigFile
        Write-Log "package $($config.packageVersion) not published yet; scheduled task $TaskName will install it"
        exit 0
    }
    if ((Get-Date) -gt $deadline) {
        throw "package $($config.packageUrl) did not appear within $WaitMinutes minutes"
    }
    Start-Sleep -Seconds 60
}
Write-Log "downloaded recorder package $($config.packageVersion)"

# A release directory is written once per package version (a running service may use its files).
if (-not (Test-Path (Join-Path $releaseDirectory $config.installScript))) {
    Expand-Archive -Path $packageFile -DestinationPath $releaseDirectory -Force
}

$settings = Resolve-Settings -Config $config
$facts = Get-InstanceFacts -Config $config
# This instance's own public ports (recorder_vm.settings names).
$settings['RECORDER_CALLBACK_PUBLIC_PORT'] = [string]$facts.publicPorts[$config.natRuleNames.callback]
$settings['RECORDER_MEDIA_PUBLIC_PORT'] = [string]$facts.publicPorts[$config.natRuleNames.media]
foreach ($name in 'RECORDER_CALLBACK_PUBLIC_PORT', 'RECORDER_MEDIA_PUBLIC_PORT') {
    if (-not $settings[$name]) { throw "could not determine $name for this instance" }
}
$settingsFile = Join-Path $configDirectory 'recorder-settings.json'
Write-PrivateJson -Path $settingsFile -Value $settings
$instanceFile = Join-Path $configDirectory 'instance.json'
Write-PrivateJson -Path $instanceFile -Value $facts

$installer = Join-Path $releaseDirectory $config.installScript
if (-not (Test-Path $installer)) { throw "the package has no installer at $($config.installScript)" }
Write-Log "running $installer"
& $installer -PackageRoot $releaseDirectory -SettingsFile $settingsFile -InstanceFile $instanceFile
$installed = $LASTEXITCODE
if ($installed -eq 3) {
    # No TLS certificate yet (imported after `azd up`): try again from the scheduled task.
    Register-DeferredInstall -ConfigPath $ConfigFile
    Write-Log "waiting for the TLS certificate; scheduled task $TaskName retries every 15 minutes"
    exit 0
}
if ($installed -ne 0) { throw "installer failed with exit code $installed" }

New-Item -ItemType File -Force -Path $installedMarker | Out-Null
if (Get-ScheduledTask -TaskName $TaskName -ErrorAction SilentlyContinue) {
    Unregister-ScheduledTask -TaskName $TaskName -Confirm:$false
}
Write-Log "recorder $($config.packageVersion) installed"
exit 0
