"""deploy/kubernetes: the base and the example overlay render with kustomize, every object is valid
against the Kubernetes schemas (the operators' resources against the fields their operators
document), and what they say agrees with the code: settings, ports, queues, databases, policies."""

from __future__ import annotations

import inspect
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from websockets.asyncio.server import serve

from boochat.settings import Settings
from boochat.supervisor import GATEWAY, WORKERS
from contracts.routing import Names
from workers.runtime.service import GRACEFUL_TIMEOUT_SECONDS

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZATIONS = {"base": ROOT / "deploy/kubernetes/base", "example": ROOT / "deploy/kubernetes/overlays/example"}
# The oldest Kubernetes the manifests claim to run on, and the newest the validator knows.
VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
MONITORING = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
DEFAULTS = {name: field.default for name, field in Settings.model_fields.items()}


def render(kustomization: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize`` (kustomize built into kubectl, which this machine image ships)."""
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is needed to render deploy/kubernetes (kubectl kustomize)"
    output = subprocess.run(
        [kubectl, "kustomize", str(kustomization)], capture_output=True, text=True, timeout=60, check=False
    )
    assert output.returncode == 0, output.stderr
    return [document for document in yaml.safe_load_all(output.stdout) if document]


@pytest.fixture(scope="module", params=sorted(KUSTOMIZATIONS))
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(KUSTOMIZATIONS[request.param])


def of_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def containers(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(deployment name, pod spec, container) of every container of every Deployment."""
    for name, deployment in of_kind(objects, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        for container in pod["containers"]:
            yield name, pod, container


def config(objects: list[dict[str, Any]]) -> dict[str, str]:
    return of_kind(objects, "ConfigMap")["boochat"]["data"]


def env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in container.get("env", [])}


def port(container: dict[str, Any], name: str) -> int:
    return next(p["containerPort"] for p in container["ports"] if p["name"] == name)


# Schemas ----------------------------------------------------------------------------------------

# The operators' resources, as far as these manifests use them (fields from each operator's API
# reference); anything else is a typo the operator would ignore or refuse.
STRING = {"type": "string"}


def closed(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties, "additionalProperties": False}


NAME_REF = closed(["name"], name=STRING)
RESOURCES = closed([], requests={"type": "object"}, limits={"type": "object"})


CRD_SPECS: dict[tuple[str, str], dict[str, Any]] = {
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"): closed(
        ["replicas", "image"],
        replicas={"type": "integer", "minimum": 1},
        image={"type": "string"},
        persistence=closed(["storage"], storage={"type": "string"}),
        resources=RESOURCES,
    ),
    ("rabbitmq.com/v1beta1", "Policy"): closed(
        ["name", "pattern", "definition", "rabbitmqClusterReference"],
        name={"type": "string"},
        vhost={"type": "string"},
        pattern={"type": "string"},
        applyTo={"enum": ["queues", "exchanges", "all", "classic_queues", "quorum_queues", "streams"]},
        priority={"type": "integer"},
        definition={"type": "object"},
        rabbitmqClusterReference=NAME_REF,
    ),
    ("rabbitmq.com/v1beta1", "User"): closed(
        ["rabbitmqClusterReference"],
        tags={"type": "array", "items": {"enum": ["management", "policymaker", "monitoring", "administrator"]}},
        rabbitmqClusterReference=NAME_REF,
    ),
    ("rabbitmq.com/v1beta1", "Permission"): closed(
        ["vhost", "permissions", "rabbitmqClusterReference"],
        vhost={"type": "string"},
        userReference=NAME_REF,
        permissions=closed([], configure={"type": "string"}, write={"type": "string"}, read={"type": "string"}),
        rabbitmqClusterReference=NAME_REF,
    ),
    ("mongodbcommunity.mongodb.com/v1", "MongoDBCommunity"): closed(
        ["members", "type", "version", "security", "users"],
        members={"type": "integer", "minimum": 1},
        type={"enum": ["ReplicaSet"]},
        version={"type": "string", "pattern": r"^\d+\.\d+\.\d+$"},
        security=closed(["authentication"], authentication=closed(["modes"], modes={"type": "array"})),
        users={
            "type": "array",
            "items": closed(
                ["name", "db", "passwordSecretRef", "roles", "scramCredentialsSecretName"],
                name={"type": "string"},
                db={"type": "string"},
                passwordSecretRef=NAME_REF,
                scramCredentialsSecretName={"type": "string"},
                roles={"type": "array", "items": closed(["name", "db"], name=STRING, db=STRING)},
            ),
        },
        statefulSet={"type": "object"},
    ),
    ("keda.sh/v1alpha1", "TriggerAuthentication"): closed(
        ["secretTargetRef"],
        secretTargetRef={
            "type": "array",
            "items": closed(["parameter", "name", "key"], parameter=STRING, name=STRING, key=STRING),
        },
    ),
    ("keda.sh/v1alpha1", "ScaledObject"): closed(
        ["scaleTargetRef", "triggers"],
        scaleTargetRef=NAME_REF,
        minReplicaCount={"type": "integer", "minimum": 0},
        maxReplicaCount={"type": "integer", "minimum": 1},
        triggers={
            "type": "array",
            "minItems": 1,
            "items": closed(
                ["type", "metadata"],
                type={"const": "rabbitmq"},
                metadata=closed(
                    ["queueName", "mode", "value"],
                    protocol={"enum": ["amqp", "http", "auto"]},
                    host={"type": "string"},
                    queueName={"type": "string"},
                    mode={"enum": ["QueueLength", "MessageRate"]},
                    value={"type": "string", "pattern": r"^\d+(\.\d+)?$"},
                ),
                authenticationRef=NAME_REF,
            ),
        },
    ),
}


