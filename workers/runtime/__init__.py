"""What every worker shares: the way commands, events and state are stored and published.

A worker is ``domain.py`` (state and rules, sans-I/O: facts out, or a ``Rejected`` error),
``storage.py`` (Beanie documents: an aggregate is ``state_document(DomainDataclass, collection)``),
``handlers.py`` (the ``COMMANDS``, ``REACTIONS``, ``PROJECTIONS``, ``MIRRORS`` and ``CHORES`` tables:
thin functions that load, decide, commit) and ``app.py`` (the composition root: ``create_app(settings)``).

The runtime, by concern, each module importing only those before it: ``entries`` (an event as stored
before publishing, ``OutboxEntry``, and its one encoder into broker messages), ``store`` (documents,
the conditional write, claims), ``outbox`` (stamping facts into entries, the one publish queue, the
relay), ``context`` (what a handler may use: ``Context.commit``, ``ask``, the hand-over, and what a
process keeps in memory, ``Kept``), ``tables`` (what a worker declares), ``dispatch`` (running a
command once per idempotency key, a reaction, events another worker hands over), ``retry``,
``subscribers``, ``lifecycle``, ``service`` (the FastStream app) and ``replay``. Commands are consumed
on a channel of their own, so a backlog of events never holds one up.

Events are written one of two ways, and published one way. An aggregate's command commits through
``Context.commit``: the document and its new events, in its ``outbox`` field, in one conditional
single-document write (no transactions, so the same code runs on the stand-in and a real replica
set); then the events are stored in the event store, published and cleared from the outbox. A room
item is written by messaging's ``timeline``: one insert of the item with its event (its id derives
from the command's key, so that write also claims the key: ``self_claiming``), many items per insert
in a busy room. Either way the events go through ``Outbox.publish``: one queue per process, published
in order with publisher confirms; a relay republishes whatever a crash left unpublished.

A command claims its key ``(user_id, type, id)`` before it acts (an insert on a unique key), so
overlapping copies act once and all get the first outcome. A change other workers copy (a
membership change) is handed to each of them by a command of theirs before the reply
(``Runtime.hand_over``), and answered ``unavailable`` until all have applied it. Reactions and
projections are idempotent by construction (versions, derived keys); the runtime keeps no list of
applied events. A read model a hot path needs is a mirror: kept in each process's memory from a
queue of that process's own, and reloaded from the worker's documents at start and every few
seconds (``tables.Mirror``).
"""
