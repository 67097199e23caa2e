"""Every worker's AsyncAPI document, generated from its code into docs/asyncapi/<worker>.json.

    .venv/bin/python docs/asyncapi/generate.py            write them (make docs)
    .venv/bin/python docs/asyncapi/generate.py --check    exit 1 when a committed one is stale

Each worker's FastStream app is built as ``boochat worker`` builds it, from default settings only
(namespace ``boochat``; the environment is ignored), and nothing connects while it is built.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

from boochat.settings import Settings
from boochat.supervisor import available_workers

HERE = Path(__file__).resolve().parent


class Defaults(Settings):
    """Settings without the environment: the documents must not depend on who generates them."""

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, **sources):  # type: ignore[no-untyped-def, override]
        return (init_settings,)


def document(worker: str) -> str:
    app = importlib.import_module(f"workers.{worker}.app").create_app(Defaults())
    schema = app.schema.to_specification().to_jsonable()
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


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
