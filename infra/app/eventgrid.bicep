// The Event Grid system topics of infra/eventgrid-subscriptions.json: BlobCreated from the upload
// account, ResourceWriteSuccess from this Azure subscription (snapshots). Their event
// subscriptions deliver to the Functions Event Grid extension's webhook, whose URL carries the
// app's eventgrid_extension system key. That key exists only once the code runs, so the
// subscriptions are created after `azd deploy` by infra/hooks/postdeploy.sh (.ps1), from the same
// JSON file, as Microsoft's azd samples do (Azure-Samples/functions-quickstart-python-azd-eventgrid-blob,
// scripts/post-up.sh). Each topic has a system-assigned identity that writes undeliverable events
// to the dead-letter container (deadLetterWithResourceIdentity).

param tags object = {}

@description('Resource id of the upload storage account (the BlobCreated source).')
param uploadAccountId string

@description('Region of the upload storage account: a storage system topic lives in its account\'s region.')
param uploadAccountLocation string

@description('Create the subscription-scope topic for snapshots. An Azure subscription has at most one such system topic: turn this off when it already has one, and add the snapshots subscription to that topic.')
param snapshotTopicEnabled bool = true

@description('Name of the storage account holding the dead-letter container (the app\'s own account).')
param deadLetterAccountName string

@description('The dead-letter container, created beforehand (Event Grid does not create it).')
param deadLetterContainerName string

var document = loadJsonContent('../eventgrid-subscriptions.json')
var uploadsTopic = first(filter(document.systemTopics, topic => topic.properties.topicType == 'Microsoft.Storage.StorageAccounts'))
var snapshotsTopic = first(filter(document.systemTopics, topic => topic.properties.topicType == 'Microsoft.Resources.Subscriptions'))
var blobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource uploads 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: uploadsTopic.name
  location: uploadAccountLocation
  tags: union(tags, { 'gallery-pipeline-topic': uploadsTopic.name })
  identity: uploadsTopic.identity
  properties: {
    source: uploadAccountId
    topicType: uploadsTopic.properties.topicType
  }
}

resource snapshots 'Microsoft.EventGrid/systemTopics@2025-02-15' = if (snapshotTopicEnabled) {
  name: snapshotsTopic.name
  location: snapshotsTopic.location
  tags: union(tags, { 'gallery-pipeline-topic': snapshotsTopic.name })
  identity: snapshotsTopic.identity
  properties: {
    source: subscription().id
    topicType: snapshotsTopic.properties.topicType
  }
}

module uploadsDeadLetter '../core/storage/container-role.bicep' = {
  name: 'evgt-uploads-deadletter'
  params: {
    storageAccountName: deadLetterAccountName
    containerName: deadLetterContainerName
    roleDefinitionId: blobDataContributor
    principalId: uploads.identity.principalId
  }
}

module snapshotsDeadLetter '../core/storage/container-role.bicep' = if (snapshotTopicEnabled) {
  name: 'evgt-snapshots-deadletter'
  params: {
    storageAccountName: deadLetterAccountName
    containerName: deadLetterContainerName
    roleDefinitionId: blobDataContributor
    principalId: snapshotTopicEnabled ? snapshots!.identity.principalId : ''
  }
}

output uploadsTopicName string = uploads.name
output uploadsTopicId string = uploads.id
output snapshotsTopicName string = snapshotTopicEnabled ? snapshots!.name : ''
output snapshotsTopicId string = snapshotTopicEnabled ? snapshots!.id : ''
