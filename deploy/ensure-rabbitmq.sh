#!/usr/bin/env bash
# Make sure a RabbitMQ node answers on 127.0.0.1:5672 with guest/guest, the broker the tests and
# `boochat up` use by default. Idempotent, and quick when the node already runs: installs Debian's
# rabbitmq-server when missing, starts a stopped node and waits for it (bounded), fixes guest.
#
# RABBITMQ_START_TIMEOUT (seconds, default 120) bounds the wait for a node to boot.
set -euo pipefail

timeout_s=${RABBITMQ_START_TIMEOUT:-120}
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

say() { echo "ensure-rabbitmq: $*" >&2; }

# Every rabbitmqctl call boots an Erlang VM (about 0.6 s), so the fast path makes only two. Each is
# bounded: a wedged node must not hang the test run.
running() { timeout 60 $sudo rabbitmq-diagnostics -q check_running >/dev/null 2>&1; }
listening() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
# An AMQP 0-9-1 header in, the first byte of a method frame (Connection.Start) back: the node serves
# clients, not just holds the port open.
answers() {
    python3 -c '
import socket, sys
with socket.create_connection(("127.0.0.1", 5672), timeout=10) as s:
    s.settimeout(10)
    s.sendall(b"AMQP\x00\x00\x09\x01")
    sys.exit(0 if s.recv(1) == b"\x01" else 1)
' 2>/dev/null
}

# A node that runs but has not answered an AMQP client for a minute is restarted (seen once after
# hundreds of connections were killed at once). A node still booting answers within that minute.
patient_answers() {
    local deadline=$((SECONDS + 60))
    until answers; do
        [ "$SECONDS" -ge "$deadline" ] && return 1
        sleep 2
    done
}
if running && listening && ! patient_answers; then
    say "the node runs but does not answer AMQP clients; restarting it"
    timeout 60 $sudo rabbitmqctl -q stop >/dev/null 2>&1 || $sudo pkill -9 -f 'beam.smp.*rabbit' || true
    until ! running; do sleep 1; done
fi

if ! command -v rabbitmqctl >/dev/null || ! command -v rabbitmq-server >/dev/null; then
    say "rabbitmq-server is not installed; installing it from Debian's packages"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q rabbitmq-server
fi

fresh=false
if ! running; then
    say "node not running; starting it"
    # -detached returns at once (it fails if a node is half up: the wait below covers that case).
    $sudo rabbitmq-server -detached || say "rabbitmq-server -detached failed; waiting anyway"
    deadline=$((SECONDS + timeout_s))
    # await_startup fails straight away while the Erlang node is not reachable yet, so retry it.
    until timeout 30 $sudo rabbitmqctl -q --timeout 10 await_startup >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            say "RabbitMQ did not start within ${timeout_s}s; see /var/log/rabbitmq/"
            exit 1
        fi
        sleep 1
    done
    say "node started"
    fresh=true
fi

# guest may only log in from loopback, which is all we need.
if ! timeout 60 $sudo rabbitmqctl -q authenticate_user guest guest >/dev/null 2>&1; then
    say "guest/guest refused; (re)creating guest"
    $sudo rabbitmqctl -q add_user guest guest >/dev/null 2>&1 || $sudo rabbitmqctl -q change_password guest guest
    $sudo rabbitmqctl -q set_user_tags guest administrator
    fresh=true
fi
if $fresh; then
    $sudo rabbitmqctl -q set_permissions -p / guest ".*" ".*" ".*" >/dev/null
    # Quorum and stream queues need their feature flags; a node upgraded in place may lack them.
    $sudo rabbitmqctl -q enable_feature_flag all >/dev/null
fi

if ! listening || ! patient_answers; then
    say "the node runs but nothing answers on 127.0.0.1:5672; check /etc/rabbitmq/rabbitmq.conf"
    exit 1
fi
say "RabbitMQ is up on 127.0.0.1:5672 (guest/guest)"