def test_every_object_is_valid(rendered: list[dict[str, Any]]) -> None:
    for obj in rendered:
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        custom = CRD_SPECS.get((obj["apiVersion"], obj["kind"]))
        if custom is not None:
            assert set(obj) == {"apiVersion", "kind", "metadata", "spec"}, where
            try:
                jsonschema.validate(obj["spec"], custom)
            except jsonschema.ValidationError as error:
                pytest.fail(f"{where}: {error.message} at spec.{'.'.join(map(str, error.path))}")
            continue
        for version in VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{where} (Kubernetes {version}): {error.message} at {'.'.join(map(str, error.path))}")


def test_the_example_overlay_names_its_namespace_and_image() -> None:
    objects = render(KUSTOMIZATIONS["example"])
    assert {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"} == {"boochat"}
    images = {container["image"] for _, _, container in containers(objects)}
    assert images == {"registry.example.com/boochat:0.1.0"}
    assert of_kind(objects, "Deployment")["gateway"]["spec"]["replicas"] == 3


# Agreement with the code ------------------------------------------------------------------------


def test_one_deployment_per_worker_and_the_gateway(rendered: list[dict[str, Any]]) -> None:
    deployments = of_kind(rendered, "Deployment")
    assert set(deployments) == {GATEWAY, *WORKERS}
    for name, _, container in containers(rendered):
        assert container["args"] == (["gateway"] if name == GATEWAY else ["worker", name]), name
        assert deployments[name]["spec"]["replicas"] >= 2, f"{name}: one replica is a single point of failure"


def test_settings_are_real_and_ports_match_the_defaults(rendered: list[dict[str, Any]]) -> None:
    fields = {f"BOOCHAT_{name.upper()}" for name in Settings.model_fields}
    settings = config(rendered)
    assert set(settings) <= fields, set(settings) - fields
    assert int(settings["BOOCHAT_METRICS_PORT"]) == DEFAULTS["metrics_port"]
    for name, _, container in containers(rendered):
        variables = env(container)
        named = {v for v in variables if v.startswith("BOOCHAT_")}
        assert named <= fields, (name, named - fields)
        assert port(container, "metrics") == DEFAULTS["metrics_port"], name
        assert container["envFrom"] == [{"configMapRef": {"name": "boochat"}}], name
        assert "BOOCHAT_AMQP_URL" in variables, name
        if name == GATEWAY:
            assert port(container, "ws") == DEFAULTS["gateway_port"]
            assert variables["BOOCHAT_GATEWAY_PORT"]["value"] == str(DEFAULTS["gateway_port"])
        else:
            assert "BOOCHAT_MONGO_URL" in variables, name


def test_only_the_gateway_gets_the_jwt_secret(rendered: list[dict[str, Any]]) -> None:
    for name, _, container in containers(rendered):
        assert ("BOOCHAT_JWT_SECRET" in env(container)) == (name == GATEWAY), name
    assert "BOOCHAT_JWT_SECRET" not in config(rendered)


def test_probes_ask_the_health_endpoints_on_the_right_port(rendered: list[dict[str, Any]]) -> None:
    """Workers serve /healthz and /readyz on the metrics port (boochat/health.py), the gateway on its
    clients' port too (gateway/http.py)."""
    for name, _, container in containers(rendered):
        probe_port = "ws" if name == GATEWAY else "metrics"
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            assert container[probe]["httpGet"] == {"path": path, "port": probe_port}, (name, probe)
        assert set(container["resources"]) == {"requests", "limits"}, name
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]) & set(container["resources"]["limits"])


