<#
.SYNOPSIS
    Installs (or upgrades) the Verbatim recorder on a Windows scale-set instance.

.DESCRIPTION
    Run by infra/scripts/recorder-bootstrap.ps1 with the unpacked package, the recorder's app settings
    (JSON: name -> value, Key Vault references already resolved) and this instance's facts (JSON:
    instanceName, publicFqdn, internalPorts, publicPorts, ...). Idempotent; Windows PowerShell 5.1.
    Exit code 0: installed and running; 3: the TLS certificate is not on the VM yet (the bootstrap retries
    from a scheduled task); anything else: failed.

    Nothing large travels in the package (scripts/azd/hooks.py builds it from the repository): every
    runtime is downloaded here from its publisher, pinned by version and SHA-256, and must carry its
    publisher's Authenticode signature. The SHA-256 values are those of Microsoft's winget manifests
    (microsoft/winget-pkgs, manifests/p/Python/Python/3/11/3.11.9, manifests/m/Microsoft/DotNet/
    Runtime/8/8.0.31, manifests/m/Microsoft/DotNet/AspNetCore/8/8.0.31, manifests/m/Microsoft/VCRedist/
    2015+/x64/14.44.35211.0).

    1. Checks every file of the unpacked package against the package's manifest (SHA-256).
    2. Installs Python 3.11.9 for all users (python.org installer; signed by the Python Software
       Foundation), the .NET 8 and ASP.NET Core 8 runtimes and the Visual C++ 2015-2022 runtime, which
       Microsoft's media library needs (docs/deploy.md, "The recorder's runtime").
    3. Creates a venv per package version and installs recorder_vm\requirements.lock with
       `pip install --require-hashes --no-deps --only-binary=:all:` (every wheel hash-pinned).
    4. Installs Microsoft's media library (NuGet package Microsoft.Skype.Bots.Media, pinned version; its
       assembly must be signed by Microsoft) and loads it on .NET 8 through pythonnet's coreclr runtime.
    5. Reads this instance's public IP from IMDS's load balancer metadata (recorder_vm.deploy.instance_endpoints).
    6. Waits for the certificate the Key Vault extension installs for the public FQDN, exports it as PEM
       for the recorder's TLS listener (readable by SYSTEM and Administrators only) and hands its
       thumbprint to the media platform; registers the renewal task (renew-certificate.ps1).
    7. Writes the recorder's environment (settings + instance facts) and registers the Windows service
       VerbatimRecorder, which restarts on failure.
    8. Opens the firewall for the signalling, notification and media ports, then starts the service and
       waits until /health/live answers.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)] [string] $PackageRoot,
    [Parameter(Mandatory = $true)] [string] $SettingsFile,
    [Parameter(Mandatory = $true)] [string] $InstanceFile,
    [string] $Root = 'C:\verbatim',
    [int] $CertificateWaitMinutes = 10
)

$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
Set-StrictMode -Version 2.0
[Net.ServicePointManager]::SecurityProtocol = [Net.SecurityProtocolType]::Tls12

