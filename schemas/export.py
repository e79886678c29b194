"""JSON Schema export for agents written in other languages: one file per topic, from its model."""
from __future__ import annotations

import json
from pathlib import Path

from schemas.topics import TOPICS


def export_json_schemas(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for spec in TOPICS.values():
        schema = spec.model.model_json_schema()
        schema["$id"] = f"https://alignloop.dev/schemas/{spec.name}.json"
        schema["description"] = f"{spec.description} Topic: {spec.name}."
        path = out_dir / f"{spec.name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
