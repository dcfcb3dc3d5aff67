# azd postdeploy hook (Windows): the same steps as postdeploy.sh, in PowerShell 7. Creates the Event
# Grid subscriptions of infra/eventgrid-subscriptions.json once the app's Event Grid extension key
# exists; the key is never printed. Needs az, signed in with the subscription selected.
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

function Fail([string] $message) {
    Write-Error "postdeploy: $message"
    exit 1
}

if (-not (Get-Command az -ErrorAction SilentlyContinue)) { Fail 'az is required (infra/README.md, Prerequisites)' }

if (-not $env:AZURE_FUNCTION_APP_NAME -and (Get-Command azd -ErrorAction SilentlyContinue)) {
    foreach ($line in (& azd env get-values)) {
        if ($line -match '^([^=]+)=(.*)$') {
            [Environment]::SetEnvironmentVariable($matches[1], ($matches[2] -replace '^"|"$', ''))
        }
    }
}

foreach ($name in 'AZURE_RESOURCE_GROUP', 'AZURE_FUNCTION_APP_NAME', 'AZURE_FUNCTION_APP_HOST', 'GALLERY_UPLOADS_TOPIC_ID',
    'GALLERY_UPLOAD_CONTAINER_LIST', 'GALLERY_DEADLETTER_ACCOUNT_ID', 'GALLERY_DEADLETTER_CONTAINER') {
    if (-not [Environment]::GetEnvironmentVariable($name)) { Fail "$name is not set: run azd provision first" }
}

$definitionsPath = Join-Path $PSScriptRoot '..' 'eventgrid-subscriptions.json'
$definitions = Get-Content -Raw $definitionsPath | ConvertFrom-Json
$apiVersion = '2025-02-15'
$timeoutSeconds = if ($env:GALLERY_HOOK_TIMEOUT_SECONDS) { [int] $env:GALLERY_HOOK_TIMEOUT_SECONDS } else { 600 }
$pollSeconds = if ($env:GALLERY_HOOK_POLL_SECONDS) { [int] $env:GALLERY_HOOK_POLL_SECONDS } else { 10 }
$deadline = (Get-Date).AddSeconds($timeoutSeconds)

# 1. The Event Grid extension's system key; wake the app until the host has created it.
$key = ''
while ($true) {
    $key = (& az functionapp keys list -g $env:AZURE_RESOURCE_GROUP -n $env:AZURE_FUNCTION_APP_NAME `
            --query 'systemKeys.eventgrid_extension' -o tsv 2>$null)
    if ($key -and $key -ne 'None') { break }
    if ((Get-Date) -ge $deadline) { Fail "no eventgrid_extension key after ${timeoutSeconds}s: is the app deployed and are its functions indexed?" }
    Write-Host 'postdeploy: waiting for the app''s Event Grid extension key...'
    try { Invoke-WebRequest -Uri "https://$($env:AZURE_FUNCTION_APP_HOST)/" -TimeoutSec 30 -SkipHttpErrorCheck | Out-Null } catch { }
    Start-Sleep -Seconds $pollSeconds
}

function Set-Subscription([string] $topicId, [object] $definition, [string] $azureName, [string] $container) {
    $text = ($definition.properties | ConvertTo-Json -Depth 32)
    $text = $text.Replace('https://{functionApp}.azurewebsites.net', "https://$($env:AZURE_FUNCTION_APP_HOST)")
    $text = $text.Replace('{functionApp}', $env:AZURE_FUNCTION_APP_NAME).Replace('{eventgridExtensionKey}', $key)
    $text = $text.Replace('{uploadContainer}', $container).Replace('{deadLetterAccountId}', $env:GALLERY_DEADLETTER_ACCOUNT_ID)
    $text = $text.Replace('{deadLetterContainer}', $env:GALLERY_DEADLETTER_CONTAINER)
    if ($text -match '\{[A-Za-z]+\}') { Fail "${azureName}: placeholders left unfilled in $definitionsPath" }

    $body = New-TemporaryFile
    try {
        "{`"properties`": $text}" | Set-Content -NoNewline -Path $body
        $url = "$topicId/eventSubscriptions/${azureName}?api-version=$apiVersion"
        & az rest --method put --url $url --body "@$body" --only-show-errors --output none
        if ($LASTEXITCODE -ne 0) { Fail "${azureName}: the PUT failed" }
        while ($true) {
            $state = (& az rest --method get --url $url --query properties.provisioningState -o tsv --only-show-errors)
            if ($state -eq 'Succeeded') { Write-Host "postdeploy: $azureName ready"; return }
            if ($state -in 'Failed', 'Canceled') { Fail "${azureName}: provisioning $state (did the webhook answer the validation handshake?)" }
            if ((Get-Date) -ge $deadline) { Fail "${azureName}: still $state after ${timeoutSeconds}s" }
            Start-Sleep -Seconds $pollSeconds
        }
    }
    finally {
        Remove-Item -Force $body
    }
}

$uploads = $definitions.systemTopics | Where-Object { $_.properties.topicType -eq 'Microsoft.Storage.StorageAccounts' }
$snapshots = $definitions.systemTopics | Where-Object { $_.properties.topicType -eq 'Microsoft.Resources.Subscriptions' }

foreach ($container in ($env:GALLERY_UPLOAD_CONTAINER_LIST -split ',')) {
    foreach ($definition in $uploads.subscriptions) {
        Set-Subscription $env:GALLERY_UPLOADS_TOPIC_ID $definition "$($definition.name)-$container" $container
    }
}

if ($env:GALLERY_SNAPSHOTS_TOPIC_ID) {
    foreach ($definition in $snapshots.subscriptions) {
        Set-Subscription $env:GALLERY_SNAPSHOTS_TOPIC_ID $definition $definition.name ''
    }
}
else {
    Write-Host 'postdeploy: no snapshot topic (GALLERY_SNAPSHOT_TOPIC_ENABLED=false); see infra/reference.md, Event Grid'
}
