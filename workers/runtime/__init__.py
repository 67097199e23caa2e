"""What every worker shares: the way commands, events and state are stored and published.

A worker is ``domain.py`` (state and rules, sans-I/O: facts out, or a ``Rejected`` error),
``storage.py`` (Beanie documents: an aggregate is ``state_document(DomainDataclass, collection)``),
``handlers.py`` (the ``COMMANDS``, ``REACTIONS``, ``PROJECTIONS`` and ``MIRRORS`` tables: thin functions
that load, decide, commit) and ``app.py`` (the composition root: ``create_app(settings)``).

The runtime, by concern: ``tables`` (what a worker declares), ``context`` (what a handler may use:
``Context.commit``, ``ask``), ``dispatch`` (running a command once per idempotency key, a reaction,
``apply_events``), ``store`` (documents, the conditional write, claims), ``outbox`` (stamping,
publishing with confirms, the relay) and ``service`` (the FastStream app). Commands are consumed on a
channel of their own, so a backlog of events never holds one up.

Writes follow one path (``Context.commit``): the aggregate document and its new events, in its
``outbox`` field, are written in one conditional single-document write (no transactions, so the same
code runs on the stand-in and a real replica set), then published with publisher confirms; a relay
republishes whatever a crash left in an outbox. A command claims its key ``(user_id, type, id)``
before it acts (an insert on a unique key), so overlapping copies act once and all get the first
outcome. The hot path is the exception that proves the rule: a message is one insert of the item with
its event (``self_claiming``: the item's id derives from the command's key), published in order off
the reply's path and marked published in batches. Reactions and projections are idempotent by
construction (versions, derived keys); the runtime keeps no list of applied events. A read model a
hot path needs is a mirror: kept in each process's memory from a queue of that process's own, and
reloaded from the worker's documents at start and every few seconds (``tables.Mirror``).
"""
