<#
.SYNOPSIS
    Picks up a renewed TLS certificate on a recorder instance (scheduled task, every 15 minutes).

.DESCRIPTION
    The Key Vault VM extension installs a renewed certificate next to the old one in LocalMachine\My
    (it polls the vault; infra/modules/recorder.bicep). This script, registered by install.ps1:

    1. Finds the newest certificate for the public FQDN. If it is not the one the recorder was given,
       exports it as PEM for the TLS listeners (the recorder reloads the PEM files by itself, for new
       connections) and records the new thumbprint in the recorder's environment.
    2. The media platform takes its certificate only when it starts, so a restart is due: it happens as
       soon as the recorder holds no call (drained first, so no call lands during the restart), or, when
       the previous certificate expires within UrgentDays, after draining the calls it holds.
    Windows PowerShell 5.1; idempotent; a pending restart survives in config\certificate-restart-pending.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)] [string] $Fqdn,
    [Parameter(Mandatory = $true)] [string] $Python,
    [string] $Root = 'C:\verbatim',
    [int] $AdminPort = 9440,
    [int] $UrgentDays = 7
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 2.0

$ServiceName = 'VerbatimRecorder'
$config = Join-Path $Root 'config'
$environmentFile = Join-Path $config 'recorder.env.json'
$pending = Join-Path $config 'certificate-restart-pending'
$admin = "http://127.0.0.1:$AdminPort"

function Write-Log {
    param([string] $Message)
    $line = '{0:o} certificate: {1}' -f (Get-Date).ToUniversalTime(), $Message
    Add-Content -Path (Join-Path $Root 'install.log') -Value $line
    Write-Output $line
}

function Find-Certificate {
    $wildcard = '*.' + ($Fqdn -replace '^[^.]+\.', '')
    $candidates = Get-ChildItem -Path Cert:\LocalMachine\My | Where-Object {
        $_.HasPrivateKey -and $_.NotAfter -gt (Get-Date) -and
        (($_.DnsNameList | ForEach-Object { $_.Unicode }) -contains $Fqdn -or
         ($_.DnsNameList | ForEach-Object { $_.Unicode }) -contains $wildcard)
    }
    return ($candidates | Sort-Object -Property NotAfter -Descending | Select-Object -First 1)
}

function Export-CertificatePem {
    param($Certificate)
    $password = [Guid]::NewGuid().ToString('N')
    $pfx = Join-Path $config 'recorder-renewed.pfx'
    $secure = ConvertTo-SecureString -String $password -AsPlainText -Force
    Export-PfxCertificate -Cert $Certificate -FilePath $pfx -Password $secure | Out-Null
    $env:VERBATIM_PFX_PASSWORD = $password
    try {
        & $Python (Join-Path $PSScriptRoot 'pfx_to_pem.py') $pfx (Join-Path $config 'tls-cert.pem') (Join-Path $config 'tls-key.pem')
        if ($LASTEXITCODE -ne 0) { throw "pfx_to_pem.py exited with $LASTEXITCODE" }
    }
    finally {
        Remove-Item Env:\VERBATIM_PFX_PASSWORD
        Remove-Item -Force $pfx
    }
}

$environment = Get-Content -Raw -Path $environmentFile | ConvertFrom-Json
$current = [string]$environment.RECORDER_CERTIFICATE_THUMBPRINT
$newest = Find-Certificate
if ($null -ne $newest -and $newest.Thumbprint -ne $current) {
    $previous = Get-ChildItem -Path Cert:\LocalMachine\My | Where-Object { $_.Thumbprint -eq $current } | Select-Object -First 1
    $expires = if ($null -ne $previous) { $previous.NotAfter } else { Get-Date }
    Export-CertificatePem -Certificate $newest
    $environment.RECORDER_CERTIFICATE_THUMBPRINT = $newest.Thumbprint
    [IO.File]::WriteAllText($environmentFile, ($environment | ConvertTo-Json -Depth 4), (New-Object Text.UTF8Encoding($false)))
    [IO.File]::WriteAllText($pending, $expires.ToUniversalTime().ToString('o'))
    Write-Log "renewed certificate $($newest.Thumbprint) exported; the media platform takes it at the next restart"
}

if (-not (Test-Path $pending)) { exit 0 }
$previousExpires = [datetime]::Parse((Get-Content -Raw -Path $pending).Trim()).ToUniversalTime()
$urgent = $previousExpires -lt (Get-Date).ToUniversalTime().AddDays($UrgentDays)
$calls = @((Invoke-RestMethod -Uri "$admin/admin/calls" -UseBasicParsing).calls).Count
if ($calls -gt 0 -and -not $urgent) {
    Write-Log "restart for the renewed certificate waits: $calls call(s) in progress"
    exit 0
}
# Drain first (no new call lands here; drain.ps1 waits for the calls it holds), then restart.
& (Join-Path $PSScriptRoot 'drain.ps1') -Port $AdminPort -Reason 'certificate-renewal'
Restart-Service -Name $ServiceName
Remove-Item -Force $pending
Write-Log 'recorder restarted with the renewed certificate'
exit 0
