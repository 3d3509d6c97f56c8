<#
.SYNOPSIS
    Installs (or upgrades) the Verbatim recorder on a Windows scale-set instance.

.DESCRIPTION
    Run by infra/scripts/recorder-bootstrap.ps1 with the unpacked package, the recorder's app settings
    (JSON: name -> value, Key Vault references already resolved) and this instance's facts (JSON:
    instanceName, publicFqdn, internalPorts, publicPorts, ...). Idempotent; Windows PowerShell 5.1.

    1. Installs Python 3.11 for all users from the installer shipped in the package (its Authenticode
       signature must be the Python Software Foundation's).
    2. Creates a venv per package version and installs recorder_vm\requirements.txt (exact pins) from
       the wheels shipped in the package, falling back to PyPI only when a wheel is missing.
    3. Installs Microsoft's media library (NuGet package Microsoft.Skype.Bots.Media, pinned version).
    4. Finds the certificate the Key Vault extension installed for the public FQDN, exports it as PEM
       for the recorder's TLS listener (readable by SYSTEM and Administrators only) and hands its
       thumbprint to the media platform.
    5. Writes the recorder's environment (settings + instance facts) and registers the Windows service
       VerbatimRecorder, which restarts on failure.
    6. Opens the firewall for the signalling, notification and media ports, then starts the service and
       waits until /health/live answers.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)] [string] $PackageRoot,
    [Parameter(Mandatory = $true)] [string] $SettingsFile,
    [Parameter(Mandatory = $true)] [string] $InstanceFile,
    [string] $Root = 'C:\verbatim'
)

$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
Set-StrictMode -Version 2.0

$PythonVersion = '3.11.9'
$PythonDirectory = 'C:\Program Files\Python311'
$MediaLibraryPackage = 'Microsoft.Skype.Bots.Media'
$MediaLibraryVersion = '1.31.0.225-preview'
$ServiceName = 'VerbatimRecorder'
$AdminPort = 9440  # plain HTTP, 127.0.0.1 only: health and admin routes for local scripts
$Imds = 'http://169.254.169.254/metadata'

function Write-Log {
    param([string] $Message)
    $line = '{0:o} install: {1}' -f (Get-Date).ToUniversalTime(), $Message
    Add-Content -Path (Join-Path $Root 'install.log') -Value $line
    Write-Output $line
}

function Protect-Path {
    # SYSTEM and Administrators only: the files hold secrets (Graph credential, TLS key).
    param([string] $Path)
    & icacls.exe $Path /inheritance:r /grant:r 'SYSTEM:(OI)(CI)F' 'Administrators:(OI)(CI)F' | Out-Null
    if ($LASTEXITCODE -ne 0) { throw "icacls failed on $Path" }
}

function Invoke-Checked {
    param([string] $FilePath, [string[]] $Arguments)
    & $FilePath @Arguments
    if ($LASTEXITCODE -ne 0) { throw "$FilePath exited with $LASTEXITCODE" }
}

function Install-Python {
    $python = Join-Path $PythonDirectory 'python.exe'
    if (Test-Path $python) {
        $installed = (& $python -c 'import platform; print(platform.python_version())').Trim()
        if ($installed -eq $PythonVersion) { return $python }
    }
    $installer = Join-Path $PackageRoot ('vendor\python-{0}-amd64.exe' -f $PythonVersion)
    if (-not (Test-Path $installer)) { throw "the package has no Python installer at $installer" }
    $signature = Get-AuthenticodeSignature -FilePath $installer
    if ($signature.Status -ne 'Valid' -or $signature.SignerCertificate.Subject -notmatch 'Python Software Foundation') {
        throw "the Python installer's signature is not valid: $($signature.StatusMessage)"
    }
    Write-Log "installing Python $PythonVersion"
    $arguments = @('/quiet', 'InstallAllUsers=1', 'PrependPath=0', 'Include_test=0', "TargetDir=$PythonDirectory")
    $process = Start-Process -FilePath $installer -ArgumentList $arguments -Wait -PassThru
    if ($process.ExitCode -ne 0) { throw "the Python installer exited with $($process.ExitCode)" }
    return $python
}

