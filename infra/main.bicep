targetScope = 'subscription'

// Gallery Pipeline for `azd up`: one resource group with the Function App (Flex Consumption),
// its storage, the upload account, Service Bus, the Event Grid system topics, monitoring, alerts
// and a workbook; custom least-privilege roles assigned to the app's identity at the narrowest
// scope (infra/README.md explains each). Layout after Microsoft's azd templates
// (Azure-Samples/functions-quickstart-python-azd-eventgrid-blob and -service-bus).

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; part of every resource name.')
param environmentName string

@minLength(1)
@description('Region of the resource group and its resources (Flex Consumption must be offered there: az functionapp list-flexconsumption-locations).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource group to create; empty: rg-<environmentName>.')
param resourceGroupName string = ''

@description('GALLERY_ALLOWED_TARGET_GALLERIES: <subscriptionId>/<resourceGroup>/<gallery>, comma-separated; * matches one part. The app may publish only there; Gallery Pipeline Publisher is assigned on each named resource group.')
param allowedTargetGalleries string = ''

@description('GALLERY_ALLOWED_SOURCE_SUBSCRIPTIONS: subscriptions holding sources (snapshots, disks, upload accounts), comma-separated; empty: the target\'s own subscription only.')
param allowedSourceSubscriptions string = ''

@description('Resource groups holding snapshots, disks or source VMs, as <subscriptionId>/<resourceGroup>, comma-separated; Gallery Pipeline Source Contributor is assigned on each.')
param sourceResourceGroups string = ''

@description('GALLERY_INUSE_SUBSCRIPTIONS: subscriptions whose VMs and scale sets use the images, comma-separated; empty: the target galleries\' subscriptions. Gallery Pipeline In-Use Reader is assigned on each.')
param inUseSubscriptions string = ''

@description('Blob containers of the upload account, comma-separated; each gets its Event Grid subscriptions.')
param uploadContainers string = 'vhds'

@description('GALLERY_VHD_ROUTES: upload routes (docs/intake.md). A route without storageAccountId gets the upload account created here.')
param vhdRoutes array = []

@description('GALLERY_SNAPSHOT_DEFAULTS: partial build request merged under every snapshot request (docs/intake.md). Set it in main.parameters.json.')
param snapshotDefaults object = {}

@description('GALLERY_LIFECYCLE_DRY_RUN: the lifecycle only writes its plan. On for new deployments; turn it off after reviewing the plans (infra/reference.md, Rolling out lifecycle).')
param lifecycleDryRun bool = true

@description('GALLERY_LIFECYCLE_MAX_DELETIONS_PER_RUN: deletions per lifecycle run; 0 for the first live runs (deprecate only), then 10.')
@minValue(0)
param lifecycleMaxDeletionsPerRun int = 10

@description('Create the subscription-scope Event Grid topic for snapshots (off when this subscription already has a Microsoft.Resources.Subscriptions system topic).')
param snapshotTopicEnabled bool = true

@description('E-mail address for the alerts; empty: an action group without receivers.')
param alertEmailAddress string = ''

@description('Minutes after which a source whose requests still wait raises an alert.')
@allowed([30, 60, 120, 180, 240, 360, 720, 1440])
param stuckSourceMinutes int = 120

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var functionAppName = '${abbrs.webSitesFunctions}${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'

// Names the app reads; the same as its defaults (shared/core/settings.py), so local runs, docs and
// Azure agree. tests/unit/infra checks that they do.
var buildQueueName = 'image-builds'
var rejectedQueueName = 'image-builds-rejected'
var eventsTopicName = 'image-build-events'
var ledgerContainerName = 'gallery-pipeline-ledger'
var intakeContainerName = 'gallery-pipeline-intake'
var auditContainerName = 'gallery-pipeline-audit'
var deadLetterContainerName = 'eventgrid-deadletter'

// Built-in data roles (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageBlobDataReader = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'

