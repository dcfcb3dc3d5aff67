// The Service Bus namespace and its entities, read from infra/servicebus-entities.json (the one
// source: the local emulator's config and tests/unit/infra keep it in step with the code). Local
// (SAS) authentication is off; the app's identity gets data roles per entity, never on the
// namespace: Sender and Receiver on each queue (the worker receives image-builds, intake and
// galleryctl send to it; rejected requests are relayed to image-builds-rejected, received back
// and dead-lettered), Sender on each topic (build events).

param name string
param location string = resourceGroup().location
param tags object = {}

@description('Object id of the app identity.')
param appPrincipalId string

var entities = loadJsonContent('../servicebus-entities.json')
var dataSender = '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
var dataReceiver = '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: name
  location: location
  tags: tags
  sku: entities.namespace.sku
  properties: {
    // Stated here and in the JSON's namespace.properties; tests/unit/infra keeps the two equal.
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

// Properties not in the JSON are left out (null), so Service Bus applies its own defaults, which
// are also what devstack/servicebus/config.py assumes.
resource queues 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = [
  for queue in entities.queues: {
    parent: namespace
    name: queue.name
    properties: {
      lockDuration: queue.?lockDuration
      maxDeliveryCount: queue.?maxDeliveryCount
      defaultMessageTimeToLive: queue.?defaultMessageTimeToLive
      requiresDuplicateDetection: queue.?requiresDuplicateDetection
      duplicateDetectionHistoryTimeWindow: queue.?duplicateDetectionHistoryTimeWindow
      deadLetteringOnMessageExpiration: queue.?deadLetteringOnMessageExpiration
      requiresSession: queue.?requiresSession
      maxSizeInMegabytes: queue.?maxSizeInMegabytes
    }
  }
]

resource queueSenders 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (queue, i) in entities.queues: {
    name: guid(queues[i].id, appPrincipalId, dataSender)
    scope: queues[i]
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataSender)
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
      description: 'Gallery Pipeline sends to ${queue.name}.'
    }
  }
]

resource queueReceivers 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (queue, i) in entities.queues: {
    name: guid(queues[i].id, appPrincipalId, dataReceiver)
    scope: queues[i]
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataReceiver)
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
      description: 'Gallery Pipeline receives (and dead-letters) from ${queue.name}.'
    }
  }
]

// A module per topic, because a topic's subscriptions are a loop inside the loop over topics.
module topics 'servicebus-topic.bicep' = [
  for topic in entities.topics: {
    name: 'sb-topic-${topic.name}'
    params: {
      namespaceName: namespace.name
      topic: topic
      senderPrincipalId: appPrincipalId
    }
  }
]

output id string = namespace.id
output name string = namespace.name
output fullyQualifiedNamespace string = '${namespace.name}.servicebus.windows.net'
output queueNames array = [for queue in entities.queues: queue.name]
output topicNames array = [for topic in entities.topics: topic.name]
