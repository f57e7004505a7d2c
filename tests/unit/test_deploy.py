"""deploy/: the compose file, the example configs, the alert rules and the Containerfile.

No container engine runs here, so the compose file is checked structurally: the rules
every service must keep (pinned image, non-root, read-only root, no capabilities, a
healthcheck, secrets from files) are asserted on the parsed YAML. The example configs are
decoded with the real loaders, and every field of every config Struct must appear in them
with a comment above it (found by walking the Structs, so a new option fails this test
until the example documents it).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from node.config import NodeConfig
from node.config import load_config as load_node_config
from relay.config import RelayConfig
from relay.config import load_config as load_relay_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
#: fields of the root config Structs that are set by the loader, never read from TOML
NOT_IN_TOML = {"base_dir"}


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return services


# ---- compose.yaml ----------------------------------------------------------------------


def test_compose_has_the_documented_topology() -> None:
    s = _services()
    assert set(s) == {"db", "relay-a", "relay-b", "proxy", "node-fr", "node-us", "node-de"}
    assert s["relay-a"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert s["relay-b"]["depends_on"]["db"]["condition"] == "service_healthy"
    for relay in ("relay-a", "relay-b"):
        assert s["proxy"]["depends_on"][relay]["condition"] == "service_healthy"
    for node in ("node-fr", "node-us", "node-de"):
        assert s[node]["depends_on"]["proxy"]["condition"] == "service_healthy"
        assert s[node]["command"][:2] == ["node", "serve"]
    assert s["relay-a"]["command"][:2] == ["relay", "serve"]
    # The proxy carries the public name the nodes sign requests for.
    assert "relay.example.org" in s["proxy"]["networks"]["frontend"]["aliases"]
    # Database and plain-HTTP relay ports are not on the nodes' network.
    assert _compose()["networks"]["backend"]["internal"] is True
    for name in ("db", "relay-a", "relay-b"):
        assert s[name]["networks"] == ["backend"]


@pytest.mark.parametrize("name", sorted(_services()))
def test_compose_service_is_hardened(name: str) -> None:
    svc = _services()[name]
    image = svc["image"]
    tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
    assert tag, f"{name}: image {image} has no tag"
    assert tag != "latest"
    assert re.search(r"\d+\.\d+", tag), f"{name}: tag {tag} is not an exact version"
    assert svc["read_only"] is True
    assert svc["cap_drop"] == ["ALL"]
    assert "cap_add" not in svc
    assert svc.get("privileged", False) is False
    assert "no-new-privileges:true" in svc["security_opt"]
    user = str(svc["user"])
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user), f"{name}: user {user} is root or not numeric"
    health = svc["healthcheck"]
    assert health["test"][0] == "CMD"
    assert "disable" not in health
    assert "network_mode" not in svc
    assert "pid" not in svc


@pytest.mark.parametrize("name", sorted(_services()))
def test_compose_has_no_secret_in_the_environment(name: str) -> None:
    env = _services()[name].get("environment", {})
    assert isinstance(env, dict), f"{name}: environment must be a mapping"
    for key, value in env.items():
        if re.search(r"PASS|SECRET|TOKEN|KEY", key) and key != "PGPASSFILE":
            # Only the *_FILE convention (a path) is allowed for secret-looking variables.
            assert key.endswith("_FILE"), f"{name}: {key} holds a secret literal"
            assert str(value).startswith("/run/secrets/")
    assert "RELAY247_PASSPHRASE" not in env


def test_compose_secrets_are_files_and_mounted() -> None:
    compose = _compose()
    declared = compose["secrets"]
    assert all(set(v) == {"file"} for v in declared.values())
    used: set[str] = set()
    for svc in compose["services"].values():
        for ref in svc.get("secrets", []):
            used.add(ref if isinstance(ref, str) else ref["source"])
        # Every passphrase file the command names is a mounted secret.
        cmd = svc.get("command", [])
        if "--passphrase-file" in cmd:
            path = cmd[cmd.index("--passphrase-file") + 1]
            targets = {
                (r if isinstance(r, str) else r.get("target", r["source"])) for r in svc["secrets"]
            }
            assert path.removeprefix("/run/secrets/") in targets
    assert used == set(declared)


def test_relay_instances_share_keys_and_differ_by_config() -> None:
    s = _services()
    a, b = s["relay-a"], s["relay-b"]
    assert a["secrets"] == b["secrets"]
    assert a["image"] == b["image"]
    assert [v for v in a["volumes"] if "relay-a.toml" in v]
    assert [v for v in b["volumes"] if "relay-b.toml" in v]


def test_every_image_in_the_compose_file_is_pinned() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    for image in re.findall(r"^\s*image:\s*(\S+)", text, re.MULTILINE):
        assert not image.endswith(":latest")
        assert ":" in image


# ---- Containerfile ---------------------------------------------------------------------


def test_containerfile_rules() -> None:
    text = (DEPLOY / "Containerfile").read_text()
    froms = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.MULTILINE)
    assert len(froms) >= 2, "multi-stage build expected"
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.MULTILINE)
    assert base is not None
    assert re.search(r":\d+\.\d+\.\d+-slim", base.group(1)), base.group(1)
    assert "sha256:" not in base.group(1), "no digest may be invented here"
    user = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert user
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user[-1])
    assert re.search(r"^HEALTHCHECK .*/healthz", text, re.MULTILINE | re.DOTALL)
    assert "curl" not in re.sub(r"#.*", "", text)
    assert re.search(r'^ENTRYPOINT \["relay247"\]$', text, re.MULTILINE)
    # Nothing secret is copied in or set.
    assert not re.search(r"^(ENV|ARG)\s+\S*(PASS|SECRET|TOKEN)", text, re.MULTILINE)
    copied = re.findall(r"^COPY\s+(?!--from)(.+?)\s+\S+$", text, re.MULTILINE)
    assert all(".keys" not in c and "secrets" not in c for c in copied)


def test_dockerignore_keeps_local_state_out() -> None:
    lines = (DEPLOY.parent / ".dockerignore").read_text().splitlines()
    rules = [ln for ln in lines if ln and not ln.startswith("#")]
    assert rules[0] == "*"
    assert {"!.venv", "!tests/", "!.git"}.isdisjoint(rules)
    assert "**/*.keys" in rules


# ---- example configs -------------------------------------------------------------------


def _struct_fields(info: msgspec.inspect.Type, section: str) -> Iterator[tuple[str, str]]:
    """(section, key) of every TOML key a config Struct accepts, sections recursed."""
    assert isinstance(info, msgspec.inspect.StructType)
    for field in info.fields:
        if not section and field.name in NOT_IN_TOML:
            continue
        inner = _unwrap(field.type)
        where = f"{section}.{field.encode_name}" if section else field.encode_name
        if isinstance(inner, msgspec.inspect.StructType):
            yield from _struct_fields(inner, where)
        elif isinstance(inner, msgspec.inspect.VarTupleType | msgspec.inspect.ListType) and (
            isinstance(_unwrap(inner.item_type), msgspec.inspect.StructType)
        ):
            yield from _struct_fields(_unwrap(inner.item_type), where)
        else:
            yield section, field.encode_name


def _unwrap(t: msgspec.inspect.Type) -> msgspec.inspect.Type:
    while isinstance(t, msgspec.inspect.Metadata):
        t = t.type
    return t


def _documented_keys(text: str) -> dict[tuple[str, str], bool]:
    """(section, key) -> True if the line above it is an explanatory comment.

    A key may be active (``key = v``) or shown commented out (``# key = v``) when it has
    no default worth setting (TLS files, the secret that excludes ``secret_file``).
    """
    found: dict[tuple[str, str], bool] = {}
    section = ""
    previous = ""
    key_line = re.compile(r"^(#\s*)?([a-z_][a-z0-9_]*)\s*=")
    for line in text.splitlines():
        header = re.fullmatch(r"\[\[?([a-z_.]+)\]\]?", line.strip())
        if header:
            section = header.group(1)
        else:
            m = key_line.match(line)
            if m:
                explained = previous.startswith("#") and not key_line.match(previous)
                found[(section, m.group(2))] = explained
        previous = line
    return found


@pytest.mark.parametrize(("name", "root"), [("relay.toml", RelayConfig), ("node.toml", NodeConfig)])
def test_example_config_documents_every_field(name: str, root: type) -> None:
    documented = _documented_keys((DEPLOY / "config" / name).read_text())
    expected = set(_struct_fields(msgspec.inspect.type_info(root), ""))
    assert len(expected) > 20
    missing = sorted(expected - set(documented))
    assert not missing, f"{name}: options not in the example: {missing}"
    unexplained = sorted(k for k in expected if not documented[k])
    assert not unexplained, f"{name}: options without a comment line above: {unexplained}"
    unknown = sorted(set(documented) - expected)
    assert not unknown, f"{name}: keys that are not config options: {unknown}"


def test_documented_keys_catches_a_missing_comment() -> None:
    doc = _documented_keys("[a]\n# why\nx = 1\ny = 2\n# z = 3\n")
    assert doc == {("a", "x"): True, ("a", "y"): False, ("a", "z"): False}


def test_relay_example_decodes_with_the_real_loader() -> None:
    config = load_relay_config(DEPLOY / "config" / "relay.toml")
    assert config.storage.backend == "postgres"
    assert config.storage.postgres_dsn is not None
    assert ":" not in config.storage.postgres_dsn.split("@")[0].removeprefix("postgresql://")
    assert config.relay.instance_url is not None
    assert config.relay.instance_url != config.relay.public_url


def test_node_example_decodes_with_the_real_loader(tmp_path: Path) -> None:
    text = (DEPLOY / "config" / "node.toml").read_text()
    line = 'data_dir = "/var/lib/relay247-node"'
    assert text.count(line) == 1
    # The loader reads the webhook's secret file at start-up: give it one, mode 0600.
    secret = tmp_path / "webhook.secret"
    secret.write_text("s" * 40)
    os.chmod(secret, 0o600)
    config_path = tmp_path / "node.toml"
    config_path.write_text(text.replace(line, f'data_dir = "{tmp_path}"'))
    config = load_node_config(config_path)
    assert config.node.member == "FR"
    assert len(config.alerts.webhooks) == len(config.alerts.smtp) == 1


# ---- Prometheus rules ------------------------------------------------------------------

REQUIRED_ALERTS = {
    "Relay247InstanceDown",
    "Relay247NoLeader",
    "Relay247CheckpointOverdue",
    "Relay247CosignatureMissing",
    "Relay247MemberStale",
    "Relay247MailboxGrowing",
}


def alert_rules() -> list[dict[str, Any]]:
    """Every rule of deploy/prometheus/alerts.yml."""
    data = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    """Series names a PromQL expression selects (ours, plus Prometheus's own ``up``)."""
    return set(re.findall(r"\b(relay247_[a-z0-9_]+|up)\b\s*[{\[(]?", expr))


def test_alert_rules_are_well_formed() -> None:
    rules = alert_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    assert set(names) >= REQUIRED_ALERTS
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}
        assert {"summary", "description"} <= set(rule["annotations"])
        assert metric_names(rule["expr"]), rule["alert"]
        assert rule["expr"].count("(") == rule["expr"].count(")")
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"])


def test_counters_in_rules_end_in_total() -> None:
    counters = {"expired", "accepted", "rejected", "delivered", "acked"}
    for rule in alert_rules():
        for name in metric_names(rule["expr"]):
            stem = name.removeprefix("relay247_")
            assert stem not in counters, f"{rule['alert']}: counter {name} needs _total"


def test_every_alert_has_a_promtool_unit_test() -> None:
    tests = yaml.safe_load((DEPLOY / "prometheus" / "alerts_test.yml").read_text())
    assert tests["rule_files"] == ["alerts.yml"]
    tested = {
        case["alertname"]
        for test in tests["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert tested == {r["alert"] for r in alert_rules()}


def test_prometheus_example_loads_the_rules() -> None:
    data = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert data["rule_files"] == ["alerts.yml"]
    jobs = {j["job_name"]: j for j in data["scrape_configs"]}
    targets = jobs["relay247"]["static_configs"][0]["targets"]
    assert targets == ["relay-a:8247", "relay-b:8247"]
    assert set(_services()) >= {t.split(":")[0] for t in targets}


@pytest.mark.parametrize(
    "path",
    [
        "deploy/secrets/relay.keys",
        "deploy/secrets/relay_passphrase",
        "deploy/secrets/pg_password",
        "deploy/secrets/tls/key.pem",
        "deploy/secrets/network/coordinator-1.keys",
        "deploy/etc/relay-a.toml",
        "node.keys",
        "somewhere/fr.passphrase",
    ],
)
def test_bootstrap_secrets_are_ignored_by_git(path: str) -> None:
    """What deploy/bootstrap.sh writes (keys, passphrases, the TLS key) is never committed."""
    import shutil
    import subprocess

    git = shutil.which("git")
    root = DEPLOY.parent
    if git is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(
        [git, "check-ignore", "--no-index", "-q", path], cwd=root, check=False, timeout=30
    )
    assert out.returncode == 0, f"{path} is not ignored by .gitignore"


def test_bootstrap_writes_private_files() -> None:
    # Files and directories 0600/0700 whatever the caller's umask; the mode check of
    # what it wrote is in tests/integration/test_deploy_bootstrap.py.
    text = (DEPLOY / "bootstrap.sh").read_text()
    assert re.search(r"^umask 077$", text, re.M)
