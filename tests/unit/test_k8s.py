"""deploy/k8s renders and validates offline, and its resources keep the promises of docs/deploy.md.

Each overlay is rendered with `kubectl kustomize` (kustomize v5 inside kubectl; a copy of the
tree gets placeholder secret files, as an operator creates them). Built-in kinds are validated
strictly against the Kubernetes OpenAPI schemas shipped by kubernetes-validate, for the oldest
and the newest Kubernetes version supported here; KEDA and Prometheus Operator resources
against tests/k8s_schemas/ (their documented structure, unknown fields refused).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from config.settings import Settings
from monitoring import prometheus_config
from tests.support.prometheus import find_binary

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
SCHEMAS = ROOT / "tests" / "k8s_schemas"
OVERLAYS = ("dev", "prod")
#: The oldest and newest Kubernetes minor versions the manifests are checked against.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
CUSTOM_KINDS = {
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("keda.sh/v1alpha1", "TriggerAuthentication"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
}
POD_OWNERS = ("Deployment", "Job", "CronJob")
SERVING = {
    "churn-scorer": "churn-stream-scorer",
    "churn-api": "churn-stream-api",
    "churn-quality": "churn-stream-scorer",
}
#: Runs exactly once per consumer group: a fixed replica count, replaced (not rolled).
SINGLETONS = ("churn-quality",)


def kustomize(directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [find_binary("kubectl"), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def secret_files(overlay: Path) -> list[str]:
    """The files an overlay's secretGenerator reads (created by the operator, never committed)."""
    spec = yaml.safe_load((overlay / "kustomization.yaml").read_text(encoding="utf-8"))
    files = []
    for generator in spec.get("secretGenerator", []):
        files += [entry.partition("=")[2] or entry for entry in generator.get("files", [])]
    return files


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(K8S, copy, ignore=shutil.ignore_patterns("secrets"))
    for overlay in OVERLAYS:
        for name in secret_files(copy / "overlays" / overlay):
            path = copy / "overlays" / overlay / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"placeholder-{overlay}-{path.name}\n", encoding="utf-8")
    return copy


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest, tree: Path) -> list[dict[str, Any]]:
    return kustomize(tree / "overlays" / request.param)


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec = doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]
    result: dict[str, Any] = spec["template"]["spec"]
    return result


def pod_labels(doc: dict[str, Any]) -> dict[str, str]:
    spec = doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]
    result: dict[str, str] = spec["template"]["metadata"]["labels"]
    return result


def workloads(docs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    return (doc for doc in docs if doc["kind"] in POD_OWNERS)


def config(docs: list[dict[str, Any]]) -> dict[str, str]:
    (config_map,) = [doc for doc in docs if doc["kind"] == "ConfigMap"]
    assert config_map["metadata"]["name"].startswith("churn-config-"), "generated, with a content hash"
    data: dict[str, str] = config_map["data"]
    return data


def crd_schema(api_version: str, kind: str) -> dict[str, Any]:
    name = f"{api_version.replace('/', '_')}_{kind}.json"
    schema: dict[str, Any] = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    return schema


# --- schemas -----------------------------------------------------------------------------


def test_every_resource_is_valid(rendered: list[dict[str, Any]]) -> None:
    kinds = set()
    for doc in rendered:
        kinds.add(doc["kind"])
        if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS:
            jsonschema.validate(doc, crd_schema(doc["apiVersion"], doc["kind"]))
            continue
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)
    expected = {
        *("Namespace", "ServiceAccount", "ConfigMap", "Secret", "PersistentVolumeClaim", "Deployment"),
        *("Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Job", "CronJob", "ScaledObject"),
    }
    assert expected <= kinds, expected - kinds


def test_kubernetes_validation_is_not_vacuous(tree: Path) -> None:
    docs = kustomize(tree / "overlays" / "dev")
    deployment = by_kind(docs, "Deployment")["churn-scorer"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


def test_crd_schemas_refuse_typos(tree: Path) -> None:
    docs = kustomize(tree / "overlays" / "prod")
    scaled = by_kind(docs, "ScaledObject")["churn-scorer"]
    schema = crd_schema(scaled["apiVersion"], "ScaledObject")
    jsonschema.validate(scaled, schema)
    typo = json.loads(json.dumps(scaled))
    typo["spec"]["maxReplicas"] = typo["spec"].pop("maxReplicaCount")
    with pytest.raises(jsonschema.ValidationError, match="maxReplicas"):
        jsonschema.validate(typo, schema)
    unquoted = json.loads(json.dumps(scaled))
    unquoted["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 1000  # KEDA wants strings
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(unquoted, schema)
    monitor = by_kind(docs, "PodMonitor")["churn-scorer"]
    typo = json.loads(json.dumps(monitor))
    typo["spec"]["podMetricsEndpoints"][0]["intervall"] = "15s"
    with pytest.raises(jsonschema.ValidationError, match="intervall"):
        jsonschema.validate(typo, crd_schema(monitor["apiVersion"], "PodMonitor"))


# --- pods: security, resources, probes, volumes --------------------------------------------


def test_every_pod_is_locked_down(rendered: list[dict[str, Any]]) -> None:
    for doc in workloads(rendered):
        name = doc["metadata"]["name"]
        spec = pod_spec(doc)
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] == 10001, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert context["runAsNonRoot"] is True and context["runAsUser"] == 10001, name
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(
                resources["limits"]
            ), name
            mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]["name"]], f"{name}: /tmp must be an emptyDir"


