// One role assignment on the resource group this module is deployed to (main.bicep sets the scope
// with resourceGroup(subscriptionId, name)): target galleries and source resource groups.

@description('Role definition: a resource id (custom role) or a built-in role GUID.')
param roleDefinitionId string

@description('Object id of the principal.')
param principalId string

@allowed(['ServicePrincipal', 'Group', 'User'])
param principalType string = 'ServicePrincipal'

@description('Why the principal holds the role, shown in the portal.')
param assignmentDescription string = ''

var roleId = startsWith(roleDefinitionId, '/') ? roleDefinitionId : subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionId)

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, roleId)
  properties: {
    roleDefinitionId: roleId
    principalId: principalId
    principalType: principalType
    description: assignmentDescription
  }
}
