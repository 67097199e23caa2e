"""Names of exchanges, queues and routing keys, derived from the namespace.

Commands: exchange ``<ns>.commands`` (direct), routing key = the owning worker, one quorum queue
``<ns>.<worker>.commands`` each. Domain events: exchange ``<ns>.events`` (topic), routing key = the
event type, and some events also go under a narrower key (``also``: RabbitMQ's ``CC`` header) for
consumers that want only those; each reaction of a worker has its own queue
``<ns>.<worker>.<reaction>``, each mirror one per process, ``<ns>.<worker>.<mirror>.<process_id>``;
the stream ``<ns>.events.log`` takes everything. Client events: exchange ``<ns>.deliveries``
(topic), routed ``room.<room_id>``, ``user.<digest>`` or ``everyone``; each gateway binds what its
connections need, ``gateways`` for what the gateways tell each other, and ``reply.<gateway_id>``
for replies that ride on deliveries.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


def user_key(user_id: str) -> str:
    """Routing key of one user's deliveries: user ids may hold dots and be long, digests do not."""
    return "user." + hashlib.blake2s(user_id.encode(), digest_size=16).hexdigest()


def room_key(room_id: str) -> str:
    return "room." + room_id


EVERYONE = "everyone"
# A ``room.item_added`` also goes under this key when a recipient may be offline (messaging decides
# by its presence replica): the notifications worker takes only these, not every chat message.
ITEMS_FOR_OFFLINE = "room.item_added.offline"
GATEWAYS = "gateways"  # what gateways tell each other (the requests each user got accepted, for the rate limit)
# A command's header: the deliveries key under which its caller also takes replies. A worker may
# then send the reply inside a delivery the command causes (``CarriedReply``), routed there too.
REPLY_KEY = "x-reply-key"


def reply_key(gateway_id: str) -> str:
    """A gateway's own key on the deliveries exchange: replies that ride on deliveries reach it."""
    return "reply." + gateway_id


@dataclass(frozen=True)
class Names:
    namespace: str

    @property
    def commands(self) -> str:
        return f"{self.namespace}.commands"

    @property
    def events(self) -> str:
        return f"{self.namespace}.events"

    @property
    def deliveries(self) -> str:
        return f"{self.namespace}.deliveries"

    @property
    def dead_letters(self) -> str:
        return f"{self.namespace}.dead"

    @property
    def log(self) -> str:
        return f"{self.namespace}.events.log"

    def command_queue(self, worker: str) -> str:
        return f"{self.namespace}.{worker}.commands"

    def reaction_queue(self, worker: str, reaction: str) -> str:
        return f"{self.namespace}.{worker}.{reaction}"

    def mirror_queue(self, worker: str, mirror: str, process_id: str) -> str:
        """One worker process's queue of a mirror's events (every replica gets every event): it goes
        when that process stops consuming it (auto-delete), or after a while unused (x-expires)."""
        return f"{self.namespace}.{worker}.{mirror}.{process_id}"

    def gateway_queue(self, gateway_id: str) -> str:
        """A gateway's exclusive queue: it exists exactly as long as that gateway's connection does."""
        return f"{self.namespace}.gateway.{gateway_id}"

    def database(self, worker: str) -> str:
        return f"{self.namespace}_{worker}"
