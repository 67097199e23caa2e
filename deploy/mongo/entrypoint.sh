#!/bin/bash
# Entrypoint of the compose file's mongo service: makes the replica set's key file on first start
# (kept in the mongo-config volume), then starts MongoDB as the official image does. With
# authentication on, a replica set's members prove themselves to each other with this shared key;
# a single node needs one all the same. Runs as root, like the image's own entrypoint, which then
# drops to the mongodb user.
set -euo pipefail

keyfile=${BOOCHAT_MONGO_KEYFILE:-/data/configdb/keyfile}
if [ ! -s "$keyfile" ]; then
    umask 077
    head -c 756 /dev/urandom | base64 -w 0 >"$keyfile"
fi
chmod 400 "$keyfile"
chown mongodb:mongodb "$keyfile"

exec docker-entrypoint.sh "$@"
