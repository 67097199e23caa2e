"""What every worker shares: the way commands, events and state are stored and published.

A worker is ``domain.py`` (state and rules, sans-I/O: facts out, or a ``Rejected`` error),
``storage.py`` (Beanie documents, each aggregate an ``Aggregate``), ``handlers.py`` (the
``COMMANDS`` and ``REACTIONS`` tables: thin functions that load, decide, commit) and ``app.py``
(the composition root: ``create_app(settings)``).

Writes follow one path (``Context.commit``): the aggregate document and the new events, in its
``outbox`` field, are written in one conditional single-document update (no transactions, so the same
code runs on the stand-in and a real replica set). The events are then copied into the ``events``
collection (the worker's event store, unique by ``(aggregate_id, version)``) and published with
publisher confirms; a relay republishes whatever a crash left in an outbox. Commands are idempotent by
``(user_id, type, id)``; reactions remember the events they applied.
"""
