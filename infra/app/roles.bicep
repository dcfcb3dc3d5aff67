targetScope = 'subscription'

// The custom least-privilege roles of infra/roles/*.json, created from those files (one source:
// the same files work with `az role definition create --role-definition @infra/roles/<file>.json`).
// Role names are tenant-wide, so each azd environment gets its own copy, suffixed with the
// environment name; the GUID is stable per subscription and environment, so a second `azd up`
// updates the definitions instead of duplicating them.

@description('azd environment name, appended to each role name.')
param environmentName string

@description('Subscriptions (ids, not paths) where the roles will be assigned, besides this one.')
param assignableSubscriptionIds array = []

var definitions = {
  publisher: loadJsonContent('../roles/gallery-publisher.json')
  sourceContributor: loadJsonContent('../roles/gallery-source-contributor.json')
  vhdSource: loadJsonContent('../roles/gallery-vhd-source.json')
  inUseReader: loadJsonContent('../roles/gallery-inuse-reader.json')
}

var scopes = union([subscription().id], map(assignableSubscriptionIds, id => '/subscriptions/${id}'))

resource customRoles 'Microsoft.Authorization/roleDefinitions@2022-04-01' = [
  for role in items(definitions): {
    name: guid(subscription().id, environmentName, role.value.Name)
    properties: {
      roleName: '${role.value.Name} (${environmentName})'
      description: role.value.Description
      type: 'CustomRole'
      permissions: [
        {
          actions: role.value.Actions
          notActions: role.value.NotActions
          dataActions: role.value.DataActions
          notDataActions: role.value.NotDataActions
        }
      ]
      assignableScopes: scopes
    }
  }
]

// Reading these outputs makes a deployment wait for this module, so the definitions exist before
// any assignment names them.
@description('GUIDs of the custom role definitions, by role.')
output roleIds object = toObject(items(definitions), role => role.key, role => guid(subscription().id, environmentName, role.value.Name))
