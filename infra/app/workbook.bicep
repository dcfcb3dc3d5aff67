// The Gallery Pipeline workbook: builds per day and outcome, replication time per region, pending
// requests per source, rejections and lifecycle actions. Its content is infra/workbook.json (edit
// it in the portal's Advanced Editor and paste it back there).

param location string = resourceGroup().location
param tags object = {}

@description('azd environment name, part of the display name and of the workbook\'s GUID.')
param environmentName string

@description('Resource id of Application Insights, the workbook\'s data source.')
param applicationInsightsId string

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, environmentName, 'gallery-pipeline-workbook')
  location: location
  tags: union(tags, { 'hidden-title': 'Gallery Pipeline (${environmentName})' })
  kind: 'shared'
  properties: {
    displayName: 'Gallery Pipeline (${environmentName})'
    category: 'workbook'
    sourceId: applicationInsightsId
    serializedData: loadTextContent('../workbook.json')
  }
}

output id string = workbook.id
