"""Deployment files: the compose file passes the Compose Specification's schema, every
command in it and in the systemd units is a real `cityops` command, and the generated
Mosquitto config runs a real mosquitto where a registered device gets in and an anonymous
client does not."""

from __future__ import annotations

import argparse
import configparser
import contextlib
import io
import ipaddress
import json
import re
import shlex
import shutil
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from cityops.embedded.broker import mosquitto_user
from cityops.embedded.process import free_port, make_traversable, spawn, stop_process, wait_for_port
from cityops.settings import load_settings
from cityops.storage import Database
from cityops_cli.main import build_parser
from devices.broker_auth import sync_broker
from devices.broker_config import BrokerConfig, Listener, Tls, broker_config, render_broker_config
from devices.errors import InvalidField
from devices.registry import add_device
from tests.broker_helpers import connack, frog
from tests.conftest import skip_or_fail

ROOT = Path(__file__).parent.parent
DEPLOY = ROOT / "deploy"
SCHEMA = json.loads((Path(__file__).parent / "data" / "compose-spec.json").read_text())
# how deploy/mosquitto/mosquitto.conf is generated (paths as the broker container sees them)
COMPOSE_BROKER_ARGS = ["device", "broker-config", "--dynsec-file", "/cityops/broker/dynamic-security.json",
                       "--dynsec-plugin", "/usr/lib/mosquitto_dynamic_security.so",
                       "--persistence-dir", "/mosquitto/data",
                       "--tls-listener", "8883", "--certfile", "/cityops/pki/mosquitto.pem",
                       "--keyfile", "/cityops/pki/mosquitto.key"]


def compose() -> dict[str, Any]:
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(doc, dict)
    return doc


def schema_errors(doc: object) -> list[str]:
    validator = jsonschema.Draft201909Validator(SCHEMA)
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(doc)]


def parse_cityops(argv: list[str]) -> argparse.Namespace:
    """Parse a command line with the real parser; a usage error fails the test with its message."""
    assert argv[0].endswith("cityops"), argv
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return build_parser().parse_args(argv[1:])
    except SystemExit:
        pytest.fail(f"`{shlex.join(argv)}` is not a cityops command: {err.getvalue()}")


# --- compose ----------------------------------------------------------------------------

def test_compose_passes_the_compose_spec_schema() -> None:
    doc = compose()
    assert schema_errors(doc) == []
    broken = json.loads(json.dumps(doc))
    broken["services"]["api"]["comand"] = ["cityops", "api"]  # a typo the schema must catch
    assert any("comand" in e for e in schema_errors(broken))


def test_every_compose_command_is_a_cityops_command() -> None:
    services = compose()["services"]
    parsed = {}
    for name, service in services.items():
        if "image" in service and not str(service["image"]).startswith("cityops:"):
            continue  # timescaledb, mosquitto, prometheus, grafana: their images' own commands
        argv = list(service.get("entrypoint", [])) + list(service["command"])
        parsed[name] = parse_cityops(argv)
        test = service.get("healthcheck", {}).get("test")
        if test:
            assert test[0] == "CMD"
            parse_cityops(list(test[1:]))
    assert parsed["rules"].damp and parsed["rules"].bins and parsed["rules"].gritting and parsed["rules"].every == 5
    assert (parsed["alerts"].command, parsed["alerts"].alerts_command) == ("alerts", "run")
    assert (parsed["migrate"].command, parsed["migrate"].db_command) == ("db", "migrate")
    assert parsed["api"].command == "api" and parsed["api"].host == "0.0.0.0"
    assert parsed["broker-auth"].device_command == "sync-broker"


