// The Function App on Flex Consumption (FC1, Linux, Python 3.11) with one user-assigned identity
// behind every connection, and every app setting the code and its bindings read.
//
// Flex Consumption: the runtime is functionAppConfig.runtime (no FUNCTIONS_WORKER_RUNTIME or
// FUNCTIONS_EXTENSION_VERSION setting), and the package goes to a blob container of the app's own
// account, reached with the identity (authentication.type UserAssignedIdentity), so no storage key
// exists anywhere: https://learn.microsoft.com/azure/azure-functions/flex-consumption-how-to and
// the Azure-Samples/azure-functions-flex-consumption-samples IaC/bicep template.
// Identity-based host storage with a user-assigned identity (AzureWebJobsStorage__credential and
// __clientId): https://learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity

param name string
param planName string
param location string = resourceGroup().location
param tags object = {}

@description('azd service name of the app in azure.yaml (tag azd-service-name).')
param serviceName string = 'pipeline'

@description('Resource id of the user-assigned identity.')
param identityId string

@description('Client id of the user-assigned identity.')
param identityClientId string

@description('Name of the app storage account (host state, deployment package, app containers).')
param storageAccountName string

@description('Blob container receiving the deployment package.')
param deploymentContainerName string

@description('Application Insights connection string.')
param applicationInsightsConnectionString string

@description('Fully qualified Service Bus namespace: <name>.servicebus.windows.net.')
param serviceBusNamespace string

param buildQueueName string
param rejectedQueueName string
param eventsTopicName string

param ledgerContainerName string
param intakeContainerName string
param auditContainerName string

@description('GALLERY_ALLOWED_TARGET_GALLERIES: <subscriptionId>/<resourceGroup>/<gallery>, comma-separated.')
param allowedTargetGalleries string

@description('GALLERY_ALLOWED_SOURCE_SUBSCRIPTIONS: comma-separated; empty means the target\'s own subscription only.')
param allowedSourceSubscriptions string = ''

@description('GALLERY_INUSE_SUBSCRIPTIONS: comma-separated; empty means the target galleries\' subscriptions.')
param inUseSubscriptions string = ''

@description('GALLERY_VHD_ROUTES: the upload routes (JSON array, docs/intake.md).')
param vhdRoutes array = []

@description('GALLERY_SNAPSHOT_DEFAULTS: partial build request under every snapshot request (JSON object).')
param snapshotDefaults object = {}

@description('GALLERY_LIFECYCLE_DRY_RUN: write the plan, change nothing. On for new deployments.')
param lifecycleDryRun bool = true

@description('GALLERY_LIFECYCLE_MAX_DELETIONS_PER_RUN: the circuit breaker; 0 while the first live runs only deprecate.')
@minValue(0)
param lifecycleMaxDeletionsPerRun int = 10

@description('Six-field NCRONTAB (seconds first), UTC.')
param trackerSchedule string = '0 * * * * *'
param intakeRecheckSchedule string = '*/20 * * * * *'
param lifecycleSchedule string = '0 30 2 * * *'

@allowed([2048, 4096])
param instanceMemoryMB int = 2048

@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Flex Consumption offers zone redundancy in some regions only, with always-ready instances to pay for; set properties.zoneRedundant where your region offers it
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: Event Grid delivers to the app's public webhook (/runtime/webhooks/eventgrid) and the status API is public behind function keys; private networking is out of scope (infra/reference.md, Known limits)
  // checkov:skip=CKV_AZURE_17: callers authenticate with function keys (status API) and Event Grid's key; client certificates would lock Event Grid out
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales per function from zero; there is no instance minimum to set for failover
  // checkov:skip=CKV_AZURE_213: Flex Consumption apps have no App Service health-check probe; failures surface in Application Insights and the alerts of alerts.bicep
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// No publishing with user names and passwords: azd and Core Tools deploy with a Microsoft Entra token.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

// Every setting is identity-based: no connection string, no key (infra/reference.md, section 7).
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_88: Flex Consumption keeps the package in a blob container, not on Azure Files
  // checkov:skip=CKV_AZURE_80: a Python app; no .NET Framework version applies
  // checkov:skip=CKV_AZURE_66: failed-request tracing is an App Service (IIS) log; Functions on Flex send failures to Application Insights
  // checkov:skip=CKV_AZURE_63: HTTP logging is an App Service log; Functions on Flex send requests to Application Insights
  // checkov:skip=CKV_AZURE_65: detailed error pages are an App Service (IIS) feature; Functions report errors to Application Insights
  // checkov:skip=CKV_AZURE_13: see the site: App Service Authentication would reject Event Grid's webhook deliveries
  // checkov:skip=CKV_AZURE_222: see the site: the Event Grid webhook needs public network access
  parent: site
  name: 'appsettings'
  properties: {
    // Host storage, used by the host and by the app's ledger, intake and audit containers.
    AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
    AzureWebJobsStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identityClientId
    // The build_worker trigger (connection="ServiceBusConnection") and the app's senders.
    ServiceBusConnection__fullyQualifiedNamespace: serviceBusNamespace
    ServiceBusConnection__credential: 'managedidentity'
    ServiceBusConnection__clientId: identityClientId
    // DefaultAzureCredential in the app (ARM, upload accounts, storage, Service Bus senders).
    AZURE_CLIENT_ID: identityClientId
    APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
    // The Python worker hands its OpenTelemetry context to the host (host.json telemetryMode).
    PYTHON_ENABLE_OPENTELEMETRY: 'true'
    // Resolved by the host when it indexes the functions (%NAME% in functions/*.py).
    GALLERY_BUILD_QUEUE: buildQueueName
    GALLERY_TRACKER_SCHEDULE: trackerSchedule
    GALLERY_INTAKE_RECHECK_SCHEDULE: intakeRecheckSchedule
    GALLERY_LIFECYCLE_SCHEDULE: lifecycleSchedule
    // Entities and containers this template creates, named where they are created.
    GALLERY_REJECTED_QUEUE: rejectedQueueName
    GALLERY_EVENTS_TOPIC: eventsTopicName
    GALLERY_LEDGER_CONTAINER: ledgerContainerName
    GALLERY_INTAKE_CONTAINER: intakeContainerName
    GALLERY_LIFECYCLE_AUDIT_CONTAINER: auditContainerName
    // What the pipeline may touch, and how the lifecycle starts.
    GALLERY_ALLOWED_TARGET_GALLERIES: allowedTargetGalleries
    GALLERY_ALLOWED_SOURCE_SUBSCRIPTIONS: allowedSourceSubscriptions
    GALLERY_INUSE_SUBSCRIPTIONS: inUseSubscriptions
    GALLERY_VHD_ROUTES: string(vhdRoutes)
    GALLERY_SNAPSHOT_DEFAULTS: string(snapshotDefaults)
    GALLERY_LIFECYCLE_DRY_RUN: lifecycleDryRun ? 'true' : 'false'
    GALLERY_LIFECYCLE_MAX_DELETIONS_PER_RUN: string(lifecycleMaxDeletionsPerRun)
  }
}

output id string = site.id
output name string = site.name
output defaultHostName string = site.properties.defaultHostName
