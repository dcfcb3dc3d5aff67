// A StorageV2 account that only Microsoft Entra identities can use: no shared key, no anonymous
// blob access, TLS 1.2, HTTPS only. Used twice: the app's own account (host state, deployment
// package, ledger, intake records, audit) and the upload account (VHDs and manifests).
// https://learn.microsoft.com/azure/storage/common/shared-key-authorization-prevent

@description('Storage account name: 3-24 lowercase letters and digits.')
@minLength(3)
@maxLength(24)
param name string
param location string = resourceGroup().location
param tags object = {}

@description('Blob containers to create (names).')
param containers array = []

@allowed(['Standard_LRS', 'Standard_ZRS', 'Standard_GRS', 'Standard_GZRS'])
param skuName string = 'Standard_LRS'

@description('Days that deleted blobs and containers can be restored (0 turns soft delete off).')
@minValue(0)
@maxValue(365)
param deleteRetentionDays int = 7

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: Event Grid, Azure Compute Gallery and the Flex Consumption host reach these accounts over the public endpoint; private networking is out of scope (infra/reference.md, Known limits)
  // checkov:skip=CKV_AZURE_59: same reason as CKV_AZURE_35: public network access is needed without a virtual network
  // checkov:skip=CKV_AZURE_206: the replication SKU is the skuName parameter; LRS keeps a single-region deployment cheap, pass Standard_ZRS or Standard_GZRS to make the ledger and records zone- or region-redundant
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    isLocalUserEnabled: false
    isSftpEnabled: false
    minimumTlsVersion: 'TLS1_2'
    publicNetworkAccess: 'Enabled'
    supportsHttpsTrafficOnly: true
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: deleteRetentionDays > 0
      days: deleteRetentionDays > 0 ? deleteRetentionDays : null
    }
    containerDeleteRetentionPolicy: {
      enabled: deleteRetentionDays > 0
      days: deleteRetentionDays > 0 ? deleteRetentionDays : null
    }
  }
}

resource blobContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for container in containers: {
    parent: blobService
    name: container
    properties: {
      publicAccess: 'None'
    }
  }
]

output id string = account.id
output name string = account.name
output location string = account.location
output primaryBlobEndpoint string = account.properties.primaryEndpoints.blob
output primaryQueueEndpoint string = account.properties.primaryEndpoints.queue
