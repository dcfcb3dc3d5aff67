// The alerts of infra/README.md ("Alerts and workbook"), as resources. Log alerts read the custom
// metrics and traces the app emits (the contract is listed in infra/README.md); metric alerts read
// the platform metrics of Service Bus and Event Grid. All notify one action group.
// https://learn.microsoft.com/azure/azure-monitor/alerts/alerts-create-log-alert-rule
// https://learn.microsoft.com/azure/service-bus-messaging/monitor-service-bus-reference

param location string = resourceGroup().location
param tags object = {}

param actionGroupName string

@description('E-mail address that receives the alerts; empty creates the action group without receivers (add yours in the portal).')
param alertEmailAddress string = ''

@description('Resource id of Application Insights (scope of the log alerts).')
param applicationInsightsId string

@description('Resource id of the Service Bus namespace.')
param serviceBusId string

param buildQueueName string
param rejectedQueueName string

@description('Resource ids of the Event Grid system topics.')
param systemTopicIds array

@description('A source whose requests have waited longer than this (minutes) is stuck.')
@allowed([30, 60, 120, 180, 240, 360, 720, 1440])
param stuckSourceMinutes int = 120

var emailReceivers = empty(alertEmailAddress) ? [] : [
  {
    name: 'operators'
    emailAddress: alertEmailAddress
    useCommonAlertSchema: true
  }
]

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: actionGroupName
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'gallerypipe'
    enabled: true
    emailReceivers: emailReceivers
  }
}

// Counters arrive as one row per export interval; valueSum is the increase in that interval.
var failedBuildsQuery = '''
customMetrics
| where name == "gallery.builds.failed"
| extend reason = tostring(customDimensions["reason"])
| summarize failed = sum(valueSum) by reason
'''

// A source is stuck when every sample of gallery.sources.pending in the window is above zero and
// the samples cover the window (the tracker records the gauge on each run).
var stuckSourcesQuery = replace('''
customMetrics
| where timestamp > ago({minutes}m)
| where name == "gallery.sources.pending" and tostring(customDimensions["scope"]) == "source"
| extend source = tostring(customDimensions["source"])
| summarize lowest = min(valueMin), firstSample = min(timestamp) by source
| where lowest > 0 and firstSample < ago({covered}m)
''', '{minutes}', string(stuckSourceMinutes))

var haltsQuery = '''
customMetrics
| where name == "gallery.lifecycle.halts"
| summarize halts = sum(valueSum)
'''

// shared/lifecycle/service.py logs this warning for every subscription and region past 80 % of
// Azure's 10,000 image versions.
var quotaQuery = '''
traces
| where message startswith "version quota above 80"
| summarize warnings = count()
'''

var logAlerts = [
  {
    name: 'gallery-builds-failed'
    displayName: 'Gallery Pipeline: builds failed'
    description: 'At least one build failed (gallery.builds.failed, by reason). Read GET /api/builds/{id} or the build.failed event; submit a new request once the cause is fixed.'
    severity: 2
    query: failedBuildsQuery
    frequency: 'PT5M'
    window: 'PT15M'
    timeAggregation: 'Total'
    measure: 'failed'
    dimensions: ['reason']
  }
  {
    name: 'gallery-source-stuck'
    displayName: 'Gallery Pipeline: a source is stuck'
    description: 'Requests have waited behind one source for longer than ${stuckSourceMinutes} minutes (gallery.sources.pending). GET /api/sources/{id} shows what holds it.'
    severity: 2
    query: replace(stuckSourcesQuery, '{covered}', string(stuckSourceMinutes * 3 / 4))
    frequency: 'PT15M'
    window: stuckSourceMinutes < 60 ? 'PT30M' : 'PT${stuckSourceMinutes / 60}H'
    timeAggregation: 'Count'
    measure: ''
    dimensions: ['source']
  }
  {
    name: 'gallery-lifecycle-halted'
    displayName: 'Gallery Pipeline: lifecycle halted'
    description: 'The lifecycle circuit breaker halted every change (gallery.lifecycle.halts). Read the run\'s plan, then galleryctl lifecycle ack RUN_ID.'
    severity: 1
    query: haltsQuery
    frequency: 'PT1H'
    window: 'P1D'
    timeAggregation: 'Total'
    measure: 'halts'
    dimensions: []
  }
  {
    name: 'gallery-version-quota'
    displayName: 'Gallery Pipeline: image version quota above 80 %'
    description: 'A subscription and region passed 80 % of Azure\'s 10,000 image versions (lifecycle audit plan.quota). Tighten retention or request more quota.'
    severity: 2
    query: quotaQuery
    frequency: 'PT1H'
    window: 'P1D'
    timeAggregation: 'Total'
    measure: 'warnings'
    dimensions: []
  }
]

