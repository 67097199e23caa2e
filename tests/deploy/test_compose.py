"""compose.yaml, deploy/Dockerfile and the RabbitMQ definitions hold together (checked by reading
them: no Docker engine is needed, or run)."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from boochat import topology
from boochat.settings import Settings
from boochat.supervisor import WORKERS
from contracts.routing import Names
from workers.runtime.service import GRACEFUL_TIMEOUT_SECONDS

ROOT = Path(__file__).resolve().parents[2]
INFRASTRUCTURE = {"mongo", "rabbitmq"}
OPTIONAL = {"minio"}  # started with a profile only
DEFAULT = Names("boochat")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def definitions() -> dict[str, Any]:
    return json.loads((ROOT / "deploy/rabbitmq/definitions.json").read_text())


def boochat_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: service for name, service in services.items() if name not in INFRASTRUCTURE | OPTIONAL}


def seconds(duration: str) -> float:
    """A compose duration (``1m30s``, ``45s``) in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(number) * units[unit] for number, unit in parts)


def written_workers() -> list[str]:
    return sorted(path.parent.name for path in (ROOT / "workers").glob("*/app.py"))


def test_every_service_has_a_health_check(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), name


def test_dependencies_wait_for_health(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions"
        for dependency, condition in depends_on.items():
            assert dependency in services, (name, dependency)
            assert condition == {"condition": "service_healthy"}, (name, dependency)
    for name in boochat_services(services):
        assert INFRASTRUCTURE <= set(services[name]["depends_on"]), name


def test_scalable_services_fix_no_names_or_host_ports(services: dict[str, dict[str, Any]]) -> None:
    for name, service in boochat_services(services).items():
        assert "container_name" not in service, name
        for port in service.get("ports", []):
            assert name == "gateway", f"{name} publishes {port}: workers scale, so they publish nothing"
            published = str(port).rsplit(":", 1)[0].rsplit(":", 1)[-1]
            assert re.fullmatch(r"\d+-\d+", published), f"gateway publishes {port}: use a range for replicas"


def test_stop_grace_outlasts_the_graceful_shutdown(services: dict[str, dict[str, Any]]) -> None:
    for name, service in boochat_services(services).items():
        assert seconds(service["stop_grace_period"]) > GRACEFUL_TIMEOUT_SECONDS, name


def test_every_worker_and_the_gateway_run_from_the_one_image(services: dict[str, dict[str, Any]]) -> None:
    assert set(written_workers()) <= set(WORKERS)
    for worker in written_workers():
        assert services[worker]["command"] == ["worker", worker]
    assert services["gateway"]["command"] == ["gateway"]
    images = {(s["image"], s["build"]["dockerfile"]) for s in boochat_services(services).values()}
    assert images == {("${BOOCHAT_IMAGE:-boochat:latest}", "deploy/Dockerfile")}
    assert set(boochat_services(services)) == {"gateway", *written_workers()}


def test_environment_names_real_settings(services: dict[str, dict[str, Any]]) -> None:
    fields = {f"BOOCHAT_{name.upper()}" for name in Settings.model_fields}
    for name, service in boochat_services(services).items():
        environment = service["environment"]
        assert set(environment) <= fields, (name, set(environment) - fields)
        assert environment["BOOCHAT_METRICS_PORT"] == "9100", name
        assert ":9100/readyz" in " ".join(service["healthcheck"]["test"]), name


def test_only_the_gateway_gets_the_jwt_secret(services: dict[str, dict[str, Any]]) -> None:
    """Compose reads .env to fill in the file; no container gets it whole (it holds every secret)."""
    assert re.fullmatch(r"\$\{BOOCHAT_JWT_SECRET:\?.+\}", services["gateway"]["environment"]["BOOCHAT_JWT_SECRET"])
    for name, service in services.items():
        files = [entry["path"] if isinstance(entry, dict) else entry for entry in service.get("env_file", [])]
        assert ".env" not in files, f"{name} would get every secret in .env"
        if name != "gateway":
            assert "JWT" not in json.dumps(service), f"{name} gets the JWT secret"


def test_the_broker_user_is_not_an_administrator(tmp_path: Path) -> None:
    """deploy/rabbitmq/entrypoint.sh, run with stand-ins for chown and the image's entrypoint: the
    user it writes has no tags and only permissions on the virtual host; quotes survive."""
    users = run_entrypoint(
        "deploy/rabbitmq/entrypoint.sh",
        tmp_path,
        {"BOOCHAT_RABBITMQ_PASSWORD": 'p"a\\ss', "BOOCHAT_RABBITMQ_USERS_FILE": str(tmp_path / "users.json")},
    )
    written = json.loads(users.read_text())
    assert written["users"] == [{"name": "boochat", "password": 'p"a\\ss', "tags": []}]
    assert written["permissions"] == [{"user": "boochat", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}]
    assert stat.S_IMODE(users.stat().st_mode) == 0o600


def test_mongo_requires_authentication(services: dict[str, dict[str, Any]]) -> None:
    mongo = services["mongo"]
    command = mongo["command"]
    assert command[command.index("--keyFile") + 1] == "/data/configdb/keyfile"  # in the mongo-config volume
    environment = mongo["environment"]
    assert environment["MONGO_INITDB_ROOT_USERNAME"]
    assert re.fullmatch(r"\$\{MONGO_ROOT_PASSWORD:\?.+\}", environment["MONGO_INITDB_ROOT_PASSWORD"])
    assert re.fullmatch(r"\$\{MONGO_PASSWORD:\?.+\}", environment["BOOCHAT_MONGO_PASSWORD"])
    for name, service in boochat_services(services).items():
        url = service["environment"]["BOOCHAT_MONGO_URL"]
        user = environment["BOOCHAT_MONGO_USER"]
        assert url.startswith(f"mongodb://{user}:${{MONGO_PASSWORD:?"), name
        assert url.endswith("@mongo:27017/?replicaSet=rs0&authSource=admin"), name
    probe = " ".join(mongo["healthcheck"]["test"])
    assert "--authenticationDatabase admin" in probe and "$$MONGO_INITDB_ROOT_PASSWORD" in probe


def test_mongo_app_user_reads_and_writes_only_boochat_databases(services: dict[str, dict[str, Any]]) -> None:
    mounts = {target: source for source, target, *_ in (v.split(":") for v in services["mongo"]["volumes"])}
    script = mounts["/docker-entrypoint-initdb.d/10-create-app-user.js"]
    text = (ROOT / script).read_text()
    workers = json.loads(re.search(r"const workers = (\[.*?\]);", text).group(1))  # type: ignore[union-attr]
    assert workers == list(WORKERS)
    assert "`${namespace}_${worker}`" in text and Names("ns").database("rooms") == "ns_rooms"
    assert re.findall(r'role: "(\w+)"', text) == ["readWrite"]


def test_mongo_makes_its_key_file_once(tmp_path: Path) -> None:
    keyfile = tmp_path / "keyfile"
    environment = {"BOOCHAT_MONGO_KEYFILE": str(keyfile)}
    run_entrypoint("deploy/mongo/entrypoint.sh", tmp_path, environment)
    key = keyfile.read_text()
    assert re.fullmatch(r"[A-Za-z0-9+/=]{1008}", key)  # 756 random bytes; MongoDB takes 6 to 1024 characters
    assert stat.S_IMODE(keyfile.stat().st_mode) == 0o400  # mongod refuses a key file others can read
    run_entrypoint("deploy/mongo/entrypoint.sh", tmp_path, environment)
    assert keyfile.read_text() == key, "a restart keeps the key"


def run_entrypoint(script: str, tmp_path: Path, environment: dict[str, str]) -> Path:
    """Run a compose entrypoint with ``chown`` and the image's ``docker-entrypoint.sh`` stood in for;
    returns the file the stand-in entrypoint was given arguments in (it proves the script went on)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    called = tmp_path / "called"
    for name, body in (("chown", "exit 0"), ("docker-entrypoint.sh", f'echo "$@" > {called}')):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", **environment}
    subprocess.run(["bash", str(ROOT / script), "server"], env=env, check=True, timeout=30)
    assert called.read_text().split() == ["server"]
    return Path(environment.get("BOOCHAT_RABBITMQ_USERS_FILE", called))


def test_mongo_runs_a_replica_set_it_initiates(services: dict[str, dict[str, Any]]) -> None:
    mongo = services["mongo"]
    assert int(re.match(r"mongo:(\d+)", mongo["image"]).group(1)) >= 7  # type: ignore[union-attr]
    command = mongo["command"]
    assert command[command.index("--replSet") + 1] == "rs0"
    probe = " ".join(mongo["healthcheck"]["test"])
    assert "rs.initiate" in probe and "mongo:27017" in probe


def test_rabbitmq_is_recent_and_loads_the_definitions(services: dict[str, dict[str, Any]]) -> None:
    rabbitmq = services["rabbitmq"]
    major, minor = map(int, re.match(r"rabbitmq:(\d+)\.(\d+)", rabbitmq["image"]).groups())  # type: ignore[union-attr]
    assert (major, minor) >= (3, 13)
    mounts = {target: source for source, target, *_ in (v.split(":") for v in rabbitmq["volumes"])}
    conf = (ROOT / "deploy/rabbitmq/rabbitmq.conf").read_text()
    path = re.search(r"^definitions\.local\.path\s*=\s*(\S+)", conf, re.MULTILINE).group(1)  # type: ignore[union-attr]
    assert re.search(r"^definitions\.import_backend\s*=\s*local_filesystem$", conf, re.MULTILINE)
    assert mounts[f"{path}/10-boochat.json"] == "./deploy/rabbitmq/definitions.json"
    assert any(
        target.startswith("/etc/rabbitmq/conf.d/") and source.endswith("rabbitmq.conf")
        for target, source in mounts.items()
    )
    entrypoint = (ROOT / "deploy/rabbitmq/entrypoint.sh").read_text()
    assert f"{path}/20-users.json" in entrypoint


def test_data_lives_in_named_volumes(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    for service, data in (("mongo", "/data/db"), ("rabbitmq", "/var/lib/rabbitmq")):
        volume = next(v.split(":")[0] for v in services[service]["volumes"] if v.split(":")[1] == data)
        assert volume in compose["volumes"], (service, volume)


def test_definitions_hold_the_policies_the_topology_expects(definitions: dict[str, Any]) -> None:
    policies = {policy["apply-to"]: policy for policy in definitions["policies"]}
    work = policies["quorum_queues"]
    assert work["pattern"].startswith("^boochat\\.")
    assert re.match(work["pattern"], DEFAULT.command_queue("rooms"))
    assert re.match(work["pattern"], DEFAULT.reaction_queue("messaging", "announce"))
    assert work["definition"] == {
        "dead-letter-exchange": DEFAULT.dead_letters,
        "delivery-limit": topology.DELIVERY_LIMIT,
    }
    log = policies["streams"]
    assert re.fullmatch(log["pattern"], DEFAULT.log) and not re.match(log["pattern"], DEFAULT.command_queue("rooms"))
    # The log keeps every event by default: boochat replay rebuilds from the first one. An operator
    # who wants retention adds "max-age" here (README, Operations).
    assert "max-age" not in log["definition"]
    assert {"name": "/"} in definitions["vhosts"]
    assert "users" not in definitions, "credentials come from .env, never from the repository"


def test_the_image_runs_the_console_script_as_a_non_root_user() -> None:
    dockerfile = (ROOT / "deploy/Dockerfile").read_text()
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (.+)$", dockerfile, re.MULTILINE).group(1))  # type: ignore[union-attr]
    assert entrypoint == ["boochat"] and "boochat" in scripts
    assert re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)[-1] == "python:3.11-slim"
    user = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert user and user[-1] not in ("root", "0")
    assert "requirements/base.txt" in dockerfile, "dependencies from the lock without dev extras (tests/test_lock.py)"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests", ".env"} <= set(ignored)


def test_minio_is_pinned_optional_and_holds_the_bucket_the_comments_name(services: dict[str, dict[str, Any]]) -> None:
    """The S3 store for files (boochat/s3store.py): a pinned MinIO release, only with --profile s3,
    never a dependency of a service that runs without it, and the gateway and media shown how to use it."""
    minio = services["minio"]
    assert re.fullmatch(r"minio/minio:RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ", minio["image"])
    assert minio["profiles"] == ["s3"] and "local/boochat" in " ".join(minio["healthcheck"]["test"])
    assert "mc mb --ignore-existing local/boochat" in " ".join(minio["command"])
    assert "minio-data:/data" in minio["volumes"]
    for name, service in services.items():
        assert "minio" not in service.get("depends_on", {}), f"{name} would not start without the s3 profile"
    text = (ROOT / "compose.yaml").read_text()
    fields = {f"BOOCHAT_{name.upper()}" for name in Settings.model_fields}
    commented = set(re.findall(r"# (BOOCHAT_(?:FILES_STORE|S3_\w+)):", text))
    assert commented <= fields and {"BOOCHAT_FILES_STORE", "BOOCHAT_S3_BUCKET", "BOOCHAT_S3_ENDPOINT_URL"} <= commented
    assert text.count("# BOOCHAT_FILES_STORE: s3") == 2  # the gateway and media
