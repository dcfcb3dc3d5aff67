#!/bin/sh
# azd postdeploy hook: create (or update) the Event Grid subscriptions of
# infra/eventgrid-subscriptions.json on the system topics that infra/main.bicep created.
#
# Why a hook and not Bicep: each subscription delivers to the Functions Event Grid extension's
# webhook, https://<app host>/runtime/webhooks/eventgrid?functionName=<fn>&code=<key>, and that
# system key (eventgrid_extension) only exists once the deployed code runs; Event Grid also
# validates the webhook when the subscription is created, which only a running app can answer.
# Microsoft's azd samples do the same (Azure-Samples/functions-quickstart-python-azd-eventgrid-blob,
# scripts/post-up.sh). The key is never printed; the request bodies live in a private temp file.
#
# Needs: az (signed in, the subscription selected), jq. azd passes the environment's values
# (the outputs of main.bicep); run by hand, the script reads them with `azd env get-values`.
set -eu

fail() {
  echo "postdeploy: $*" >&2
  exit 1
}

for tool in az jq; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is required (infra/README.md, Prerequisites)"
done

if [ -z "${AZURE_FUNCTION_APP_NAME:-}" ] && command -v azd >/dev/null 2>&1; then
  eval "$(azd env get-values)"
fi

: "${AZURE_RESOURCE_GROUP:?run azd provision first}"
: "${AZURE_FUNCTION_APP_NAME:?run azd provision first}"
: "${AZURE_FUNCTION_APP_HOST:?run azd provision first}"
: "${GALLERY_UPLOADS_TOPIC_ID:?run azd provision first}"
: "${GALLERY_UPLOAD_CONTAINER_LIST:?run azd provision first}"
: "${GALLERY_DEADLETTER_ACCOUNT_ID:?run azd provision first}"
: "${GALLERY_DEADLETTER_CONTAINER:?run azd provision first}"
SNAPSHOTS_TOPIC_ID=${GALLERY_SNAPSHOTS_TOPIC_ID:-}

HERE=$(cd "$(dirname "$0")" && pwd)
DEFINITIONS="$HERE/../eventgrid-subscriptions.json"
API_VERSION=2025-02-15
TIMEOUT_SECONDS=${GALLERY_HOOK_TIMEOUT_SECONDS:-600}
POLL_SECONDS=${GALLERY_HOOK_POLL_SECONDS:-10}
DEADLINE=$(($(date +%s) + TIMEOUT_SECONDS))

umask 077
BODY=$(mktemp)
trap 'rm -f "$BODY"' EXIT INT TERM

past_deadline() {
  [ "$(date +%s)" -ge "$DEADLINE" ]
}

# 1. The Event Grid extension's system key. The host creates it when it starts the extension, so
#    wake the app (a request starts a Flex Consumption instance) until the key is there.
KEY=""
while :; do
  KEY=$(az functionapp keys list -g "$AZURE_RESOURCE_GROUP" -n "$AZURE_FUNCTION_APP_NAME" \
    --query "systemKeys.eventgrid_extension" -o tsv 2>/dev/null || true)
  if [ -n "$KEY" ] && [ "$KEY" != "None" ]; then
    break
  fi
  past_deadline && fail "no eventgrid_extension key after ${TIMEOUT_SECONDS}s: is the app deployed and are its functions indexed?"
  echo "postdeploy: waiting for the app's Event Grid extension key..."
  curl -s -o /dev/null --max-time 30 "https://${AZURE_FUNCTION_APP_HOST}/" || true
  sleep "$POLL_SECONDS"
done

# 2. One PUT per subscription, its body taken from the JSON file with the placeholders filled in.
#    $1 topic id, $2 topic name in the JSON, $3 subscription name in the JSON, $4 name in Azure,
#    $5 upload container ("" for the snapshot topic).
put_subscription() {
  jq --arg topic "$2" --arg subscription "$3" --arg host "$AZURE_FUNCTION_APP_HOST" \
    --arg app "$AZURE_FUNCTION_APP_NAME" --arg key "$KEY" --arg container "$5" \
    --arg deadLetterAccount "$GALLERY_DEADLETTER_ACCOUNT_ID" \
    --arg deadLetterContainer "$GALLERY_DEADLETTER_CONTAINER" '
    def fill: walk(if type == "string" then
        gsub("https://\\{functionApp\\}\\.azurewebsites\\.net"; "https://" + $host)
        | gsub("\\{functionApp\\}"; $app)
        | gsub("\\{eventgridExtensionKey\\}"; $key)
        | gsub("\\{uploadContainer\\}"; $container)
        | gsub("\\{deadLetterAccountId\\}"; $deadLetterAccount)
        | gsub("\\{deadLetterContainer\\}"; $deadLetterContainer)
      else . end);
    .systemTopics[] | select(.name == $topic) | .subscriptions[] | select(.name == $subscription)
    | {properties: (.properties | fill)}' "$DEFINITIONS" >"$BODY"
  left=$(jq -r '[.. | strings | select(test("\\{[A-Za-z]+\\}"))] | length' "$BODY")
  [ "$left" = 0 ] || fail "$4: placeholders left unfilled in $DEFINITIONS"

  url="$1/eventSubscriptions/$4?api-version=$API_VERSION"
  az rest --method put --url "$url" --body "@$BODY" --only-show-errors --output none
  # Event Grid validates the webhook after the PUT; wait for the outcome.
  while :; do
    state=$(az rest --method get --url "$url" --query properties.provisioningState -o tsv --only-show-errors)
    case "$state" in
      Succeeded) echo "postdeploy: $4 ready on ${1##*/}"; return 0 ;;
      Failed | Canceled) fail "$4: provisioning $state (did the webhook answer the validation handshake?)" ;;
    esac
    past_deadline && fail "$4: still $state after ${TIMEOUT_SECONDS}s"
    sleep "$POLL_SECONDS"
  done
}

topic_name() { # the JSON's name of the system topic of this type
  jq -r --arg type "$1" '.systemTopics[] | select(.properties.topicType == $type) | .name' "$DEFINITIONS"
}
subscription_names() { # the subscriptions of that topic in the JSON
  jq -r --arg topic "$1" '.systemTopics[] | select(.name == $topic) | .subscriptions[].name' "$DEFINITIONS"
}

UPLOADS=$(topic_name Microsoft.Storage.StorageAccounts)
SNAPSHOTS=$(topic_name Microsoft.Resources.Subscriptions)

# One pair of upload subscriptions per upload container, named <subscription>-<container>.
for container in $(echo "$GALLERY_UPLOAD_CONTAINER_LIST" | tr ',' ' '); do
  for name in $(subscription_names "$UPLOADS"); do
    put_subscription "$GALLERY_UPLOADS_TOPIC_ID" "$UPLOADS" "$name" "$name-$container" "$container"
  done
done

if [ -n "$SNAPSHOTS_TOPIC_ID" ]; then
  for name in $(subscription_names "$SNAPSHOTS"); do
    put_subscription "$SNAPSHOTS_TOPIC_ID" "$SNAPSHOTS" "$name" "$name" ""
  done
else
  echo "postdeploy: no snapshot topic (GALLERY_SNAPSHOT_TOPIC_ENABLED=false); see infra/reference.md, Event Grid"
fi
