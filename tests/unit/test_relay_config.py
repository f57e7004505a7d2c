"""The relay config: the template documents every option, and bad values name their path."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import msgspec
import pytest

from protocol.errors import ConfigError
from relay.app import make_store
from relay.config import CONFIG_TEMPLATE, RelayConfig, load_config

_FILLED = CONFIG_TEMPLATE.format(
    relay_id="r1",
    public_url="https://relay.example.org",
    host="127.0.0.1",
    port=8247,
    trust_root="trust.json",
)
_PLACEHOLDERS = {"id", "public_url", "host", "port", "trust_root"}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "relay.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _with(**lines: str) -> str:
    """The template with ``key = ...`` lines (commented or not) replaced."""
    text = _FILLED
    for key, value in lines.items():
        text, n = re.subn(rf"(?m)^(# )?{key} = .*$", f"{key} = {value}", text)
        assert n == 1, key
    return text


def _sections() -> dict[str, list[str]]:
    """Per [section] of the template, the option names shown (set or commented out)."""
    shown: dict[str, list[str]] = {}
    section = ""
    for line in CONFIG_TEMPLATE.splitlines():
        if m := re.fullmatch(r"\[(\w+)\]", line):
            section = m[1]
            shown[section] = []
        elif m := re.match(r"(?:# )?([a-z_]+) = ", line):
            shown[section].append(m[1])
    return shown


def test_template_shows_every_option_of_every_section() -> None:
    shown = _sections()
    for field in msgspec.structs.fields(RelayConfig):
        if field.name == "base_dir":
            continue
        struct = field.type
        names = [f.name for f in msgspec.structs.fields(struct)]
        assert sorted(shown[field.name]) == sorted(names), field.name


def test_template_values_are_the_defaults(tmp_path: Path) -> None:
    raw = tomllib.loads(_FILLED)
    config = load_config(_write(tmp_path, _FILLED))
    for section, values in raw.items():
        defaults = getattr(config, section)
        required = {"id": "r1", "public_url": "https://x"} if section == "relay" else {}
        struct_defaults = type(defaults)(**required)
        for key, value in values.items():
            if key in _PLACEHOLDERS:
                continue
            shown = tuple(value) if isinstance(value, list) else value  # TOML arrays
            assert getattr(struct_defaults, key) == shown, f"{section}.{key}"
    # Commented-out examples are not in force: the defaults apply.
    assert config.storage.postgres_dsn is None
    assert config.storage.postgres_schema == "relay247"
    assert config.relay.instance_url is None


def test_template_has_the_lines_relay_init_rewrites() -> None:
    # `relay247 relay init --postgres-dsn DSN [--postgres-schema S]` edits these lines.
    for line in (
        'backend = "sqlite"',
        '# postgres_dsn = "postgresql://relay247@db.example.org/relay247"',
        '# postgres_schema = "relay247"',
    ):
        assert CONFIG_TEMPLATE.count(f"\n{line}\n") == 1, line


def test_several_instances_settings_load(tmp_path: Path) -> None:
    text = _with(
        backend='"postgres"',
        postgres_dsn='"postgresql://relay247@db/relay247"',
        postgres_schema='"net_a"',
        postgres_pool_size="4",
        leader_poll="0.5",
        sequence_timeout="3.0",
        expire_interval="5.0",
        purge_after="864000.0",
        instance_url='"https://relay-2.example.org"',
    )
    config = load_config(_write(tmp_path, text))
    s = config.storage
    assert (s.backend, s.postgres_dsn, s.postgres_schema) == (
        "postgres",
        "postgresql://relay247@db/relay247",
        "net_a",
    )
    assert (s.postgres_pool_size, s.leader_poll, s.sequence_timeout) == (4, 0.5, 3.0)
    assert (s.expire_interval, s.purge_after) == (5.0, 864000.0)
    assert config.relay.instance_url == "https://relay-2.example.org"


@pytest.mark.parametrize(
    ("lines", "path"),
    [
        ({"expire_interval": "0"}, "storage.expire_interval"),
        ({"expire_interval": '"soon"'}, "storage.expire_interval"),
        ({"purge_after": "-1.0"}, "storage.purge_after"),
        ({"leader_poll": "0"}, "storage.leader_poll"),
        ({"leader_poll": "61.0"}, "storage.leader_poll"),
        ({"sequence_timeout": "0"}, "storage.sequence_timeout"),
        ({"postgres_pool_size": "0"}, "storage.postgres_pool_size"),
        ({"postgres_schema": '"Relay-247"'}, "storage.postgres_schema"),
        ({"postgres_schema": '"1relay"'}, "storage.postgres_schema"),
        ({"backend": '"mysql"'}, "storage.backend"),
        ({"instance_url": '"relay-2.example.org"'}, "relay.instance_url"),
        ({"instance_url": '"https://relay-2.example.org/v1"'}, "relay.instance_url"),
    ],
)
def test_bad_values_name_the_file_and_the_key(
    tmp_path: Path, lines: dict[str, str], path: str
) -> None:
    config = _write(tmp_path, _with(**lines))
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert err.value.message.startswith(f"{config}: {path}"), err.value.message


@pytest.mark.parametrize(
    ("right", "typo"),
    [
        ("expire_interval", "expire_intervall"),
        ("purge_after", "purge_afterr"),
        ("leader_poll", "leader_pol"),
    ],
)
def test_typos_name_the_file_and_the_section(tmp_path: Path, right: str, typo: str) -> None:
    text = re.sub(rf"(?m)^{right} = ", f"{typo} = ", _FILLED)
    config = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert err.value.message.startswith(f"{config}: "), err.value.message
    assert "storage" in err.value.message
    assert typo in err.value.message


@pytest.mark.parametrize(
    ("schema", "why"),
    [
        ("select", "reserved SQL key word"),
        ("user", "reserved SQL key word"),
        ("left", "reserved SQL key word"),  # "reserved (can be function or type)"
        ("pg_relay", "PostgreSQL's own"),
        ("Relay", "not a lower-case identifier"),
        ("x" * 64, "not a lower-case identifier"),
    ],
)
def test_schema_names_postgres_refuses_are_refused_at_load(
    tmp_path: Path, schema: str, why: str
) -> None:
    text = _with(
        backend='"postgres"', postgres_dsn='"postgresql://db/x"', postgres_schema=f'"{schema}"'
    )
    config = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert err.value.message.startswith(f"{config}: storage.postgres_schema: "), err.value
    assert why in err.value.message


def test_unreserved_key_words_are_fine_schema_names(tmp_path: Path) -> None:
    # "relay", "data", "name" are key words PostgreSQL accepts unquoted as names.
    for schema in ("relay", "data", "name", "relay247_b"):
        text = _with(postgres_schema=f'"{schema}"')
        assert load_config(_write(tmp_path, text)).storage.postgres_schema == schema


@pytest.mark.parametrize(
    ("dsn", "hint"),
    [
        (
            "host=db.example.org port=5433 user=relay dbname=r247",
            "postgresql://relay@db.example.org:5433/r247",
        ),
        ("host=db dbname=x password=s3cret", "postgresql://USER@db/x"),
        ("db.example.org:5432/relay", "expected postgresql://"),
        ("mysql://db/x", "expected postgresql://"),
    ],
)
def test_dsns_asyncpg_cannot_read_are_refused_at_load(tmp_path: Path, dsn: str, hint: str) -> None:
    config = _write(tmp_path, _with(backend='"postgres"', postgres_dsn=f'"{dsn}"'))
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert err.value.message.startswith(f"{config}: storage.postgres_dsn: "), err.value
    assert hint in err.value.message
    assert "s3cret" not in err.value.message


def test_uri_dsns_are_accepted(tmp_path: Path) -> None:
    for dsn in ("postgresql://relay@db/x", "postgres://db:5433/x?sslmode=verify-full"):
        text = _with(backend='"postgres"', postgres_dsn=f'"{dsn}"')
        assert load_config(_write(tmp_path, text)).storage.postgres_dsn == dsn


def test_postgres_without_dsn_is_refused(tmp_path: Path) -> None:
    config = _write(tmp_path, _with(backend='"postgres"'))
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert err.value.message == (
        f'{config}: storage.postgres_dsn: required when backend = "postgres"'
    )


def test_purge_window_shorter_than_an_envelope_lifetime_is_refused(tmp_path: Path) -> None:
    # 7 days of envelope lifetime (the default) but records forgotten after 1 day.
    config = _write(tmp_path, _with(purge_after="86400.0"))
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert err.value.message.startswith(f"{config}: storage.purge_after: must be at least")


def test_purge_window_must_cover_the_clock_skew_too(tmp_path: Path) -> None:
    # An envelope created max_clock_skew (60 s) in the future lives that much longer.
    config = _write(tmp_path, _with(purge_after="604800.0"))
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert "limits.max_clock_skew (604860 s)" in err.value.message
    assert load_config(_write(tmp_path, _with(purge_after="604860.0"))).storage.purge_after


def test_instance_url_equal_to_public_url_is_refused(tmp_path: Path) -> None:
    config = _write(tmp_path, _with(instance_url='"https://relay.example.org"'))
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert err.value.message.startswith(f"{config}: relay.instance_url: must differ")


def test_make_store_builds_the_postgres_store(tmp_path: Path) -> None:
    pg = pytest.importorskip("relay.storage.postgres.store")
    text = _with(backend='"postgres"', postgres_dsn='"postgresql://u@127.0.0.1:1/x"')
    store = make_store(load_config(_write(tmp_path, text)))  # lazy: connects at start()
    assert isinstance(store, pg.PostgresStore)
    assert not store.is_leader()


def test_make_store_without_dsn_is_a_config_error(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, _FILLED))
    config = msgspec.structs.replace(
        config, storage=msgspec.structs.replace(config.storage, backend="postgres")
    )
    with pytest.raises(ConfigError, match=r"storage\.postgres_dsn: required"):
        make_store(config)


def test_make_store_without_asyncpg_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = _with(backend='"postgres"', postgres_dsn='"postgresql://u@127.0.0.1:1/x"')
    config = load_config(_write(tmp_path, text))
    # As on a machine where asyncpg is not installed: the import fails.
    monkeypatch.setitem(sys.modules, "relay.storage.postgres.store", None)
    with pytest.raises(ConfigError, match=r"^storage\.backend: postgres needs the asyncpg"):
        make_store(config)
