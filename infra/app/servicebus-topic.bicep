// One topic of infra/servicebus-entities.json with its subscriptions; the app's identity may send
// to it (Azure Service Bus Data Sender on the topic only). Consumers get Data Receiver on their own
// subscription, outside this template.

param namespaceName string

@description('One entry of "topics" in infra/servicebus-entities.json.')
param topic object

@description('Object id of the identity that publishes build events.')
param senderPrincipalId string

var dataSender = '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: namespaceName
}

resource serviceBusTopic 'Microsoft.ServiceBus/namespaces/topics@2024-01-01' = {
  parent: namespace
  name: topic.name
  properties: {
    defaultMessageTimeToLive: topic.?defaultMessageTimeToLive
    requiresDuplicateDetection: topic.?requiresDuplicateDetection
    duplicateDetectionHistoryTimeWindow: topic.?duplicateDetectionHistoryTimeWindow
    maxSizeInMegabytes: topic.?maxSizeInMegabytes
  }
}

resource subscriptions 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2024-01-01' = [
  for topicSubscription in topic.?subscriptions ?? []: {
    parent: serviceBusTopic
    name: topicSubscription.name
    properties: {
      lockDuration: topicSubscription.?lockDuration
      maxDeliveryCount: topicSubscription.?maxDeliveryCount
      defaultMessageTimeToLive: topicSubscription.?defaultMessageTimeToLive
      deadLetteringOnMessageExpiration: topicSubscription.?deadLetteringOnMessageExpiration
      requiresSession: topicSubscription.?requiresSession
    }
  }
]

resource topicSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(serviceBusTopic.id, senderPrincipalId, dataSender)
  scope: serviceBusTopic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataSender)
    principalId: senderPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Gallery Pipeline publishes build events to ${topic.name}.'
  }
}
