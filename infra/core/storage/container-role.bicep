// One role assignment on one blob container: the narrowest scope Azure RBAC offers for blob data
// (upload containers, the Event Grid dead-letter container).

@description('Name of a storage account in this resource group.')
param storageAccountName string

@description('A blob container of that account.')
param containerName string

@description('Role definition: a resource id (custom role) or a built-in role GUID.')
param roleDefinitionId string

@description('Object id of the principal.')
param principalId string

@allowed(['ServicePrincipal', 'Group', 'User'])
param principalType string = 'ServicePrincipal'

var roleId = startsWith(roleDefinitionId, '/') ? roleDefinitionId : subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionId)

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName

  resource blobService 'blobServices' existing = {
    name: 'default'

    resource container 'containers' existing = {
      name: containerName
    }
  }
}

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account::blobService::container.id, principalId, roleId)
  scope: account::blobService::container
  properties: {
    roleDefinitionId: roleId
    principalId: principalId
    principalType: principalType
  }
}