function New-RecorderVenv {
    param([string] $Python, [string] $Version)
    $venv = Join-Path $Root ('venv\' + $Version)
    $venvPython = Join-Path $venv 'Scripts\python.exe'
    if (-not (Test-Path $venvPython)) {
        Invoke-Checked $Python @('-m', 'venv', $venv)
    }
    $requirements = Join-Path $PackageRoot 'recorder_vm\requirements.txt'
    $wheels = Join-Path $PackageRoot 'wheels'
    $pipArguments = @('-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', '-r', $requirements)
    if (Test-Path $wheels) { $pipArguments += @('--find-links', $wheels) }
    Write-Log "installing the pinned requirements into $venv"
    Invoke-Checked $venvPython $pipArguments
    return $venvPython
}

function Install-MediaLibrary {
    $target = Join-Path $Root ('media\' + $MediaLibraryVersion)
    if (-not (Test-Path (Join-Path $target '.installed'))) {
        $shipped = Join-Path $PackageRoot ('vendor\{0}.{1}.nupkg' -f $MediaLibraryPackage, $MediaLibraryVersion)
        $nupkg = Join-Path $env:TEMP ('{0}.{1}.zip' -f $MediaLibraryPackage, $MediaLibraryVersion)
        if (Test-Path $shipped) {
            Copy-Item -Path $shipped -Destination $nupkg -Force
        }
        else {
            $url = 'https://api.nuget.org/v3-flatcontainer/{0}/{1}/{0}.{1}.nupkg' -f $MediaLibraryPackage.ToLowerInvariant(), $MediaLibraryVersion
            Write-Log "downloading $MediaLibraryPackage $MediaLibraryVersion"
            Invoke-WebRequest -Uri $url -OutFile $nupkg -UseBasicParsing
        }
        if (Test-Path $target) { Remove-Item -Recurse -Force $target }
        Expand-Archive -Path $nupkg -DestinationPath $target -Force
        New-Item -ItemType File -Force -Path (Join-Path $target '.installed') | Out-Null
    }
    $assembly = Get-ChildItem -Path (Join-Path $target 'lib') -Recurse -Filter "$MediaLibraryPackage.dll" | Select-Object -First 1
    if ($null -eq $assembly) { throw "no $MediaLibraryPackage.dll in the media library package" }
    return $assembly.DirectoryName
}

function Find-Certificate {
    param([string] $Fqdn)
    $wildcard = '*.' + ($Fqdn -replace '^[^.]+\.', '')
    $candidates = Get-ChildItem -Path Cert:\LocalMachine\My | Where-Object {
        $_.HasPrivateKey -and $_.NotAfter -gt (Get-Date) -and
        (($_.DnsNameList | ForEach-Object { $_.Unicode }) -contains $Fqdn -or
         ($_.DnsNameList | ForEach-Object { $_.Unicode }) -contains $wildcard)
    }
    $certificate = $candidates | Sort-Object -Property NotAfter -Descending | Select-Object -First 1
    if ($null -eq $certificate) { throw "no certificate for $Fqdn in LocalMachine\My (Key Vault extension)" }
    return $certificate
}

function Export-CertificatePem {
    # The TLS listener (Python) needs the key as PEM; the media platform uses the store by thumbprint.
    param($Certificate, [string] $Python, [string] $Directory)
    $password = [Guid]::NewGuid().ToString('N')
    $pfx = Join-Path $Directory 'recorder.pfx'
    $secure = ConvertTo-SecureString -String $password -AsPlainText -Force
    Export-PfxCertificate -Cert $Certificate -FilePath $pfx -Password $secure | Out-Null
    $converter = Join-Path $PackageRoot 'recorder_vm\deploy\pfx_to_pem.py'
    $env:VERBATIM_PFX_PASSWORD = $password
    try {
        Invoke-Checked $Python @($converter, $pfx, (Join-Path $Directory 'tls-cert.pem'), (Join-Path $Directory 'tls-key.pem'))
    }
    finally {
        Remove-Item Env:\VERBATIM_PFX_PASSWORD
        Remove-Item -Force $pfx
    }
}

function Get-PublicIp {
    $uri = "$Imds/instance/network/interface/0/ipv4/ipAddress/0/publicIpAddress?api-version=2021-02-01&format=text"
    return (Invoke-RestMethod -Uri $uri -Headers @{ Metadata = 'true' } -UseBasicParsing).Trim()
}

function Write-Environment {
    param($Settings, $Instance, $Certificate, [string] $MediaLibraryDirectory, [string] $Path)
    $environment = [ordered]@{}
    foreach ($property in $Settings.PSObject.Properties) { $environment[$property.Name] = [string]$property.Value }
    $config = Join-Path $Root 'config'
    # The recorder and the domain package it imports run from the unpacked package.
    $environment['PYTHONPATH'] = $PackageRoot
    $environment['RECORDER_INSTANCE_ID'] = [string]$Instance.instanceName
    $environment['RECORDER_STATE_DIR'] = Join-Path $Root 'state'
    $environment['RECORDER_MEDIA_PLATFORM'] = 'windows'
    $environment['RECORDER_MEDIA_LIBRARY_DIR'] = $MediaLibraryDirectory
    $environment['RECORDER_LISTEN_HOST'] = '0.0.0.0'
    $environment['RECORDER_LISTEN_PORT'] = [string]$Instance.internalPorts.signalling
    $environment['RECORDER_ADMIN_PORT'] = [string]$AdminPort
    $environment['RECORDER_CALLBACK_LISTEN_PORT'] = [string]$Instance.internalPorts.notification
    $environment['RECORDER_SERVICE_FQDN'] = [string]$Instance.publicFqdn
    $environment['RECORDER_CALLBACK_PUBLIC_PORT'] = [string]$Instance.publicPorts.notification
    $environment['RECORDER_MEDIA_PORT'] = [string]$Instance.internalPorts.media
    $environment['RECORDER_MEDIA_PUBLIC_PORT'] = [string]$Instance.publicPorts.'media-control'
    $environment['RECORDER_MEDIA_PUBLIC_IP'] = Get-PublicIp
    $environment['RECORDER_CERTIFICATE_THUMBPRINT'] = $Certificate.Thumbprint
    $environment['RECORDER_TLS_CERT_FILE'] = Join-Path $config 'tls-cert.pem'
    $environment['RECORDER_TLS_KEY_FILE'] = Join-Path $config 'tls-key.pem'
    $environment['RECORDER_SCHEDULED_EVENTS_ENABLED'] = 'true'
    $environment['RECORDER_VM_RESOURCE_ID'] = [string]$Instance.vmResourceId
    $json = $environment | ConvertTo-Json -Depth 4
    [IO.File]::WriteAllText($Path, $json, (New-Object Text.UTF8Encoding($false)))
    Protect-Path -Path $Path
}

function Register-RecorderService {
    param([string] $Python)
    $service = Join-Path $PackageRoot 'recorder_vm\deploy\windows_service.py'
    if (Get-Service -Name $ServiceName -ErrorAction SilentlyContinue) {
        Invoke-Checked $Python @($service, '--startup', 'auto', 'update')
    }
    else {
        Invoke-Checked $Python @($service, '--startup', 'auto', 'install')
    }
    # Restart on failure: after 5 s, 5 s, then 30 s; the failure count resets after a day.
    Invoke-Checked 'sc.exe' @('failure', $ServiceName, 'reset=', '86400', 'actions=', 'restart/5000/restart/5000/restart/30000')
    Invoke-Checked 'sc.exe' @('failureflag', $ServiceName, '1')
}

function Open-Firewall {
    param($Instance, [string] $Python)
    $ports = @($Instance.internalPorts.signalling, $Instance.internalPorts.notification, $Instance.internalPorts.media)
    foreach ($port in $ports) {
        $name = "Verbatim recorder TCP $port"
        if (-not (Get-NetFirewallRule -DisplayName $name -ErrorAction SilentlyContinue)) {
            New-NetFirewallRule -DisplayName $name -Direction Inbound -Protocol TCP -LocalPort $port -Action Allow | Out-Null
        }
    }
    # Media flows over UDP on ports the media library chooses: allow them for the recorder's process only.
    $name = 'Verbatim recorder media UDP'
    Get-NetFirewallRule -DisplayName $name -ErrorAction SilentlyContinue | Remove-NetFirewallRule
    New-NetFirewallRule -DisplayName $name -Direction Inbound -Protocol UDP -Program $Python -Action Allow | Out-Null
}

function Wait-Live {
    param([int] $Port)
    $deadline = (Get-Date).AddMinutes(3)
    while ((Get-Date) -lt $deadline) {
        try {
            $response = Invoke-WebRequest -Uri "http://127.0.0.1:$Port/health/live" -UseBasicParsing -TimeoutSec 5
            if ($response.StatusCode -eq 200) { return }
        }
        catch {
            Start-Sleep -Seconds 3
        }
    }
    throw "the recorder did not come up on port $Port"
}

# ----- main -----------------------------------------------------------------------------------

New-Item -ItemType Directory -Force -Path $Root, (Join-Path $Root 'config'), (Join-Path $Root 'state') | Out-Null
Protect-Path -Path (Join-Path $Root 'config')
Protect-Path -Path (Join-Path $Root 'state')
$settings = Get-Content -Raw -Path $SettingsFile | ConvertFrom-Json
$instance = Get-Content -Raw -Path $InstanceFile | ConvertFrom-Json

$python = Install-Python
$venvPython = New-RecorderVenv -Python $python -Version ([string]$instance.packageVersion)
$mediaLibrary = Install-MediaLibrary
$certificate = Find-Certificate -Fqdn ([string]$instance.publicFqdn)
Export-CertificatePem -Certificate $certificate -Python $venvPython -Directory (Join-Path $Root 'config')

if (Get-Service -Name $ServiceName -ErrorAction SilentlyContinue) {
    # An upgrade: let the running recorder finish its calls first (drain.ps1 waits for zero calls).
    & (Join-Path $PackageRoot 'recorder_vm\deploy\drain.ps1') -Port $AdminPort
    Stop-Service -Name $ServiceName
}
Write-Environment -Settings $settings -Instance $instance -Certificate $certificate `
    -MediaLibraryDirectory $mediaLibrary -Path (Join-Path $Root 'config\recorder.env.json')
Register-RecorderService -Python $venvPython
Open-Firewall -Instance $instance -Python $venvPython
Start-Service -Name $ServiceName
Wait-Live -Port $AdminPort
Write-Log "recorder $($instance.packageVersion) is running on $($instance.instanceName)"
