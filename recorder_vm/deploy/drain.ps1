<#
.SYNOPSIS
    Drains the local recorder: no new calls, then waits until the calls it holds have ended.

.DESCRIPTION
    For upgrades and planned maintenance (scale-in is drained by the recorder itself on the Azure
    Scheduled Events termination notice). Uses the loopback-only admin routes.
#>
[CmdletBinding()]
param(
    [int] $Port = 9440,
    [int] $TimeoutMinutes = 1440,
    [string] $Reason = 'maintenance'
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 2.0

$base = "http://127.0.0.1:$Port"  # the recorder's loopback admin listener (RECORDER_ADMIN_PORT)
Invoke-RestMethod -Method Post -Uri "$base/admin/drain?reason=$Reason" -UseBasicParsing | Out-Null
$deadline = (Get-Date).AddMinutes($TimeoutMinutes)
while ((Get-Date) -lt $deadline) {
    $calls = Invoke-RestMethod -Uri "$base/admin/calls" -UseBasicParsing
    $active = @($calls.calls).Count
    if ($active -eq 0) {
        Write-Output 'drained: no calls left'
        exit 0
    }
    Write-Output "waiting for $active call(s) to end"
    Start-Sleep -Seconds 60
}
throw "calls still in progress after $TimeoutMinutes minutes"