$PythonVersion = '3.11.9'
$PythonDirectory = 'C:\Program Files\Python311'
$PythonInstaller = @{
    Url    = 'https://www.python.org/ftp/python/3.11.9/python-3.11.9-amd64.exe'
    Sha256 = '5EE42C4EEE1E6B4464BB23722F90B45303F79442DF63083F05322F1785F5FDDE'
    Signer = 'Python Software Foundation'
}
$DotNetVersion = '8.0.31'
$DotNetRuntimeInstaller = @{
    Url    = 'https://download.microsoft.com/download/0487b495-7b7e-41cc-a798-c70779af69f7/78fdbd4d-f97c-4573-968b-891787a3c5d6/dotnet-runtime-8.0.31-win-x64.exe'
    Sha256 = '249B0D10D4BFA8EC8DED5E6E220E871E71CCA89290F1A2FDB93CA59ABB8FF97B'
    Signer = 'Microsoft Corporation'
}
$AspNetCoreRuntimeInstaller = @{
    Url    = 'https://download.microsoft.com/download/920c8ea2-97e9-4fdf-abc8-9e144ba33fbf/40db729f-585b-4875-b521-176dcc331628/aspnetcore-runtime-8.0.31-win-x64.exe'
    Sha256 = '6B9D183E26DF9BD33BD50C2CE5E7BFACB44EB4D65B99553EC431B166D1E10B40'
    Signer = 'Microsoft Corporation'
}
$VCRedistVersion = '14.44.35211.0'
$VCRedistInstaller = @{
    Url    = 'https://download.visualstudio.microsoft.com/download/pr/73aabf2e-9532-4f68-99f7-3247081a619c/CC0FF0EB1DC3F5188AE6300FAEF32BF5BEEBA4BDD6E8E445A9184072096B713B/VC_redist.x64.exe'
    Sha256 = 'CC0FF0EB1DC3F5188AE6300FAEF32BF5BEEBA4BDD6E8E445A9184072096B713B'
    Signer = 'Microsoft Corporation'
}
# Microsoft.Skype.Bots.Media, loaded on .NET 8 (docs/deploy.md, "The recorder's runtime": the library has
# targeted .NET 6+ since 1.26, fails to bind media on .NET Framework 4.8, and Microsoft's advice is .NET 8).
$MediaLibraryPackage = 'Microsoft.Skype.Bots.Media'
$MediaLibraryVersion = '1.33.0.258-preview'
$MediaLibraryFrameworks = @('net8.0', 'net6.0')
$RuntimeConfig = 'recorder_vm\deploy\recorder.runtimeconfig.json'
$ServiceName = 'VerbatimRecorder'
$AdminPort = 9440  # plain HTTP, 127.0.0.1 only: health and admin routes for local scripts
$CertificateTaskName = 'VerbatimRecorderCertificate'

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

function Test-Signature {
    param([string] $Path, [string] $Signer)
    $signature = Get-AuthenticodeSignature -FilePath $Path
    if ($signature.Status -ne 'Valid' -or $signature.SignerCertificate.Subject -notmatch [regex]::Escape($Signer)) {
        throw "$Path is not validly signed by $Signer ($($signature.Status))"
    }
}

function Get-VerifiedDownload {
    # The artifact's file in the download cache, fetched if missing, its SHA-256 and signer checked.
    param([hashtable] $Artifact)
    $directory = Join-Path $Root 'downloads'
    New-Item -ItemType Directory -Force -Path $directory | Out-Null
    $file = Join-Path $directory ([IO.Path]::GetFileName(([Uri]$Artifact.Url).AbsolutePath))
    if (-not (Test-Path $file) -or (Get-FileHash -Algorithm SHA256 -Path $file).Hash -ne $Artifact.Sha256) {
        Write-Log "downloading $($Artifact.Url)"
        Invoke-WebRequest -Uri $Artifact.Url -OutFile $file -UseBasicParsing
    }
    $hash = (Get-FileHash -Algorithm SHA256 -Path $file).Hash
    if ($hash -ne $Artifact.Sha256) {
        Remove-Item -Force $file
        throw "$($Artifact.Url) has SHA-256 $hash, expected $($Artifact.Sha256)"
    }
    Test-Signature -Path $file -Signer $Artifact.Signer
    return $file
}