// The comma-separated parameters, as lists without blanks or duplicates (union dedupes).
var targetGalleries = filter(map(split(allowedTargetGalleries, ','), entry => trim(entry)), entry => !empty(entry))
var galleryScopes = union(map(filter(targetGalleries, entry => length(split(entry, '/')) == 3 && split(entry, '/')[0] != '*' && split(entry, '/')[1] != '*'), entry => toLower('${split(entry, '/')[0]}/${split(entry, '/')[1]}')), [])
var gallerySubscriptions = union(map(galleryScopes, rgPath => split(rgPath, '/')[0]), [])
var sourceScopes = union(map(filter(map(split(sourceResourceGroups, ','), entry => trim(entry)), entry => length(split(entry, '/')) == 2), entry => toLower(entry)), [])
var inUseList = union(filter(map(split(inUseSubscriptions, ','), entry => toLower(trim(entry))), entry => !empty(entry)), [])
var inUseScopes = empty(inUseList) ? gallerySubscriptions : inUseList
var uploadContainerList = union(filter(map(split(uploadContainers, ','), entry => trim(entry)), entry => !empty(entry)), [])
var roleSubscriptions = union(gallerySubscriptions, map(sourceScopes, rgPath => split(rgPath, '/')[0]), inUseScopes)

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}pipeline-${resourceToken}'
    location: location
    tags: tags
  }
}

module roles 'app/roles.bicep' = {
  name: 'custom-roles'
  params: {
    environmentName: environmentName
    assignableSubscriptionIds: roleSubscriptions
  }
}

// The app's own account: host state, deployment package, ledger, intake records, audit, and the
// Event Grid dead letters.
module appStorage 'core/storage/storage-account.bicep' = {
  name: 'app-storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    containers: [
      deploymentContainerName
      ledgerContainerName
      intakeContainerName
      auditContainerName
      deadLetterContainerName
    ]
  }
}

// Where teams upload VHDs and manifests; separate from the app's state because Azure Compute
// Gallery needs listKeys and write on it (Gallery Pipeline VHD Source).
module uploadStorage 'core/storage/storage-account.bicep' = {
  name: 'upload-storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}up${resourceToken}'
    location: location
    tags: tags
    containers: uploadContainerList
  }
}

module monitoring 'core/monitor/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
    publisherPrincipalId: identity.outputs.principalId
  }
}

module serviceBus 'app/servicebus.bicep' = {
  name: 'service-bus'
  scope: rg
  params: {
    name: '${abbrs.serviceBusNamespaces}${resourceToken}'
    location: location
    tags: tags
    appPrincipalId: identity.outputs.principalId
  }
}

module functionApp 'app/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    name: functionAppName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: appStorage.outputs.name
    deploymentContainerName: deploymentContainerName
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    serviceBusNamespace: serviceBus.outputs.fullyQualifiedNamespace
    buildQueueName: buildQueueName
    rejectedQueueName: rejectedQueueName
    eventsTopicName: eventsTopicName
    ledgerContainerName: ledgerContainerName
    intakeContainerName: intakeContainerName
    auditContainerName: auditContainerName
    allowedTargetGalleries: join(targetGalleries, ',')
    allowedSourceSubscriptions: allowedSourceSubscriptions
    inUseSubscriptions: join(inUseList, ',')
    vhdRoutes: map(vhdRoutes, route => union({ storageAccountId: uploadStorage.outputs.id }, route))
    snapshotDefaults: snapshotDefaults
    lifecycleDryRun: lifecycleDryRun
    lifecycleMaxDeletionsPerRun: lifecycleMaxDeletionsPerRun
  }
}

// ---------------------------------------------------------------------------- the app's roles

// Host storage and the app's containers (the app creates its containers on first use).
module appBlobOwner 'core/storage/account-role.bicep' = {
  name: 'app-storage-blob-owner'
  scope: rg
  params: {
    storageAccountName: appStorage.outputs.name
    roleDefinitionId: storageBlobDataOwner
    principalId: identity.outputs.principalId
  }
}

// The host's identity-based storage connection (AzureWebJobsStorage__queueServiceUri).
module appQueueContributor 'core/storage/account-role.bicep' = {
  name: 'app-storage-queue-contributor'
  scope: rg
  params: {
    storageAccountName: appStorage.outputs.name
    roleDefinitionId: storageQueueDataContributor
    principalId: identity.outputs.principalId
  }
}

// Intake reads blob properties, metadata, the manifest and the 512-byte VHD footer: per container.
module uploadReaders 'core/storage/container-role.bicep' = [
  for container in uploadContainerList: {
    name: 'upload-reader-${container}'
    scope: rg
    params: {
      storageAccountName: uploadStorage.outputs.name
      containerName: container
      roleDefinitionId: storageBlobDataReader
      principalId: identity.outputs.principalId
    }
  }
]

