"""The JSON schema of the client protocol, generated from the contracts (never written by hand).

``python -m contracts.schema`` rewrites ``contracts/protocol.schema.json``; a test fails when the
committed file is stale.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from contracts.frames import EVENTS, Error, EventFrame, Ok, Request
from contracts.requests import REQUESTS

PATH = Path(__file__).with_name("protocol.schema.json")


def generate() -> dict[str, Any]:
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (Request, "validation"),
        (Ok, "serialization"),
        (Error, "serialization"),
        (EventFrame, "serialization"),
    ]
    for spec in REQUESTS.values():
        models += [(spec.data, "validation"), (spec.reply, "serialization")]
    models += [(shape, "serialization") for shape in EVENTS.values()]
    refs, definitions = models_json_schema(list(dict.fromkeys(models)), ref_template="#/$defs/{model}")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Boochat client protocol, version 1",
        "requests": {
            name: {
                "data": refs[(spec.data, "validation")],
                "reply": refs[(spec.reply, "serialization")],
                "command": spec.command,
            }
            for name, spec in REQUESTS.items()
        },
        "events": {name: refs[(shape, "serialization")] for name, shape in EVENTS.items()},
        "$defs": definitions.get("$defs", {}),
    }


def render() -> str:
    return json.dumps(generate(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    PATH.write_text(render())
    print(f"wrote {PATH}")