function Test-PackageManifest {
    # Every file the package builder listed, unchanged (the blob download is authenticated; this catches
    # a partial or altered unpack).
    $manifest = Get-Content -Raw -Path (Join-Path $PackageRoot 'package-manifest.json') | ConvertFrom-Json
    foreach ($entry in $manifest.files.PSObject.Properties) {
        $path = Join-Path $PackageRoot ($entry.Name -replace '/', '\')
        if (-not (Test-Path $path)) { throw "the package has no $($entry.Name)" }
        $hash = (Get-FileHash -Algorithm SHA256 -Path $path).Hash.ToLowerInvariant()
        if ($hash -ne $entry.Value) { throw "$($entry.Name) differs from the package manifest" }
    }
}

function Install-Python {
    $python = Join-Path $PythonDirectory 'python.exe'
    if (Test-Path $python) {
        $installed = (& $python -c 'import platform; print(platform.python_version())').Trim()
        if ($installed -eq $PythonVersion) { return $python }
    }
    $installer = Get-VerifiedDownload -Artifact $PythonInstaller
    Write-Log "installing Python $PythonVersion"
    $arguments = @('/quiet', 'InstallAllUsers=1', 'PrependPath=0', 'Include_test=0', "TargetDir=$PythonDirectory")
    $process = Start-Process -FilePath $installer -ArgumentList $arguments -Wait -PassThru
    if ($process.ExitCode -ne 0) { throw "the Python installer exited with $($process.ExitCode)" }
    return $python
}

function Install-Runtime {
    # A Microsoft runtime installer (burn): 0 installed, 3010 installed (restart pending), 1638 a newer one is there.
    param([hashtable] $Artifact, [string] $Name)
    $installer = Get-VerifiedDownload -Artifact $Artifact
    Write-Log "installing $Name"
    $process = Start-Process -FilePath $installer -ArgumentList @('/install', '/quiet', '/norestart') -Wait -PassThru
    if (@(0, 3010, 1638) -notcontains $process.ExitCode) { throw "the $Name installer exited with $($process.ExitCode)" }
}

function Install-DotNet {
    $dotnet = Join-Path $env:ProgramFiles 'dotnet\dotnet.exe'
    $runtimes = if (Test-Path $dotnet) { (& $dotnet --list-runtimes) -join "`n" } else { '' }
    if ($runtimes -notmatch ('Microsoft\.NETCore\.App ' + [regex]::Escape($DotNetVersion))) {
        Install-Runtime -Artifact $DotNetRuntimeInstaller -Name ".NET Runtime $DotNetVersion"
    }
    if ($runtimes -notmatch ('Microsoft\.AspNetCore\.App ' + [regex]::Escape($DotNetVersion))) {
        Install-Runtime -Artifact $AspNetCoreRuntimeInstaller -Name "ASP.NET Core Runtime $DotNetVersion"
    }
    return (Split-Path -Parent $dotnet)
}

function Install-VCRedist {
    $key = 'HKLM:\SOFTWARE\Microsoft\VisualStudio\14.0\VC\Runtimes\x64'
    $installed = Get-ItemProperty -Path $key -ErrorAction SilentlyContinue
    if ($null -ne $installed -and [version]$installed.Version.TrimStart('v') -ge [version]$VCRedistVersion) { return }
    Install-Runtime -Artifact $VCRedistInstaller -Name "Visual C++ runtime $VCRedistVersion"
}

function New-RecorderVenv {
    param([string] $Python, [string] $Version)
    $venv = Join-Path $Root ('venv\' + $Version)
    $venvPython = Join-Path $venv 'Scripts\python.exe'
    if (-not (Test-Path $venvPython)) {
        Invoke-Checked $Python @('-m', 'venv', $venv)
    }
    $lock = Join-Path $PackageRoot 'recorder_vm\requirements.lock'
    Write-Log "installing the hash-pinned requirements into $venv"
    Invoke-Checked $venvPython @('-m', 'pip', 'install', '--disable-pip-version-check', '--no-input',
        '--require-hashes', '--no-deps', '--only-binary=:all:', '-r', $lock)
    return $venvPython
}

function Install-MediaLibrary {
    $target = Join-Path $Root ('media\' + $MediaLibraryVersion)
    if (-not (Test-Path (Join-Path $target '.installed'))) {
        $nupkg = Join-Path $env:TEMP ('{0}.{1}.zip' -f $MediaLibraryPackage, $MediaLibraryVersion)
        $url = 'https://api.nuget.org/v3-flatcontainer/{0}/{1}/{0}.{1}.nupkg' -f $MediaLibraryPackage.ToLowerInvariant(), $MediaLibraryVersion.ToLowerInvariant()
        Write-Log "downloading $MediaLibraryPackage $MediaLibraryVersion"
        Invoke-WebRequest -Uri $url -OutFile $nupkg -UseBasicParsing
        if (Test-Path $target) { Remove-Item -Recurse -Force $target }
        Expand-Archive -Path $nupkg -DestinationPath $target -Force
        New-Item -ItemType File -Force -Path (Join-Path $target '.installed') | Out-Null
    }
    # One target framework, chosen in order: never whichever copy a recursive search happens to find first.
    foreach ($framework in $MediaLibraryFrameworks) {
        $assembly = Join-Path $target ("lib\$framework\$MediaLibraryPackage.dll")
        if (Test-Path $assembly) {
            Test-Signature -Path $assembly -Signer 'Microsoft Corporation'
            return (Split-Path -Parent $assembly)
        }
    }
    throw "$MediaLibraryPackage $MediaLibraryVersion has no lib\$($MediaLibraryFrameworks -join ' or lib\')"
}

function Get-InstanceEndpoints {
    # This instance's public IP from IMDS's load balancer metadata (the network-interface path is empty
    # for Standard public IPs behind a Standard load balancer).
    param([string] $Python)
    $env:PYTHONPATH = $PackageRoot
    $json = & $Python -m recorder_vm.deploy.instance_endpoints
    if ($LASTEXITCODE -ne 0) { throw 'could not read this instance''s public IP from IMDS' }
    return ($json | ConvertFrom-Json)
}

function Find-Certificate {
    param([string] $Fqdn)
    $wildcard = '*.' + ($Fqdn -replace '^[^.]+\.', '')
    $candidates = Get-ChildItem -Path Cert:\LocalMachine\My | Where-Object {
        $_.HasPrivateKey -and $_.NotAfter -gt (Get-Date) -and
        (($_.DnsNameList | ForEach-Object { $_.Unicode }) -contains $Fqdn -or
         ($_.DnsNameList | ForEach-Object { $_.Unicode }) -contains $wildcard)
    }
    return ($candidates | Sort-Object -Property NotAfter -Descending | Select-Object -First 1)
}

function Wait-Certificate {
    # The certificate is imported into Key Vault after `azd up`, and the Key Vault extension polls every
    # 5 minutes: wait a while, then leave the retry to the bootstrap's scheduled task (exit code 3).
    param([string] $Fqdn)
    $deadline = (Get-Date).AddMinutes($CertificateWaitMinutes)
    while ($true) {
        $certificate = Find-Certificate -Fqdn $Fqdn
        if ($null -ne $certificate) { return $certificate }
        if ((Get-Date) -gt $deadline) { return $null }
        Start-Sleep -Seconds 30
    }
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

function Write-Environment {
    param($Settings, $Instance, $Endpoints, $Certificate, [string] $MediaLibraryDirectory, [string] $DotNetRoot,
        [string] $Python, [string] $Path)
    $environment = [ordered]@{}
    foreach ($property in $Settings.PSObject.Properties) { $environment[$property.Name] = [string]$property.Value }
    $config = Join-Path $Root 'config'
    # The recorder and the domain package it imports run from the unpacked package, with the venv's python
    # (the service host is pywin32's pythonservice.exe, which cannot run `-m recorder_vm` itself).
    $environment['PYTHONPATH'] = $PackageRoot
    $environment['VERBATIM_PYTHON'] = $Python
    # Microsoft's media library runs on .NET 8 (coreclr), not on .NET Framework (pythonnet's Windows default).
    $environment['PYTHONNET_RUNTIME'] = 'coreclr'
    $environment['PYTHONNET_CORECLR_RUNTIME_CONFIG'] = Join-Path $PackageRoot $RuntimeConfig
    $environment['PYTHONNET_CORECLR_DOTNET_ROOT'] = $DotNetRoot
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
    $environment['RECORDER_MEDIA_PUBLIC_IP'] = [string]$Endpoints.publicIp
    $environment['RECORDER_CERTIFICATE_THUMBPRINT'] = $Certificate.Thumbprint
    $environment['RECORDER_TLS_CERT_FILE'] = Join-Path $config 'tls-cert.pem'
    $environment['RECORDER_TLS_KEY_FILE'] = Join-Path $config 'tls-key.pem'
    $environment['RECORDER_SCHEDULED_EVENTS_ENABLED'] = 'true'
    $environment['RECORDER_VM_RESOURCE_ID'] = [string]$Instance.vmResourceId
    foreach ($name in 'RECORDER_CALLBACK_PUBLIC_PORT', 'RECORDER_MEDIA_PUBLIC_PORT', 'RECORDER_MEDIA_PUBLIC_IP') {
        if (-not $environment[$name]) { throw "could not determine $name for this instance" }
    }
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

function Register-CertificateRenewal {
    # Every 15 minutes: a renewed certificate (the Key Vault extension installs it next to the old one)
    # is exported for the TLS listener at once and handed to the media platform at the next idle restart.
    param([string] $Python, [string] $Fqdn)
    $script = Join-Path $PackageRoot 'recorder_vm\deploy\renew-certificate.ps1'
    $arguments = '-NoProfile -ExecutionPolicy Bypass -File "{0}" -Fqdn "{1}" -Python "{2}" -Root "{3}" -AdminPort {4}' -f `
        $script, $Fqdn, $Python, $Root, $AdminPort
    $action = New-ScheduledTaskAction -Execute 'powershell.exe' -Argument $arguments
    $trigger = New-ScheduledTaskTrigger -Once -At (Get-Date).AddMinutes(15) -RepetitionInterval (New-TimeSpan -Minutes 15)
    $principal = New-ScheduledTaskPrincipal -UserId 'SYSTEM' -LogonType ServiceAccount -RunLevel Highest
    $settings = New-ScheduledTaskSettingsSet -ExecutionTimeLimit (New-TimeSpan -Hours 25) -MultipleInstances IgnoreNew
    Register-ScheduledTask -TaskName $CertificateTaskName -Action $action -Trigger $trigger -Principal $principal `
        -Settings $settings -Force | Out-Null
}

function Open-Firewall {
    param($Instance, [string[]] $Programs)
    $ports = @($Instance.internalPorts.signalling, $Instance.internalPorts.notification, $Instance.internalPorts.media)
    foreach ($port in $ports) {
        $name = "Verbatim recorder TCP $port"
        if (-not (Get-NetFirewallRule -DisplayName $name -ErrorAction SilentlyContinue)) {
            New-NetFirewallRule -DisplayName $name -Direction Inbound -Protocol TCP -LocalPort $port -Action Allow | Out-Null
        }
    }
    # Media flows over UDP on ports the media library chooses: allow them for the recorder's process only.
    # A venv's python.exe on Windows launches the base interpreter, which then owns the sockets: both.
    $name = 'Verbatim recorder media UDP'
    Get-NetFirewallRule -DisplayName $name -ErrorAction SilentlyContinue | Remove-NetFirewallRule
    foreach ($program in $Programs) {
        New-NetFirewallRule -DisplayName $name -Direction Inbound -Protocol UDP -Program $program -Action Allow | Out-Null
    }
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

Test-PackageManifest
$python = Install-Python
$dotnetRoot = Install-DotNet
Install-VCRedist
$venvPython = New-RecorderVenv -Python $python -Version ([string]$instance.packageVersion)
$mediaLibrary = Install-MediaLibrary
$endpoints = Get-InstanceEndpoints -Python $venvPython
$certificate = Wait-Certificate -Fqdn ([string]$instance.publicFqdn)
if ($null -eq $certificate) {
    Write-Log "no certificate for $($instance.publicFqdn) in LocalMachine\My yet (Key Vault extension); retried later"
    exit 3
}
Export-CertificatePem -Certificate $certificate -Python $venvPython -Directory (Join-Path $Root 'config')

if (Get-Service -Name $ServiceName -ErrorAction SilentlyContinue) {
    # An upgrade: let the running recorder finish its calls first (drain.ps1 waits for zero calls).
    & (Join-Path $PackageRoot 'recorder_vm\deploy\drain.ps1') -Port $AdminPort
    Stop-Service -Name $ServiceName
}
Write-Environment -Settings $settings -Instance $instance -Endpoints $endpoints -Certificate $certificate `
    -MediaLibraryDirectory $mediaLibrary -DotNetRoot $dotnetRoot -Python $venvPython `
    -Path (Join-Path $Root 'config\recorder.env.json')
Register-RecorderService -Python $venvPython
Register-CertificateRenewal -Python $venvPython -Fqdn ([string]$instance.publicFqdn)
Open-Firewall -Instance $instance -Programs @($python, $venvPython)
Start-Service -Name $ServiceName
Wait-Live -Port $AdminPort
Write-Log "recorder $($instance.packageVersion) is running on $($instance.instanceName)"
exit 0