// Azure Compute Gallery requires listKeys and write on the account named by storageAccountId from
// whoever creates a version from a VHD: an account-level role by nature.
module uploadVhdSource 'core/storage/account-role.bicep' = {
  name: 'upload-vhd-source'
  scope: rg
  params: {
    storageAccountName: uploadStorage.outputs.name
    roleDefinitionId: roles.outputs.roleIds.vhdSource
    principalId: identity.outputs.principalId
  }
}

module galleryPublishers 'core/security/resource-group-role.bicep' = [
  for rgPath in galleryScopes: {
    name: 'publisher-${uniqueString(rgPath)}'
    scope: resourceGroup(split(rgPath, '/')[0], split(rgPath, '/')[1])
    params: {
      roleDefinitionId: roles.outputs.roleIds.publisher
      principalId: identity.outputs.principalId
      assignmentDescription: 'Gallery Pipeline publishes and retires image versions in this resource group\'s galleries.'
    }
  }
]

module sourceContributors 'core/security/resource-group-role.bicep' = [
  for rgPath in sourceScopes: {
    name: 'source-${uniqueString(rgPath)}'
    scope: resourceGroup(split(rgPath, '/')[0], split(rgPath, '/')[1])
    params: {
      roleDefinitionId: roles.outputs.roleIds.sourceContributor
      principalId: identity.outputs.principalId
      assignmentDescription: 'Azure Compute Gallery requires write on a snapshot, disk or VM used as a source.'
    }
  }
]

// Subscription scope, justified in core/security/subscription-role.bicep: the in-use guard lists
// every VM and scale set of the subscription.
module inUseReaders 'core/security/subscription-role.bicep' = [
  for subscriptionId in inUseScopes: {
    name: 'inuse-${uniqueString(subscriptionId)}'
    scope: subscription(subscriptionId)
    params: {
      roleDefinitionId: roles.outputs.roleIds.inUseReader
      principalId: identity.outputs.principalId
      assignmentDescription: 'Gallery Pipeline\'s lifecycle never deletes an image version a VM or scale set uses.'
    }
  }
]

// ---------------------------------------------------------------------------- events, alerts, workbook

module eventGrid 'app/eventgrid.bicep' = {
  name: 'event-grid'
  scope: rg
  params: {
    tags: tags
    uploadAccountId: uploadStorage.outputs.id
    uploadAccountLocation: uploadStorage.outputs.location
    snapshotTopicEnabled: snapshotTopicEnabled
    deadLetterAccountName: appStorage.outputs.name
    deadLetterContainerName: deadLetterContainerName
  }
}

module alerts 'app/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    actionGroupName: '${abbrs.insightsActionGroups}${resourceToken}'
    alertEmailAddress: alertEmailAddress
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    serviceBusId: serviceBus.outputs.id
    buildQueueName: buildQueueName
    rejectedQueueName: rejectedQueueName
    systemTopicIds: snapshotTopicEnabled ? [eventGrid.outputs.uploadsTopicId, eventGrid.outputs.snapshotsTopicId] : [eventGrid.outputs.uploadsTopicId]
    stuckSourceMinutes: stuckSourceMinutes
  }
}

module workbook 'app/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    location: location
    tags: tags
    environmentName: environmentName
    applicationInsightsId: monitoring.outputs.applicationInsightsId
  }
}

// ---------------------------------------------------------------------------- outputs (azd env)

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_HOST string = functionApp.outputs.defaultHostName
output GALLERY_API_URL string = 'https://${functionApp.outputs.defaultHostName}/api'
output APPLICATIONINSIGHTS_CONNECTION_STRING string = monitoring.outputs.connectionString
output SERVICE_BUS_NAMESPACE string = serviceBus.outputs.fullyQualifiedNamespace
output GALLERY_UPLOAD_ACCOUNT_ID string = uploadStorage.outputs.id
output GALLERY_UPLOAD_CONTAINER_LIST string = join(uploadContainerList, ',')
output GALLERY_UPLOADS_TOPIC_ID string = eventGrid.outputs.uploadsTopicId
output GALLERY_SNAPSHOTS_TOPIC_ID string = eventGrid.outputs.snapshotsTopicId
output GALLERY_DEADLETTER_ACCOUNT_ID string = appStorage.outputs.id
output GALLERY_DEADLETTER_CONTAINER string = deadLetterContainerName
