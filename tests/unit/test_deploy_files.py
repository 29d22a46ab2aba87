"""docker-compose.yml, the Dockerfile and .dockerignore keep their promises (no Docker needed)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CHURN_SERVICES = ("trainer", "scorer", "api", "producer")
#: Host ports of DESIGN.md: API 8000, scorer 6066 (not published: scalable), Kafka 9092,
#: Prometheus 9090, Grafana 3000.
PUBLISHED = {"api": 8000, "kafka": 9092, "prometheus": 9090, "grafana": 3000}
SCORER_PORT = 6066


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, args = line.strip().partition(" ")
            out.append((instruction.upper(), args.strip()))
    return out


def host_port(mapping: str | int) -> int:
    """'8000:8000' / '127.0.0.1:9092:29092' -> the host port."""
    parts = str(mapping).split(":")
    return int(parts[-2] if len(parts) >= 2 else parts[0])


# --- images ----------------------------------------------------------------------------


def test_every_image_is_pinned_to_an_explicit_version(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service.get("image")
        assert image, f"{name}: no image (a built service still needs a tagged image name)"
        repo, sep, tag = image.rpartition(":")
        assert sep, f"{name}: {image!r} has no tag"
        assert repo, f"{name}: {image!r} has no repository"
        assert "/" not in tag, f"{name}: {image!r} has no tag"
        assert tag != "latest", f"{name}: {image!r} uses latest"
        assert re.search(r"\d+\.\d+", tag), f"{name}: {image!r} is not pinned to a version"


def test_third_party_images(services: dict[str, dict[str, Any]]) -> None:
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert services["grafana"]["image"].startswith("grafana/grafana:")
    for name in CHURN_SERVICES:
        assert services[name]["build"]["context"] == "."
        assert services[name]["image"] == services["api"]["image"], "one image for all churn services"


# --- health and start order ------------------------------------------------------------


@pytest.mark.parametrize("name", ["kafka", "scorer", "api", "prometheus", "grafana"])
def test_long_running_services_have_a_healthcheck(services: dict[str, dict[str, Any]], name: str) -> None:
    check = services[name]["healthcheck"]
    assert not check.get("disable", False)
    assert check["test"][0] in ("CMD", "CMD-SHELL")
    assert check["interval"]
    assert check["retries"] >= 3


def test_healthchecks_probe_the_service_ports(services: dict[str, dict[str, Any]]) -> None:
    assert f"http://127.0.0.1:{SCORER_PORT}/metrics" in services["scorer"]["healthcheck"]["test"]
    assert "http://127.0.0.1:8000/health" in services["api"]["healthcheck"]["test"]
    assert "localhost:9092" in services["kafka"]["healthcheck"]["test"]


def test_services_wait_on_health_not_sleep(services: dict[str, dict[str, Any]]) -> None:
    expected = {
        "scorer": {"kafka": "service_healthy", "trainer": "service_completed_successfully"},
        "api": {"trainer": "service_completed_successfully"},
        "producer": {"kafka": "service_healthy", "scorer": "service_healthy"},
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


# --- the model volume and settings -------------------------------------------------------


def test_trainer_scorer_and_api_share_the_model_volume(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    assert "models" in compose["volumes"]
    for name in ("trainer", "scorer", "api"):
        assert "models:/models" in services[name]["volumes"], name
        assert services[name]["environment"]["CHURN_MODEL_STORE"] == "/models", name


def test_trainer_trains_only_when_no_model_is_promoted(services: dict[str, dict[str, Any]]) -> None:
    trainer = services["trainer"]
    script = " ".join([*trainer["entrypoint"], *trainer["command"]])
    assert "CURRENT" in script
    assert "churn train" in script
    assert script.index("CURRENT") < script.index("churn train")
    assert trainer["restart"] == "no"


def test_churn_settings_in_the_environment_exist(services: dict[str, dict[str, Any]]) -> None:
    fields = set(Settings.model_fields)
    for name in CHURN_SERVICES:
        env = services[name]["environment"]
        assert env["CHURN_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["CHURN_API_HOST"] == "0.0.0.0"
        assert env["CHURN_SCORER_WEB_HOST"] == "0.0.0.0"
        for key in env:
            assert key.startswith("CHURN_"), (name, key)
            assert key.removeprefix("CHURN_").lower() in fields, f"{name}: {key} is no Settings field"
        Settings.model_validate({k.removeprefix("CHURN_").lower(): v for k, v in env.items()})


def test_commands(services: dict[str, dict[str, Any]]) -> None:
    assert services["scorer"]["command"] == ["score"]
    assert services["api"]["command"] == ["api"]
    assert services["producer"]["command"][0] == "produce"
    assert services["producer"]["profiles"] == ["demo"]
    for name in ("kafka", "trainer", "scorer", "api", "prometheus", "grafana"):
        assert "profiles" not in services[name], f"{name} must start with a plain `docker compose up`"


# --- ports and scaling ---------------------------------------------------------------------


def test_ports_are_the_ones_in_the_design(services: dict[str, dict[str, Any]]) -> None:
    published = {name: {host_port(p) for p in s.get("ports", [])} for name, s in services.items()}
    for name, port in PUBLISHED.items():
        assert published[name] == {port}, name
    assert Settings().api_port == PUBLISHED["api"]
    assert Settings().scorer_web_port == SCORER_PORT
    assert services["api"]["environment"]["CHURN_API_PORT"] == str(PUBLISHED["api"])


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
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 1
    assert not any("ZOOKEEPER" in key for key in env)


# --- monitoring services -------------------------------------------------------------------


def test_prometheus_and_grafana_are_provisioned(services: dict[str, dict[str, Any]]) -> None:
    prom_volumes = services["prometheus"]["volumes"]
    assert "./monitoring/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prom_volumes
    assert "./monitoring/alerts.yml:/etc/prometheus/alerts.yml:ro" in prom_volumes
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    grafana = services["grafana"]
    assert "./monitoring/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    for path in ("monitoring/prometheus.yml", "monitoring/alerts.yml", "monitoring/grafana/provisioning"):
        assert (ROOT / path).exists(), path


def test_grafana_admin_password_comes_from_the_environment(services: dict[str, dict[str, Any]]) -> None:
    password = services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
    assert re.fullmatch(r"\$\{GRAFANA_ADMIN_PASSWORD:\?[^}]*\}", password), "required, no default password"


# --- Dockerfile ------------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_with_a_pinned_slim_base() -> None:
    instructions = dockerfile_instructions()
    args = dict(a.split("=", 1) for i, a in instructions if i == "ARG" and "=" in a)
    stages = [a for i, a in instructions if i == "FROM"]
    assert len(stages) >= 2
    assert stages[0].endswith("AS builder")
    bases = {stage.split()[0].replace("${PYTHON_IMAGE}", args.get("PYTHON_IMAGE", "")) for stage in stages}
    assert len(bases) == 1
    (base,) = bases
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base), base
    copies = [a for i, a in instructions if i == "COPY"]
    assert any(a.startswith("--from=builder /opt/venv") for a in copies), "runtime copies the builder's venv"


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(n for n, (i, _) in enumerate(instructions) if i == "FROM")
    return instructions[last_from:]


def test_runtime_runs_as_a_non_root_user_with_a_healthcheck() -> None:
    stage = final_stage()
    users = [a for i, a in stage if i == "USER"]
    assert users, "no USER in the runtime stage"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    health = [a for i, a in stage if i == "HEALTHCHECK"]
    assert len(health) == 1
    assert "monitoring.healthcheck" in health[0]
    assert "--interval=" in health[0]
    assert ("ENTRYPOINT", '["churn"]') in stage


def test_no_dev_dependencies_in_the_image() -> None:
    text = " ".join(a for i, a in dockerfile_instructions() if i == "RUN")
    assert "[dev]" not in text
    assert "pip install -e" not in text
    assert not any(i == "RUN" and "pip" in a for i, a in final_stage()), "runtime installs nothing itself"


def test_dockerignore_keeps_the_context_small() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    for entry in (".git", ".venv", "model-store", "tests", "data"):
        assert entry in ignored, entry
    for needed in ("pyproject.toml", "README.md", "monitoring", "cli"):
        assert needed not in ignored, needed