def test_stopping_pods_get_time_to_drain(rendered: list[dict[str, Any]]) -> None:
    close_timeout = inspect.signature(serve).parameters["close_timeout"].default  # the gateway closes clients
    for name, pod, container in containers(rendered):
        grace = pod["terminationGracePeriodSeconds"]
        if name == GATEWAY:
            delay = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
            assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", str(delay)]
            assert delay >= 10, "load balancers and kube-proxy need a while to drop the endpoint"
            assert grace > delay + close_timeout
        else:
            assert grace > GRACEFUL_TIMEOUT_SECONDS, name


def test_every_deployment_has_a_disruption_budget(rendered: list[dict[str, Any]]) -> None:
    budgets = of_kind(rendered, "PodDisruptionBudget")
    for name, deployment in of_kind(rendered, "Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        matching = [b for b in budgets.values() if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(matching) == 1, name
        assert matching[0]["spec"] == {"maxUnavailable": 1, "selector": matching[0]["spec"]["selector"]}, name


def test_keda_scales_every_worker_on_its_command_queue(rendered: list[dict[str, Any]]) -> None:
    names = Names(config(rendered)["BOOCHAT_NAMESPACE"])
    scaled = of_kind(rendered, "ScaledObject")
    authentications = of_kind(rendered, "TriggerAuthentication")
    deployments = of_kind(rendered, "Deployment")
    assert {s["spec"]["scaleTargetRef"]["name"] for s in scaled.values()} == set(WORKERS)
    namespace = next(iter(scaled.values()))["metadata"].get("namespace", "boochat")
    rabbitmq = next(iter(of_kind(rendered, "RabbitmqCluster")))
    for obj in scaled.values():
        worker = obj["spec"]["scaleTargetRef"]["name"]
        [trigger] = obj["spec"]["triggers"]
        assert trigger["metadata"]["queueName"] == names.command_queue(worker)
        # KEDA runs in its own namespace: the broker's host names ours in full.
        assert trigger["metadata"]["host"] == f"amqp://{rabbitmq}.{namespace}.svc:5672/"
        assert trigger["authenticationRef"]["name"] in authentications
        replicas = deployments[worker]["spec"]["replicas"]
        assert obj["spec"]["minReplicaCount"] <= replicas <= obj["spec"]["maxReplicaCount"]


def test_metrics_ports_are_reachable_from_monitoring_only(rendered: list[dict[str, Any]]) -> None:
    """NetworkPolicies only add: a pod they select takes what any rule allows. Every pod is selected,
    and every rule that lets traffic reach the metrics port comes from the monitoring namespace."""
    policies = list(of_kind(rendered, "NetworkPolicy").values())
    for name, deployment in of_kind(rendered, "Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        selecting = [p for p in policies if selects(p["spec"]["podSelector"], labels)]
        assert selecting, f"{name} is open to every pod"
        for policy in selecting:
            assert "Ingress" in policy["spec"]["policyTypes"]
            for rule in policy["spec"].get("ingress", []):
                ports = {p["port"] for p in rule.get("ports", [])}
                if not ports or "metrics" in ports or DEFAULTS["metrics_port"] in ports:
                    assert rule.get("from") == [MONITORING], (name, policy["metadata"]["name"], rule)
        opened = {p["port"] for policy in selecting for rule in policy["spec"]["ingress"] for p in rule["ports"]}
        assert opened == ({"ws", "files", "metrics"} if name == GATEWAY else {"metrics"}), name


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        value, operator = labels.get(expression["key"]), expression["operator"]
        if (operator == "In") != (value in expression.get("values", [])) and operator in ("In", "NotIn"):
            return False
        if operator in ("Exists", "DoesNotExist") and (operator == "Exists") != (value is not None):
            return False
    return True


def test_rabbitmq_holds_the_policies_of_deploy_rabbitmq(rendered: list[dict[str, Any]]) -> None:
    definitions = json.loads((ROOT / "deploy/rabbitmq/definitions.json").read_text())
    expected = {
        p["name"]: {k: p[k] for k in ("vhost", "pattern", "priority", "definition")} | {"applyTo": p["apply-to"]}
        for p in definitions["policies"]
    }
    policies = {p["spec"]["name"]: p["spec"] for p in of_kind(rendered, "Policy").values()}
    [cluster] = of_kind(rendered, "RabbitmqCluster")
    assert {name: {k: spec[k] for k in expected[name]} for name, spec in policies.items()} == expected
    assert all(spec["rabbitmqClusterReference"]["name"] == cluster for spec in policies.values())
    image = of_kind(rendered, "RabbitmqCluster")[cluster]["spec"]["image"]
    assert re.fullmatch(r"rabbitmq:4\.\d+(-management)?", image)


def test_boochat_connects_as_its_own_users(rendered: list[dict[str, Any]]) -> None:
    """The broker user has no tags; the database user reads and writes the workers' databases only;
    the secrets the containers read are the ones the operators write for those users."""
    [cluster] = of_kind(rendered, "RabbitmqCluster")
    [user] = of_kind(rendered, "User").values()
    assert user["spec"]["tags"] == []
    [permission] = of_kind(rendered, "Permission").values()
    assert permission["spec"]["userReference"]["name"] == user["metadata"]["name"]
    credentials = f"{user['metadata']['name']}-user-credentials"  # the Topology Operator's naming
    [mongodb] = of_kind(rendered, "MongoDBCommunity").values()
    [database_user] = mongodb["spec"]["users"]
    names = Names(config(rendered)["BOOCHAT_NAMESPACE"])
    assert database_user["roles"] == [{"name": "readWrite", "db": names.database(worker)} for worker in WORKERS]
    assert mongodb["spec"]["members"] >= 3 and mongodb["spec"]["security"]["authentication"]["modes"] == ["SCRAM"]
    # The Community Operator's naming: <resource>-<auth database>-<user>.
    connection = f"{mongodb['metadata']['name']}-{database_user['db']}-{database_user['name']}"
    for name, _, container in containers(rendered):
        variables = env(container)
        for key in ("RABBITMQ_USERNAME", "RABBITMQ_PASSWORD"):
            assert variables[key]["valueFrom"]["secretKeyRef"]["name"] == credentials, name
        assert variables["BOOCHAT_AMQP_URL"]["value"] == (
            f"amqp://$(RABBITMQ_USERNAME):$(RABBITMQ_PASSWORD)@{cluster}:5672/"
        ), name
        if name != GATEWAY:
            assert variables["BOOCHAT_MONGO_URL"]["valueFrom"]["secretKeyRef"] == {
                "name": connection,
                "key": "connectionString.standard",
            }, name
