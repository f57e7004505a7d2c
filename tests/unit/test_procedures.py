"""The procedures file (issue 14 §2 "Procedures as data"): every entry and every clock has
a source; checked flags never claim more than their parts; a bad file stops the node
with its name and the JSON path; the escalation setting family and its deprecated keys.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from node.cases import Ladder, build_ladder, decode_procedures, due_clocks, load_procedures
from node.config import CONFIG_TEMPLATE, deprecated_keys, escalate_after, load_config
from protocol.errors import ConfigError

T = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)


def _raw() -> dict[str, Any]:
    data = resources.files("node").joinpath("data", "procedures.json").read_bytes()
    raw: dict[str, Any] = json.loads(data)
    return raw


def _decode(raw: dict[str, Any]) -> None:
    decode_procedures(json.dumps(raw).encode())


def test_every_entry_and_clock_names_its_source() -> None:
    table = load_procedures()
    required = {
        "ets185_art29", "ets185_art30", "cets224_art9", "cets224_art10",
        "eu_epoc", "eu_epoc_emergency", "eu_epoc_pr",
    }  # fmt: skip
    assert required <= set(table.procedures)
    for pid, p in table.procedures.items():
        assert all((p.source.instrument, p.source.article, p.source.paragraph)), pid
        for name, clock in p.clocks():
            assert all((clock.source.instrument, clock.read)), f"{pid}.{name}"
            if clock.checked:  # a checked clock cites an article and paragraph it read
                assert clock.source.article != "none", f"{pid}.{name}"


@pytest.mark.parametrize("where", ["entry", "clock"])
def test_an_entry_without_a_source_is_refused(where: str) -> None:
    raw = _raw()
    if where == "entry":
        del raw["procedures"]["eu_epoc"]["source"]
        path = "$.procedures.eu_epoc"
    else:
        del raw["procedures"]["eu_epoc_emergency"]["response"]["source"]
        path = "$.procedures.eu_epoc_emergency.response"
    with pytest.raises(ConfigError, match="source") as err:
        _decode(raw)
    assert path in err.value.message


def test_a_checked_procedure_with_an_unchecked_clock_is_refused() -> None:
    raw = _raw()
    raw["procedures"]["eu_epoc_emergency"]["checked"] = True  # its confirmation is a default
    with pytest.raises(ConfigError, match=r"eu_epoc_emergency\.checked.*confirmation"):
        _decode(raw)


def test_a_clock_gives_hours_or_days_not_both() -> None:
    raw = _raw()
    raw["procedures"]["eu_epoc"]["response"]["hours"] = 240
    with pytest.raises(ConfigError, match=r"eu_epoc\.response: give hours or days"):
        _decode(raw)


def test_bad_files_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "p.json"
    bad.write_bytes(b'{"v": 1, "v": 1, "procedures": {}}')
    with pytest.raises(ConfigError, match=str(bad)):
        load_procedures(bad)
    bad.write_bytes(b"not json")
    with pytest.raises(ConfigError, match=str(bad)):
        load_procedures(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_procedures(tmp_path / "missing.json")


def test_the_periods_read_from_the_regulation() -> None:
    table = load_procedures()
    epoc = {c.name: c for c in due_clocks(table.get("eu_epoc_emergency"), T)}
    assert epoc["response"].due == T + timedelta(hours=8)
    assert epoc["response"].checked
    assert "Art. 10(4)" in epoc["response"].source
    assert epoc["objection"].due == T + timedelta(hours=96)
    assert epoc["objection"].who is not None
    assert "enforcing authority" in epoc["objection"].who
    assert not epoc["confirmation"].checked  # a local default, shown as unchecked
    normal = {c.name: c for c in due_clocks(table.get("eu_epoc"), T)}
    assert normal["response"].due == T + timedelta(days=10)
    pr = table.get("eu_epoc_pr")
    assert pr.period is not None
    assert pr.period.days == 60
    assert pr.extension_days == 30
    assert not table.get("cets224_art9").checked  # not re-read from the treaty
    with pytest.raises(ConfigError, match="unknown procedure"):
        table.get("nope")


# -- the escalation setting family --------------------------------------------------------


def _config(tmp_path: Path, extra: str) -> Path:
    text = CONFIG_TEMPLATE.format(member="FR", relay_urls="", trust_root="trust.json")
    path = tmp_path / "node.toml"
    path.write_text(text + extra, encoding="utf-8")
    return path


def _set(path: Path, section: str, line: str) -> None:
    text = path.read_text(encoding="utf-8").replace(f"[{section}]\n", f"[{section}]\n{line}\n", 1)
    path.write_text(text, encoding="utf-8")


def test_no_escalation_setting_leaves_each_procedure_its_ladder(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, ""))
    assert config.escalation.after_minutes == ()
    assert escalate_after(config) == 30.0
    ladder = build_ladder(load_procedures(), (), {})
    assert ladder.steps("eu_epoc_emergency") == (timedelta(minutes=10), timedelta(minutes=10))
    assert ladder.steps_for_kind("emergency_disclosure_request") == (
        timedelta(minutes=15),
        timedelta(minutes=15),
    )
    assert ladder.steps(None) == (timedelta(minutes=30), timedelta(minutes=30))


@pytest.mark.parametrize("section", ["roster", "clocks"])
def test_the_old_keys_are_mapped_with_a_deprecation_warning(tmp_path: Path, section: str) -> None:
    path = _config(tmp_path, "")
    _set(path, section, "escalate_after_minutes = 7.0")
    with capture_logs() as logs:
        config = load_config(path)
    assert logs == []  # the loader prints nothing: a command's --json output stays JSON
    assert config.escalation.after_minutes == (7.0, 7.0)
    assert escalate_after(config) == 7.0
    assert deprecated_keys(config) == [f"{section}.escalate_after_minutes"]  # logged at start


def test_an_old_template_default_leaves_each_procedure_its_ladder(tmp_path: Path) -> None:
    # node.toml files written before [escalation] carry both old keys at 30.0, uncommented:
    # mapped, they would make every procedure escalate at 30/30 (review M3)
    path = _config(tmp_path, "")
    _set(path, "roster", "escalate_after_minutes = 30.0")
    _set(path, "clocks", "escalate_after_minutes = 30.0")
    config = load_config(path)
    assert config.escalation.after_minutes == ()
    e = config.escalation
    ladder = build_ladder(load_procedures(), e.after_minutes, e.procedures)
    assert ladder.steps("eu_epoc_emergency") == (timedelta(minutes=10), timedelta(minutes=10))
    # still named at start, so the operator moves to [escalation]
    assert deprecated_keys(config) == [
        "roster.escalate_after_minutes",
        "clocks.escalate_after_minutes",
    ]


def test_the_new_setting_wins_over_an_old_key(tmp_path: Path) -> None:
    path = _config(tmp_path, "")
    _set(path, "roster", "escalate_after_minutes = 7.0")
    text = path.read_text(encoding="utf-8").replace("after_minutes = []", "after_minutes = [5, 9]")
    path.write_text(text, encoding="utf-8")
    config = load_config(path)
    assert config.escalation.after_minutes == (5.0, 9.0)
    assert deprecated_keys(config) == ["roster.escalate_after_minutes"]  # still said


def test_per_procedure_overrides_and_their_errors(tmp_path: Path) -> None:
    path = _config(tmp_path, "")
    text = path.read_text(encoding="utf-8").replace(
        "procedures = {}", "procedures = { eu_epoc_emergency = [2.0, 3.0] }"
    )
    path.write_text(text.replace("after_minutes = []", "after_minutes = [20, 20]"), "utf-8")
    config = load_config(path)
    e = config.escalation
    ladder = build_ladder(load_procedures(), e.after_minutes, e.procedures)
    assert ladder.steps("eu_epoc_emergency") == (timedelta(minutes=2), timedelta(minutes=3))
    assert ladder.steps("eu_epoc") == (timedelta(minutes=20), timedelta(minutes=20))
    with pytest.raises(ConfigError, match=r"escalation\.procedures\.nope: no such procedure"):
        build_ladder(load_procedures(), (), {"nope": (1.0, 1.0)})
    one = path.read_text(encoding="utf-8").replace(
        "after_minutes = [20, 20]", "after_minutes = [4]"
    )
    path.write_text(one, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"escalation\.after_minutes: give two values"):
        load_config(path)


def test_ladder_precedence() -> None:
    table = load_procedures()
    m = timedelta(minutes=1)
    ladder = Ladder(table=table, after=(m, m), overrides={"eu_epoc": (2 * m, 3 * m)})
    assert ladder.steps("eu_epoc") == (2 * m, 3 * m)
    assert ladder.steps("eu_epoc_emergency") == (m, m)


def test_a_bad_procedures_file_stops_the_node_at_start(tmp_path: Path) -> None:
    from typing import cast

    from node.services import build_services

    path = _config(tmp_path, "")
    bad = tmp_path / "procedures.json"
    bad.write_bytes(b'{"v": 1, "procedures": {"x1": {"name": "no source"}}}')
    text = path.read_text(encoding="utf-8").replace(
        'procedures_file = ""', f'procedures_file = "{bad}"'
    )
    path.write_text(text, encoding="utf-8")
    config = load_config(path)
    unused = cast("Any", None)
    with pytest.raises(ConfigError, match=r"procedures\.json: .*\$\.procedures\.x1"):
        build_services(
            config, view=unused, keys=unused, hub=unused, clock=unused, directory=unused,
            relays=unused,
        )  # fmt: skip
    bad.write_bytes(_raw_bytes())
    wrong = path.read_text(encoding="utf-8").replace(
        "procedures = {}", "procedures = { nope = [1, 1] }"
    )
    path.write_text(wrong, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"escalation\.procedures\.nope"):
        build_services(
            load_config(path), view=unused, keys=unused, hub=unused, clock=unused,
            directory=unused, relays=unused,
        )  # fmt: skip


def _raw_bytes() -> bytes:
    return json.dumps(_raw()).encode()
