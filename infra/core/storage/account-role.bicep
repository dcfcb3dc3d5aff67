// One role assignment on a storage account: for roles the account as a whole needs (host storage,
// the VHD source role Azure Compute Gallery checks on the account).

@description('Name of a storage account in this resource group.')
param storageAccountName string

@description('Role definition: a resource id (custom role) or a built-in role GUID.')
param roleDefinitionId string

@description('Object id of the principal.')
param principalId string

@allowed(['ServicePrincipal', 'Group', 'User'])
param principalType string = 'ServicePrincipal'

var roleId = startsWith(roleDefinitionId, '/') ? roleDefinitionId : subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionId)

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, principalId, roleId)
  scope: account
  properties: {
    roleDefinitionId: roleId
    principalId: principalId
    principalType: principalType
  }
}
