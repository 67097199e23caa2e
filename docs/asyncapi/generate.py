"""Every worker's AsyncAPI document, generated from its code into docs/asyncapi/<worker>.json.

    .venv/bin/python docs/asyncapi/generate.py            write them (make docs)
    .venv/bin/python docs/asyncapi/generate.py --check    exit 1 when a committed one is stale

Each worker's FastStream app is built as ``boochat worker`` builds it, from default settings only
(namespace ``boochat``; the environment is ignored), and nothing connects while it is built.

FastStream describes a subscriber by its handler's parameter: the one command subscriber takes any
``Command`` (its data is validated by the runtime, against the handler's contract), each event
subscriber ``AnyEvent``. The document then lists one message per command type and per event type
instead, from the same tables the runtime dispatches by (``Worker``, ``contracts.requests.Spec``):
the subscribers stay as they are, so describing costs the hot path nothing.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, create_model
from pydantic.json_schema import models_json_schema

from boochat.settings import Settings
from boochat.supervisor import available_workers
from contracts.envelope import Command, Event
from contracts.internal import INTERNAL
from contracts.requests import REQUESTS, Spec
from workers.runtime.tables import Worker

HERE = Path(__file__).resolve().parent
SCHEMAS = "#/components/schemas/{model}"


class Defaults(Settings):
    """Settings without the environment: the documents must not depend on who generates them."""

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, **sources):  # type: ignore[no-untyped-def, override]
        return (init_settings,)


def document(worker: str) -> str:
    module = importlib.import_module(f"workers.{worker}.app")
    settings = Defaults()
    schema = module.create_app(settings).schema.to_specification().to_jsonable()
    names = settings.names
    queues = {names.command_queue(worker): {t: command(t, spec_of(t)) for t in sorted(module.WORKER.commands)}}
    for name, types in events(module.WORKER).items():
        queues[names.reaction_queue(worker, name)] = {t: event(t, payload) for t, payload in types.items()}
    by_type(schema, queues)
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def spec_of(type: str) -> Spec:
    return REQUESTS.get(type) or INTERNAL[type]


def events(worker: Worker) -> dict[str, Mapping[str, type[BaseModel]]]:
    """The payload of each event type, by the reaction or projection whose queue takes it."""
    return {name: table.payloads for name, table in (worker.reactions | worker.projections).items()}


def command(type: str, spec: Spec) -> type[BaseModel]:
    """The ``Command`` of one type, with its contract's data."""
    once = "; acts once per id, and a copy with the same id gets the first outcome" if spec.command else ""
    doc = f"Answered with `{spec.reply.__name__}`{once}."
    fields: Any = {"type": (Literal[type], ...), "data": (spec.data, ...)}
    return create_model(f"Command_{type}", __base__=Command, __doc__=doc, **fields)


def event(type: str, payload: type[BaseModel]) -> type[BaseModel]:
    """The ``Event`` of one type, with its payload."""
    fields: Any = {"type": (Literal[type], ...)}
    name = f"Event_{type.replace('.', '_')}"
    return create_model(name, __base__=Event[payload], __doc__=f"The event `{type}`.", **fields)  # type: ignore[valid-type]


def by_type(schema: dict[str, Any], queues: dict[str, dict[str, type[BaseModel]]]) -> None:
    """In ``schema``, each of these queues' channels lists one message per type instead of FastStream's
    one; their payloads' schemas join the components."""
    components = schema["components"]
    models = [model for types in queues.values() for model in types.values()]
    refs, top = models_json_schema([(model, "validation") for model in models], ref_template=SCHEMAS)
    components["schemas"].update(top.get("$defs", {}))
    operations = {op["channel"]["$ref"].rsplit("/", 1)[1]: op for op in schema["operations"].values()}
    for key, channel in schema["channels"].items():
        types = queues.get(channel["bindings"]["amqp"]["queue"]["name"])
        if types is None:
            continue
        for generic in channel["messages"].values():
            del components["messages"][generic["$ref"].rsplit("/", 1)[1]]
        channel["messages"] = {}
        for type, model in types.items():
            name = f"{key}:{type}"
            components["messages"][name] = {
                "name": type,
                "title": type,
                "summary": model.__doc__,
                "correlationId": {"location": "$message.header#/correlation_id"},
                "payload": refs[(model, "validation")],
            }
            channel["messages"][type] = {"$ref": f"#/components/messages/{name}"}
        operations[key]["messages"] = [{"$ref": f"#/channels/{key}/messages/{type}"} for type in types]
    text = json.dumps(schema)
    for generic in ("Command", "AnyEvent"):  # no longer any message's payload
        if f'"{SCHEMAS.format(model=generic)}"' not in text:
            components["schemas"].pop(generic, None)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for worker in available_workers():
        path = HERE / f"{worker}.json"
        text = document(worker)
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path.name)
        if not check:
            path.write_text(text)
    if check and stale:
        print(f"stale AsyncAPI documents: {', '.join(stale)}; run `make docs`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
