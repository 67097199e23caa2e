#!/bin/bash
# Entrypoint of the compose file's rabbitmq service: writes the user Boochat connects as next to
# the committed definitions (see rabbitmq.conf), then starts RabbitMQ as the official image does.
# Runs as root, like the image's own entrypoint, which then drops to the rabbitmq user.
#
# The user has no tags (no management, monitoring or administrator rights) and its permissions on
# the one virtual host are all it holds. A node that imports definitions at boot creates no guest.
set -euo pipefail

: "${BOOCHAT_RABBITMQ_PASSWORD:?set RABBITMQ_PASSWORD in .env}"
user=${BOOCHAT_RABBITMQ_USER:-boochat}

json_string() {
    local value=${1//\\/\\\\}
    value=${value//\"/\\\"}
    printf '"%s"' "$value"
}

umask 077
target=${BOOCHAT_RABBITMQ_USERS_FILE:-/etc/rabbitmq/definitions/20-users.json}
cat >"$target" <<JSON
{
  "users": [{"name": $(json_string "$user"), "password": $(json_string "$BOOCHAT_RABBITMQ_PASSWORD"), "tags": []}],
  "permissions": [{"user": $(json_string "$user"), "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}]
}
JSON
chown rabbitmq:rabbitmq "$target"
unset BOOCHAT_RABBITMQ_PASSWORD

exec docker-entrypoint.sh "$@"