def test_compose_runs_the_platform_as_the_issue_asks() -> None:
    services = compose()["services"]
    assert services["timescaledb"]["image"].startswith("timescale/timescaledb-ha:")
    ingest = [s for n, s in services.items() if n.startswith("ingest-")]
    assert len(ingest) == 2
    client_ids = {s["environment"]["CITYOPS_INGEST__CLIENT_ID"] for s in ingest}
    groups = {s["environment"]["CITYOPS_INGEST__SHARE_GROUP"] for s in ingest}
    assert len(client_ids) == 2 and groups == {"ingest"}  # one shared subscription, two sessions
    for service in ingest:
        n = service["environment"]["CITYOPS_INGEST__CLIENT_ID"].rsplit("-", 1)[1]
        assert service["environment"]["CITYOPS_MQTT_URL"].startswith(f"mqtts://service.ingest-{n}:")
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["restart"] == "no"
    broker = services["mosquitto"]
    assert "./mosquitto/mosquitto.conf:/mosquitto/config/mosquitto.conf:ro" in broker["volumes"]
    assert broker["depends_on"]["broker-auth"]["condition"] == "service_completed_successfully"
    grafana = services["grafana"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    # every file or folder the compose file mounts from deploy/ is there
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./") and source != "./agents":
                assert (DEPLOY / source).exists(), source
    # the Prometheus scrape targets are the two consumers' metrics ports
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = prometheus["scrape_configs"][0]["static_configs"][0]["targets"]
    assert sorted(targets) == sorted(f"{n}:9108" for n, _ in services.items() if n.startswith("ingest-"))


def test_env_example_names_every_variable_compose_requires_and_holds_no_secret() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    required = set(re.findall(r"\$\{(\w+)(?::\?|:-\})", text))  # no usable default
    example = dict(line.split("=", 1) for line in (DEPLOY / "env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    assert required <= set(example), required - set(example)
    for name in required:
        if name.endswith("_HOST"):  # a host name, not a secret
            assert example[name].endswith("example.org"), name
            continue
        assert example[name] in ("", "change-me", "change-me-too", "change-me-as-well"), name


NOT_PRODUCTION = {"democity", "benchmarks", "simulation"}  # the demo, benchmarks, simulator: not in the image


def test_the_image_contains_every_production_package_and_no_demo_or_benchmark() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    packages = {pattern.rstrip("*") for pattern in find["include"]}
    assert {"cityops", "ingest", "rules", "democity"} <= packages  # "cityops*" also takes cityops_cli
    for package in sorted(packages - NOT_PRODUCTION | {"cityops_cli"}):
        assert f"COPY {package} ./{package}" in dockerfile, package
    for package in NOT_PRODUCTION:
        assert f"COPY {package} " not in dockerfile, package


# --- TLS and database roles (issue 18, parts 7 and 8) --------------------------------------

LONG_RUNNING = ("ingest-1", "ingest-2", "rules", "alerts", "releases", "api")
ONE_SHOT_OWNER = {"migrate", "db-roles", "broker-auth", "cli"}  # the schema's owner: tools, run on purpose


def env_values(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    return {k: str(v) for k, v in env.items()} if isinstance(env, dict) else {}


def test_compose_publishes_only_the_proxy_and_the_tls_broker() -> None:
    services = compose()["services"]
    published = {name: service["ports"] for name, service in services.items() if service.get("ports")}
    assert published == {"proxy": ["443:443"], "mosquitto": ["8883:8883"]}
    assert all("expose" not in s for s in services.values())


def test_the_broker_listens_only_with_tls_and_every_mqtt_url_verifies_it() -> None:
    conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text().splitlines()
    listeners = [line for line in conf if line.startswith("listener ")]
    assert listeners == ["listener 8883"]
    for line in ("certfile /cityops/pki/mosquitto.pem", "keyfile /cityops/pki/mosquitto.key", "tls_version tlsv1.2"):
        assert line in conf, line
    services = compose()["services"]
    assert "pki:/cityops/pki:ro" in services["mosquitto"]["volumes"]
    urls = [(n, k, v) for n, s in services.items() for k, v in env_values(s).items()
            if k.endswith(("MQTT_URL", "ADMIN_URL")) and "AGENT" not in k]
    assert len(urls) >= 6
    for name, key, url in urls:
        assert url.startswith("mqtts://") and ":8883?cafile=/cityops/pki/ca.pem" in url, (name, key, url)
        assert "pki:/cityops/pki:ro" in services[name]["volumes"], name
    assert services["cli"]["environment"]["CITYOPS_DEVICES__AGENT_MQTT_URL"].split(":-", 1)[1].startswith("mqtts://")


def test_no_service_connects_as_the_superuser_and_every_connection_verifies_tls() -> None:
    services = compose()["services"]
    for name, service in services.items():
        url = env_values(service).get("CITYOPS_DATABASE_URL")
        if url is None:
            continue
        assert "sslmode=verify-full&sslrootcert=/cityops/pki/ca.pem" in url, name
        user = url.split("://", 1)[1].split(":", 1)[0]
        if name in LONG_RUNNING:
            service_name = "ingest" if name.startswith("ingest-") else name
            assert user == f"cityops_{service_name}", (name, user)
        else:
            assert name in ONE_SHOT_OWNER, f"{name} connects as the owner {user}"
    assert set(LONG_RUNNING) <= set(services)
    # the one-shot db-roles gives each of them its login
    roles = services["db-roles"]["environment"]
    for service_name in ("ingest", "api", "rules", "alerts", "releases", "grafana"):
        assert f"CITYOPS_STORAGE__ROLE_PASSWORDS__{service_name.upper()}" in roles, service_name
    grafana = services["grafana"]["environment"]
    assert grafana["CITYOPS_GRAFANA_DB_USER"] == "cityops_grafana"
    assert grafana["CITYOPS_GRAFANA_DB_SSLMODE"] == "verify-full"  # as every service: the CA checks the server
    assert grafana["CITYOPS_GRAFANA_DB_SSLROOTCERT"] == "/cityops/pki/ca.pem"


def test_postgresql_runs_tls_and_refuses_plain_connections() -> None:
    db = compose()["services"]["timescaledb"]
    settings = dict(o.split("=", 1) for o in db["command"][2::2])
    assert db["command"][0] == "postgres" and db["command"][1::2] == ["-c"] * len(settings)
    assert settings["ssl"] == "on" and settings["ssl_cert_file"] == "/cityops/pki/timescaledb.pem"
    assert settings["ssl_key_file"] == "/cityops/pki/timescaledb.key"
    assert f"./timescaledb/pg_hba.conf:{settings['hba_file']}:ro" in db["volumes"]
    hba = [line.split() for line in (DEPLOY / "timescaledb" / "pg_hba.conf").read_text().splitlines()
           if line.strip() and not line.startswith("#")]
    network = [rule for rule in hba if rule[0] != "local"]
    assert {rule[0] for rule in network} == {"hostssl", "hostnossl"}
    assert all(rule[-1] == "reject" for rule in network if rule[0] == "hostnossl")
    assert all(rule[-1] == "scram-sha-256" for rule in network if rule[0] == "hostssl")


def test_the_api_and_grafana_are_behind_the_tls_proxy_it_trusts() -> None:
    doc = compose()
    services = doc["services"]
    proxy = services["proxy"]
    address = proxy["networks"]["default"]["ipv4_address"]
    subnet = doc["networks"]["default"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(address) in ipaddress.ip_network(subnet)
    api = services["api"]["environment"]
    assert json.loads(api["CITYOPS_API__TRUSTED_PROXIES"]) == [address]
    assert api["CITYOPS_ACCOUNTS__PUBLIC_BASE_URL"].startswith("https://")
    assert services["grafana"]["environment"]["GF_SERVER_ROOT_URL"].startswith("https://")
    for service in services.values():
        download = env_values(service).get("CITYOPS_RELEASES__DOWNLOAD_BASE_URL")
        assert download is None or download.startswith("https://")
    caddy = (DEPLOY / "proxy" / "Caddyfile").read_text()
    assert "./proxy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert "reverse_proxy {$CITYOPS_API_UPSTREAM:api:8000}" in caddy
    assert "reverse_proxy {$GRAFANA_UPSTREAM:grafana:3000}" in caddy
    assert caddy.count("tls /cityops/pki/proxy.pem /cityops/pki/proxy.key") == 2


def test_the_ca_key_is_mounted_by_the_pki_tool_only() -> None:
    services = compose()["services"]
    holders = [n for n, s in services.items() if any(str(v).startswith("pki-ca:") for v in s.get("volumes", []))]
    assert holders == ["pki"]
    pki = services["pki"]
    assert pki["environment"]["CITYOPS_PKI__CA_KEY"].startswith("/cityops/ca/")
    assert parse_cityops([*pki["entrypoint"], "server", "mosquitto", "--dns", "mosquitto", "--owner", "1883"]).owner


def test_systemd_examples_use_tls_and_a_role_per_service() -> None:
    text = "\n".join(p.read_text() for p in (DEPLOY / "systemd").glob("*.env.example"))
    assignments = [line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")]
    db_urls = [v for k, v in assignments if k == "CITYOPS_DATABASE_URL"]
    mqtt_urls = [v for k, v in assignments if k == "CITYOPS_MQTT_URL"]
    assert len(db_urls) == 6 and len(mqtt_urls) == 4
    accounts = {u.split("://", 1)[1].split(":", 1)[0] for u in mqtt_urls}
    assert accounts == {"service.ingest-1", "service.api", "service.alerts", "service.releases"}   # one each
    assert all("sslmode=verify-full" in u and "sslrootcert=" in u for u in db_urls)
    users = {u.split("://", 1)[1].split(":", 1)[0] for u in db_urls}
    assert users == {"cityops", "cityops_ingest", "cityops_api", "cityops_rules", "cityops_alerts", "cityops_releases"}
    assert all(u.startswith("mqtts://") and "?cafile=" in u for u in mqtt_urls)
    assert "mqtt://" not in text.replace("mqtts://", "")
    assert ["CITYOPS_API__TRUSTED_PROXIES", '["127.0.0.1"]'] in assignments
    for unit, own in (("cityops-rules.service", "rules.env"), ("cityops-alerts.service", "alerts.env"),
                      ("cityops-releases.service", "releases.env"), ("cityops-api.service", "api-db.env")):
        files = [line.split("=", 1)[1] for line in (DEPLOY / "systemd" / unit).read_text().splitlines()
                 if line.startswith("EnvironmentFile=")]
        assert files.index(f"/etc/cityops/{own}") > files.index("/etc/cityops/cityops.env"), unit
    agent = (DEPLOY / "agent" / "agent.example.toml").read_text()
    assert 'url = "mqtts://' in agent and "ca_file = " in agent and 'base_url = "https://' in agent


# --- systemd ----------------------------------------------------------------------------

UNITS = sorted((DEPLOY / "systemd").glob("*.service"))


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_every_systemd_unit_runs_a_cityops_command(unit: Path) -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(unit.read_text())
    assert {"Unit", "Service", "Install"} <= set(parser.sections())
    argv = shlex.split(parser["Service"]["ExecStart"])
    assert argv[0] == "/opt/cityops/venv/bin/cityops"
    parse_cityops(argv)
    assert parser["Service"]["User"] == "cityops"


def test_the_units_cover_the_services() -> None:
    names = {u.name for u in UNITS}
    assert names >= {"cityops-migrate.service", "cityops-ingest@.service", "cityops-rules.service",
                     "cityops-alerts.service", "cityops-api.service", "cityops-releases.service"}
    ingest = (DEPLOY / "systemd" / "cityops-ingest@.service").read_text()
    assert "CITYOPS_INGEST__CLIENT_ID=cityops-ingest-%i" in ingest  # distinct sessions per instance


# --- the Mosquitto config -----------------------------------------------------------------

def test_the_committed_broker_config_is_what_the_generator_writes(tmp_path: Path) -> None:
    import asyncio

    out = tmp_path / "mosquitto.conf"
    args = build_parser().parse_args([*COMPOSE_BROKER_ARGS, "--out", str(out)])
    assert asyncio.run(args.handler(args, load_settings())) == 0
    assert (DEPLOY / "mosquitto" / "mosquitto.conf").read_text() == out.read_text(), \
        "deploy/mosquitto/mosquitto.conf is stale: regenerate it with " + shlex.join(["cityops", *COMPOSE_BROKER_ARGS])


def test_the_config_says_what_ingest_relies_on() -> None:
    tls = Tls("/etc/mosquitto/certs/server.pem", "/etc/mosquitto/certs/server.key")
    text = render_broker_config(broker_config(password_file="/p", acl_file="/a", persistence_dir="/var/lib/m",
                                              plain=["127.0.0.1:1883"], tls_listeners=["8883"], tls=tls))
    lines = text.splitlines()
    for line in ("allow_anonymous false", "persistence true", "persistence_location /var/lib/m/",
                 "max_queued_messages 1000000", "max_inflight_messages 10000", "password_file /p", "acl_file /a",
                 "listener 1883 127.0.0.1", "listener 8883", "certfile /etc/mosquitto/certs/server.pem"):
        assert line in lines, line
    assert lines.index("listener 8883") < lines.index("certfile /etc/mosquitto/certs/server.pem")
    assert lines.index("certfile /etc/mosquitto/certs/server.pem") > lines.index("listener 1883 127.0.0.1")


@pytest.mark.parametrize(("build", "field"), [
    (lambda: BrokerConfig("/p", "/a", "/d", listeners=()), "listener"),
    (lambda: BrokerConfig("/p", "/a", "/d", listeners=(Listener(1883), Listener(1883))), "listener"),
    (lambda: BrokerConfig("/p", "/a", "/d", max_queued_messages=1000), "max_queued_messages"),
    (lambda: Listener(70_000), "listener"),
    (lambda: broker_config(password_file="/p", acl_file="/a", persistence_dir="/d", tls_listeners=["8883"]), "tls"),
    (lambda: Tls("c", "k", require_certificate=True), "cafile"),
])
def test_a_config_that_cannot_work_is_refused(build: Any, field: str) -> None:
    with pytest.raises(InvalidField) as refused:
        build()
    assert refused.value.field == field  # type: ignore[attr-defined]


async def test_the_generated_config_runs_mosquitto_with_the_registry_accounts(
        db: Database, unique: str, tmp_path: Path) -> None:
    binary = shutil.which("mosquitto")
    if binary is None:
        skip_or_fail("no `mosquitto` binary on PATH (apt-get install mosquitto)")
    assert binary is not None
    passwords, acl, data = tmp_path / "passwords", tmp_path / "acl", tmp_path / "data"
    issued = await add_device(db, frog(f"{unique}-a"))
    await sync_broker(db, passwords, acl)
    port = free_port()
    config = tmp_path / "mosquitto.conf"
    config.write_text(render_broker_config(broker_config(
        password_file=str(passwords), acl_file=str(acl), persistence_dir=str(data),
        plain=[f"127.0.0.1:{port}"], pid_file=str(tmp_path / "mosquitto.pid"))))
    data.mkdir()
    user = mosquitto_user()
    if user:  # started as root, the broker runs as `mosquitto`: it must read the files and write its data
        make_traversable(tmp_path)
        for path in (passwords, acl, data, tmp_path):
            shutil.chown(path, user)
    log = tmp_path / "broker.log"
    proc = spawn([binary, "-c", str(config)], log_path=log, user=user)
    try:
        await wait_for_port(proc, port, name="mosquitto", log_path=log)
        assert connack(port, issued.name, issued.secret) == 0
        assert connack(port, issued.name, "not-the-secret") != 0
        assert connack(port, None, None) != 0  # anonymous
        assert (tmp_path / "mosquitto.pid").read_text().strip() == str(proc.pid)
    finally:
        await stop_process(proc)
    assert (data / "mosquitto.db").exists()  # persistence is on: the session store was written


def test_each_compose_service_uses_its_own_broker_account_and_only_the_api_may_change_accounts() -> None:
    """Issue 18: every service its own MQTT account (each bound to one client id on the broker); the broker's
    admin credential (it changes every account) only where accounts are changed: the API, the cli, broker-auth."""
    services = compose()["services"]
    account = {name: str(svc.get("environment", {}).get("CITYOPS_MQTT_URL", "")).split("://")[-1].split(":")[0]
               for name, svc in services.items()}
    assert account["alerts"] == "service.alerts" and account["releases"] == "service.releases"
    assert account["api"] == "service.api" and account["ingest-1"] == "service.ingest-1"
    holders = {name for name, svc in services.items()
               if "CITYOPS_DEVICES__BROKER_ADMIN_URL" in svc.get("environment", {})}
    assert holders <= {"api", "cli", "broker-auth"} and "alerts" not in holders and "releases" not in holders


# --- PostgreSQL high availability (issue 26, part 4: deploy/postgres-ha, docs/scaling.md) --------

POSTGRES_HA = DEPLOY / "postgres-ha"


def patroni_config() -> dict[str, Any]:
    doc = yaml.safe_load((POSTGRES_HA / "patroni.yml").read_text())
    assert isinstance(doc, dict)
    return doc


def secret_keys(node: object, path: str = "") -> list[str]:
    """Every key in a parsed YAML document that holds a password."""
    if isinstance(node, dict):
        found = [f"{path}.{key}" for key in node if "password" in str(key)]
        return found + [key for name, value in node.items() for key in secret_keys(value, f"{path}.{name}")]
    if isinstance(node, list):
        return [found for item in node for found in secret_keys(item, path)]
    return []


def test_patroni_keeps_every_receipted_commit_on_two_machines() -> None:
    """A receipt is sent after ingest's COMMIT: the commit must wait for a synchronous standby,
    and Patroni must promote only that standby (docs/scaling.md, "PostgreSQL high availability")."""
    dcs = patroni_config()["bootstrap"]["dcs"]
    assert dcs["synchronous_mode"] is True
    assert dcs["synchronous_mode_strict"] is True  # no sync standby left: writes wait, never one copy
    assert dcs.get("synchronous_node_count", 1) >= 1
    parameters = dcs["postgresql"]["parameters"]
    assert parameters["synchronous_commit"] in ("on", "remote_apply")
    assert "synchronous_standby_names" not in parameters  # Patroni's to set in synchronous mode
    assert "timescaledb" in parameters["shared_preload_libraries"].split(",")
    # the local parameters must not lower it either (they override the cluster-wide ones)
    assert "synchronous_commit" not in patroni_config()["postgresql"].get("parameters", {})


def test_patroni_takes_connections_from_the_network_only_with_tls() -> None:
    config = patroni_config()
    postgresql = config["postgresql"]
    assert postgresql["parameters"]["ssl"] == "on"
    rules = [line.split() for line in postgresql["pg_hba"]]
    network = [rule for rule in rules if rule[0] != "local"]
    assert {rule[0] for rule in network} == {"hostssl", "hostnossl"}  # never a plain `host` line
    assert all(rule[-1] == "scram-sha-256" for rule in network if rule[0] == "hostssl")
    assert all(rule[-1] == "reject" for rule in network if rule[0] == "hostnossl")
    assert all(rule[-1] != "trust" for rule in rules)
    assert any(rule[:2] == ["hostssl", "replication"] for rule in network)
    for user in ("superuser", "replication"):
        auth = postgresql["authentication"][user]
        assert auth["sslmode"] == "verify-full" and "password" not in auth, user  # secrets from the environment
    assert not secret_keys(config)  # PATRONI_SUPERUSER_PASSWORD etc. come from the environment
    assert config["etcd3"]["protocol"] == "https" and config["restapi"]["certfile"]


def test_the_cluster_has_three_members_and_the_services_name_them_all() -> None:
    config = patroni_config()
    members = [host.rsplit(":", 1)[0] for host in config["etcd3"]["hosts"]]
    assert len(members) == len(set(members)) == 3
    assert config["postgresql"]["connect_address"].rsplit(":", 1)[0] == members[0]
    example = dict(line.split("=", 1) for line in (POSTGRES_HA / "database.env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    url = example["CITYOPS_DATABASE_URL"]
    netloc, rest = url.split("://", 1)[1].split("/", 1)
    userinfo, hosts = netloc.rsplit("@", 1)
    assert ":" not in userinfo  # the password is PGPASSWORD's, kept out of the URL and its logs
    assert [h.rsplit(":", 1)[0] for h in hosts.split(",")] == members
    query = dict(item.split("=", 1) for item in rest.split("?", 1)[1].split("&"))
    assert query["target_session_attrs"] == "read-write"  # the primary, whichever node it is now
    assert query["sslmode"] == "verify-full" and query["sslrootcert"].endswith("ca.pem")
    assert load_settings(database_url=url).database_url is not None  # the platform's settings take it
