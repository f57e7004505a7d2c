"""JSON Schema export: docs/schemas/ is current, the CLI writes and checks it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from cli.main import cli
from schemas.examples import EXAMPLES
from schemas.export import EXPORTS, JSON_SCHEMA_DIALECT, export_all
from schemas.messages import KINDS, encode_body

DOCS_SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def test_committed_schemas_are_current() -> None:
    expected = export_all()
    committed = {p.name: p.read_bytes() for p in DOCS_SCHEMAS.glob("*.json")}
    assert sorted(committed) == sorted(expected), "run: relay247 schemas export docs/schemas"
    for name, data in expected.items():
        assert committed[name] == data, f"{name} is stale: run relay247 schemas export"


def test_export_is_deterministic_and_canonical() -> None:
    files = export_all()
    assert files == export_all()
    assert len(files) == len(EXPORTS)
    for name, data in files.items():
        assert name.endswith(".schema.json")
        assert data.endswith(b"}\n")
        obj = json.loads(data)
        assert obj["$schema"] == JSON_SCHEMA_DIALECT
        assert obj["title"]
        # keys sorted, two-space indent: re-rendering the parsed object is a no-op
        again = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        assert again.encode() == data


def _body_schema() -> dict[str, Any]:
    obj = json.loads(export_all()["body.schema.json"])
    assert isinstance(obj, dict)
    return obj


def test_body_schema_lists_every_kind() -> None:
    mapping = _body_schema()["discriminator"]["mapping"]
    assert sorted(mapping) == sorted(KINDS)


def test_examples_use_only_fields_the_schema_declares() -> None:
    # A light structural cross-check in lieu of a full JSON Schema validator.
    schema = _body_schema()
    mapping = schema["discriminator"]["mapping"]
    for kind, body in EXAMPLES.items():
        ref = mapping[kind].rsplit("/", 1)[-1]
        definition = schema["$defs"][ref]
        assert definition["additionalProperties"] is False
        obj = json.loads(encode_body(body))
        assert set(obj) <= set(definition["properties"]), kind
        assert set(definition["required"]) <= set(obj), kind


def test_schema_forbids_naive_timestamps_by_format() -> None:
    props = _body_schema()["$defs"]["PreservationRequest"]["properties"]
    assert props["issued_at"] == {
        "type": "string",
        "format": "date-time",
        "description": "RFC 3339 date-time with a time-zone offset",
    }


def test_cli_export_writes_every_file(tmp_path: Path) -> None:
    out = tmp_path / "schemas"
    result = CliRunner().invoke(cli, ["schemas", "export", str(out)])
    assert result.exit_code == 0, result.output
    written = {p.name: p.read_bytes() for p in out.iterdir()}
    assert written == export_all()


def test_cli_check_accepts_current_directory(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["schemas", "export", str(tmp_path)]).exit_code == 0
    result = runner.invoke(cli, ["schemas", "export", "--check", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output


def test_cli_check_rejects_stale_file(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["schemas", "export", str(tmp_path)]).exit_code == 0
    (tmp_path / "body.schema.json").write_bytes(b"{}\n")
    result = runner.invoke(cli, ["schemas", "export", "--check", str(tmp_path)])
    assert result.exit_code == 1
    assert "body.schema.json" in result.output


def test_cli_check_rejects_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["schemas", "export", "--check", str(tmp_path)])
    assert result.exit_code == 1
    assert "error.schema.json" in result.output