def test_model_store_is_read_only_in_serving_pods(rendered: list[dict[str, Any]]) -> None:
    claims = by_kind(rendered, "PersistentVolumeClaim")
    assert set(claims) == {"churn-model-store"}
    for doc in workloads(rendered):
        spec = pod_spec(doc)
        (volume,) = [v for v in spec["volumes"] if "persistentVolumeClaim" in v]
        assert volume["persistentVolumeClaim"]["claimName"] == "churn-model-store"
        (mount,) = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
        assert mount["mountPath"] == "/models"
        serving = doc["metadata"]["name"] in SERVING
        assert bool(mount.get("readOnly")) == serving, doc["metadata"]["name"]
        assert bool(volume["persistentVolumeClaim"].get("readOnly")) == serving, doc["metadata"]["name"]


def test_serving_deployments_probe_liveness_and_readiness(rendered: list[dict[str, Any]]) -> None:
    deployments = by_kind(rendered, "Deployment")
    assert set(deployments) == set(SERVING)
    ports = {"churn-scorer": ("web", 6066), "churn-api": ("http", 8000), "churn-quality": ("web", 6067)}
    for name, deployment in deployments.items():
        if name in SINGLETONS:
            assert deployment["spec"]["replicas"] == 1, name
            assert deployment["spec"]["strategy"] == {"type": "Recreate"}, name
        else:
            assert "replicas" not in deployment["spec"], f"{name}: the autoscaler owns the replica count"
        (container,) = pod_spec(deployment)["containers"]
        assert container["image"].split("/")[-1].startswith(SERVING[name] + ":"), container["image"]
        port_name, number = ports[name]
        assert {"name": port_name, "containerPort": number} in container["ports"]
        assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": port_name}
        assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": port_name}
        assert container["startupProbe"]["httpGet"]["path"] == "/health/live"


