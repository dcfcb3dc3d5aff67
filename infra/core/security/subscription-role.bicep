targetScope = 'subscription'

// One role assignment on a whole subscription. Used for one role only, on purpose: the lifecycle's
// in-use guard lists every VM and scale-set model of a subscription (Gallery Pipeline In-Use
// Reader: virtualMachines/read and virtualMachineScaleSets/read), and a list call has no narrower
// scope that still sees every consumer of an image.

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
  name: guid(subscription().id, principalId, roleId)
  properties: {
    roleDefinitionId: roleId
    principalId: principalId
    principalType: principalType
    description: assignmentDescription
  }
}