resource scheduledQueryRules 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [
  for alert in logAlerts: {
    name: 'sqr-${alert.name}'
    location: location
    tags: tags
    kind: 'LogAlert'
    properties: {
      displayName: alert.displayName
      description: alert.description
      severity: alert.severity
      enabled: true
      scopes: [applicationInsightsId]
      evaluationFrequency: alert.frequency
      windowSize: alert.window
      autoMitigate: true
      criteria: {
        allOf: [
          {
            query: alert.query
            timeAggregation: alert.timeAggregation
            metricMeasureColumn: empty(alert.measure) ? null : alert.measure
            dimensions: [
              for dimension in alert.dimensions: {
                name: dimension
                operator: 'Include'
                values: ['*']
              }
            ]
            operator: 'GreaterThan'
            threshold: 0
            failingPeriods: {
              numberOfEvaluationPeriods: 1
              minFailingPeriodsToAlert: 1
            }
          }
        ]
      }
      actions: {
        actionGroups: [actionGroup.id]
      }
    }
  }
]

// Requests rejected by validation wait in image-builds-rejected/$deadletterqueue, with their
// reason; requests whose retries ran out wait in image-builds/$deadletterqueue.
var deadLetterAlerts = [
  {
    name: 'gallery-requests-rejected'
    description: 'Build requests were rejected and dead-lettered with a reason (image-builds-rejected/$deadletterqueue). Tell the submitting team.'
    entity: rejectedQueueName
    severity: 3
  }
  {
    name: 'gallery-requests-exhausted'
    description: 'Build requests outlasted their retries (image-builds/$deadletterqueue, MaxDeliveryCountExceeded or TTLExpiredException). Fix the cause and resend.'
    entity: buildQueueName
    severity: 2
  }
]

resource deadLetterMetricAlerts 'Microsoft.Insights/metricAlerts@2018-03-01' = [
  for alert in deadLetterAlerts: {
    name: 'ma-${alert.name}'
    location: 'global'
    tags: tags
    properties: {
      description: alert.description
      severity: alert.severity
      enabled: true
      scopes: [serviceBusId]
      evaluationFrequency: 'PT5M'
      windowSize: 'PT15M'
      autoMitigate: true
      criteria: {
        'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
        allOf: [
          {
            name: 'deadLettered'
            criterionType: 'StaticThresholdCriterion'
            metricNamespace: 'Microsoft.ServiceBus/namespaces'
            metricName: 'DeadletteredMessages'
            dimensions: [
              {
                name: 'EntityName'
                operator: 'Include'
                values: [alert.entity]
              }
            ]
            operator: 'GreaterThan'
            threshold: 0
            timeAggregation: 'Maximum'
          }
        ]
      }
      actions: [
        {
          actionGroupId: actionGroup.id
        }
      ]
    }
  }
]

// Events Event Grid gave up on (30 attempts in 24 hours) are in the dead-letter container.
resource eventGridDeadLetterAlerts 'Microsoft.Insights/metricAlerts@2018-03-01' = [
  for (topicId, i) in systemTopicIds: {
    name: 'ma-gallery-events-deadlettered-${i}'
    location: 'global'
    tags: tags
    properties: {
      description: 'Event Grid dead-lettered events of ${last(split(topicId, '/'))} (container eventgrid-deadletter). Fix the cause, then replay them to the webhook.'
      severity: 2
      enabled: true
      scopes: [topicId]
      evaluationFrequency: 'PT15M'
      windowSize: 'PT1H'
      autoMitigate: true
      criteria: {
        'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
        allOf: [
          {
            name: 'deadLettered'
            criterionType: 'StaticThresholdCriterion'
            metricNamespace: 'Microsoft.EventGrid/systemTopics'
            metricName: 'DeadLetteredCount'
            operator: 'GreaterThan'
            threshold: 0
            timeAggregation: 'Total'
          }
        ]
      }
      actions: [
        {
          actionGroupId: actionGroup.id
        }
      ]
    }
  }
]

output actionGroupId string = actionGroup.id