def test_training_job_and_cronjob(rendered: list[dict[str, Any]]) -> None:
    job = by_kind(rendered, "Job")["churn-train"]
    (container,) = pod_spec(job)["containers"]
    script = " ".join([*container["command"], *container["args"]])
    assert script.index("CURRENT") < script.index("churn train"), "trains only when nothing is promoted"
    cron = by_kind(rendered, "CronJob")["churn-retrain"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    (container,) = pod_spec(cron)["containers"]
    assert container["args"][0] == "train" and "--no-promote" in container["args"]
    for doc in (job, cron):
        image = pod_spec(doc)["containers"][0]["image"]
        assert image.split("/")[-1].startswith("churn-stream-training:"), image


# --- settings and secrets ------------------------------------------------------------------


def test_config_holds_only_churn_settings(rendered: list[dict[str, Any]]) -> None:
    values = config(rendered)
    fields = Settings.model_fields
    for key in values:
        assert key.startswith("CHURN_") and key.removeprefix("CHURN_").lower() in fields, key
    Settings.model_validate({k.removeprefix("CHURN_").lower(): v for k, v in values.items()})
    for secret in ("CHURN_API_KEY", "CHURN_KAFKA_SASL_PASSWORD"):
        assert secret not in values, f"{secret} belongs in a Secret file"


def test_secret_settings_are_files_of_mounted_secrets(rendered: list[dict[str, Any]]) -> None:
    secrets = by_kind(rendered, "Secret")
    for doc in workloads(rendered):
        spec = pod_spec(doc)
        volumes = {v["name"]: v for v in spec["volumes"]}
        for container in spec["containers"]:
            mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
            for env in container.get("env", []):
                assert "valueFrom" not in env or "secretKeyRef" not in env["valueFrom"], (
                    f"{doc['metadata']['name']}: {env['name']} as an environment value"
                )
                if not env["name"].endswith("_FILE"):
                    continue
                folder, _, key = env["value"].rpartition("/")
                mount = mounts[folder]
                assert mount.get("readOnly") is True
                secret = volumes[mount["name"]]["secret"]
                assert secret["secretName"] in secrets, secret["secretName"]
                assert secret["defaultMode"] == 0o440
                assert key in secrets[secret["secretName"]]["data"], (env["name"], key)
    api = pod_spec(by_kind(rendered, "Deployment")["churn-api"])["containers"][0]
    assert {e["name"] for e in api["env"]} >= {"CHURN_API_KEY_FILE"}, "the API always has a key"
    for doc in workloads(rendered):  # the trainer signs, every pod that loads a model verifies
        (container,) = pod_spec(doc)["containers"]
        assert "CHURN_MODEL_SIGNING_KEY_FILE" in {e["name"] for e in container.get("env", [])}, doc[
            "metadata"
        ]
    values = config(rendered)
    if values.get("CHURN_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").startswith("SASL"):
        for name in ("churn-scorer", "churn-quality"):  # the Kafka clients
            (container,) = pod_spec(by_kind(rendered, "Deployment")[name])["containers"]
            assert "CHURN_KAFKA_SASL_PASSWORD_FILE" in {e["name"] for e in container["env"]}, name


def test_secret_files_are_never_committed() -> None:
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "deploy/k8s/overlays/*/secrets/" in ignored
    for overlay in OVERLAYS:
        for name in secret_files(K8S / "overlays" / overlay):
            assert name.startswith("secrets/"), (overlay, name)


# --- scaling and disruption ------------------------------------------------------------------


def test_keda_scales_the_scorer_on_lag_up_to_the_partition_count(rendered: list[dict[str, Any]]) -> None:
    values = config(rendered)
    (scaled,) = by_kind(rendered, "ScaledObject").values()
    spec = scaled["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "churn-scorer"}
    assert spec["maxReplicaCount"] == int(values["CHURN_TOPIC_PARTITIONS"]) == 4
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "kafka"
    metadata = trigger["metadata"]
    assert metadata["bootstrapServers"] == values["CHURN_KAFKA_BOOTSTRAP_SERVERS"]
    assert metadata["consumerGroup"] == values["CHURN_SCORER_APP_ID"]
    assert metadata["topic"] == values["CHURN_EVENTS_TOPIC"]
    assert metadata["allowIdleConsumers"] == "false", "never more scorers than partitions"
    hpas = by_kind(rendered, "HorizontalPodAutoscaler")
    assert [h["spec"]["scaleTargetRef"]["name"] for h in hpas.values()] == ["churn-api"], (
        "KEDA owns the scorer"
    )
    if values.get("CHURN_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").startswith("SASL"):
        auth = by_kind(rendered, "TriggerAuthentication")[trigger["authenticationRef"]["name"]]
        refs = {ref["parameter"]: ref for ref in auth["spec"]["secretTargetRef"]}
        assert {"sasl", "username", "password", "tls"} <= set(refs)
        secret = by_kind(rendered, "Secret")[refs["password"]["name"]]
        assert set(secret["data"]) >= {ref["key"] for ref in refs.values()}
        username = secret["data"][refs["username"]["key"]]
        assert base64.b64decode(username).decode() == values["CHURN_KAFKA_SASL_USERNAME"]


def test_disruption_budgets_and_services_select_the_right_pods(rendered: list[dict[str, Any]]) -> None:
    deployments = by_kind(rendered, "Deployment")
    budgets = by_kind(rendered, "PodDisruptionBudget")
    assert set(budgets) == set(SERVING)
    for name, budget in budgets.items():
        labels = pod_labels(deployments[name])
        assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
    assert budgets["churn-scorer"]["spec"]["maxUnavailable"] == 1
    assert budgets["churn-quality"]["spec"]["maxUnavailable"] == 1
    assert budgets["churn-api"]["spec"]["minAvailable"] == 1
    assert by_kind(rendered, "HorizontalPodAutoscaler")["churn-api"]["spec"]["minReplicas"] >= 1
    service = by_kind(rendered, "Service")["churn-api"]
    assert service["spec"]["selector"].items() <= pod_labels(deployments["churn-api"]).items()
    assert service["spec"]["ports"] == [{"name": "http", "port": 8000, "targetPort": "http"}]


def test_prometheus_operator_scrapes_under_the_alerts_job_names(tree: Path) -> None:
    """prod opts in to the prometheus-operator component; dev (no operator on a laptop) does not."""
    assert not by_kind(kustomize(tree / "overlays" / "dev"), "PodMonitor")
    rendered = kustomize(tree / "overlays" / "prod")
    deployments = by_kind(rendered, "Deployment")
    pod_monitors = by_kind(rendered, "PodMonitor")
    assert set(pod_monitors) == {"churn-scorer", "churn-quality"}
    for name, job in (
        ("churn-scorer", prometheus_config.SCORER_JOB),
        ("churn-quality", prometheus_config.QUALITY_JOB),
    ):
        pod_monitor = pod_monitors[name]
        labels = pod_labels(deployments[name])
        assert pod_monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert labels[pod_monitor["spec"]["jobLabel"]] == job
        assert pod_monitor["spec"]["podMetricsEndpoints"][0]["port"] == "web"
        assert pod_monitor["spec"]["podMetricsEndpoints"][0]["path"] == prometheus_config.METRICS_PATH
    (service_monitor,) = by_kind(rendered, "ServiceMonitor").values()
    service = by_kind(rendered, "Service")["churn-api"]
    assert service_monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert service["metadata"]["labels"][service_monitor["spec"]["jobLabel"]] == prometheus_config.API_JOB
    assert service_monitor["spec"]["endpoints"][0]["port"] == "http"
    assert service_monitor["spec"]["endpoints"][0]["path"] == prometheus_config.METRICS_PATH


def test_namespaces_enforce_the_restricted_pod_security_profile(rendered: list[dict[str, Any]]) -> None:
    (namespace,) = by_kind(rendered, "Namespace").values()
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for doc in rendered:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == namespace["metadata"]["name"], doc["metadata"]["name"]
