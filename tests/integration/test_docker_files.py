"""docker/: the Dockerfile, .dockerignore, compose.yaml and scripts/generate-secrets.sh, checked without a
Docker engine. The compose file is read as compose reads it (tests/docker_files.py), each app service's
environment is loaded through ``load_settings`` with the secret files the script generates, and the
addresses the services use to reach each other are compared with the ports they listen on and with
docker/prometheus, docker/alertmanager and docker/grafana.
"""

from __future__ import annotations

import re
import stat
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from payments.bridges.smtp.url import SmtpUrl
from payments.pipeline.cli import _parser
from payments.pipeline.settings import SECRET_VARIABLES, VARIABLES, AppEnv, Settings
from tests.docker_files import (
    DOCKER,
    DOCKERFILE,
    REPO,
    Service,
    Stage,
    compose_secret_files,
    dockerfile_stages,
    dockerignored,
    duration_seconds,
    environment,
    generate_secrets,
    gitignored,
    has_healthcheck,
    ignore_patterns,
    load_compose,
    mounts,
    prometheus_config,
    published_ports,
    scrape_job,
    secret,
    secret_targets,
    settings_of,
    taken_from_other_stages,
)

APP_SERVICES = {"migrate", "topology", "web", "worker", "sandbox", "smtp"}
ONE_SHOTS = {"migrate", "topology"}
STORES = {"postgres", "redis", "rabbitmq"}
OBSERVABILITY = {"prometheus", "alertmanager", "grafana"}
#: Services whose data must outlive their container.
STATEFUL = {"postgres", "redis", "rabbitmq", "smtp", "prometheus", "alertmanager", "grafana"}
#: Variables of our image that are not settings: which port its HEALTHCHECK asks.
IMAGE_VARIABLES = {"HEALTHCHECK_PORT"}
#: ``name:tag`` (a registry host and path allowed), optionally ``@sha256:<digest>``.
_IMAGE = re.compile(r"^(?P<name>[\w.\-/]+):(?P<tag>[\w.\-]+)(?:@sha256:[0-9a-f]{64})?$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Service]:
    found: dict[str, Service] = compose["services"]
    return found


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return dockerfile_stages(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("stack") / "secrets"
    generate_secrets(directory)
    return directory


# --- compose: the services and their images -----------------------------------------------------------


def test_compose_defines_the_whole_stack(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == APP_SERVICES | STORES | OBSERVABILITY
    # The compose specification has no version; compose warns that the key is obsolete.
    assert "version" not in compose


def test_app_services_run_the_one_image_built_from_docker_dockerfile(services: dict[str, Service]) -> None:
    built = {name for name, service in services.items() if "build" in service}
    assert built == APP_SERVICES

    images = {services[name]["image"] for name in built}
    assert len(images) == 1
    for name in built:
        build = services[name]["build"]
        context = (DOCKER / build["context"]).resolve()
        assert context == REPO, name
        assert (context / build["dockerfile"]).resolve() == DOCKERFILE


def test_app_commands_are_payments_commands_that_parse(services: dict[str, Service]) -> None:
    parser = _parser()
    for name in APP_SERVICES:
        command = services[name]["command"]
        assert parser.parse_args(command).command == command[0], name


def test_pulled_images_are_pinned_to_a_version(services: dict[str, Service]) -> None:
    for name, service in services.items():
        if "build" in service:
            continue
        pinned = _IMAGE.fullmatch(service["image"])
        assert pinned is not None, f"{name}: {service['image']} names no tag"
        assert pinned["tag"] != "latest", name
        assert re.search(r"\d", pinned["tag"]), f"{name}: tag {pinned['tag']} has no version number"


# --- compose: files and secrets -----------------------------------------------------------------------


def test_every_file_compose_reads_exists(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for mount in mounts(service):
            if mount.bind:
                assert (DOCKER / mount.source).exists(), f"{name}: {mount.source}"
    for name, path in compose_secret_files(compose).items():
        # Generated files are checked against the script below; any other must be in the repository.
        if not path.startswith("./secrets/"):
            assert (DOCKER / path).is_file(), f"secret {name}: {path}"


def test_every_secret_is_declared_and_used(compose: dict[str, Any]) -> None:
    declared = set(compose["secrets"])
    used = {source for service in compose["services"].values() for source in secret_targets(service).values()}
    assert used == declared


def test_the_script_writes_every_secret_file_compose_reads(
    compose: dict[str, Any], secrets_dir: Path
) -> None:
    for name, path in compose_secret_files(compose).items():
        if path.startswith("./secrets/"):
            written = secrets_dir / Path(path).name
            assert written.is_file(), f"secret {name}: scripts/generate-secrets.sh does not write {path}"
            assert secret(secrets_dir, written.name), name


def test_generated_secret_files_are_git_ignored_but_their_readme_is_not(compose: dict[str, Any]) -> None:
    patterns = ignore_patterns((REPO / ".gitignore").read_text())
    for path in compose_secret_files(compose).values():
        assert gitignored(patterns, f"docker/{path.removeprefix('./')}"), path
    assert (DOCKER / "secrets" / "README.md").is_file()
    assert not gitignored(patterns, "docker/secrets/README.md")


def test_app_environment_names_only_settings(services: dict[str, Service]) -> None:
    known = set(VARIABLES) | {f"{name}_FILE" for name in SECRET_VARIABLES} | IMAGE_VARIABLES
    for name in APP_SERVICES:
        unknown = set(environment(services[name])) - known
        assert unknown == set(), name


def test_secrets_reach_the_app_only_as_files_the_service_mounts(services: dict[str, Service]) -> None:
    for name in APP_SERVICES:
        service = services[name]
        variables = environment(service)
        assert SECRET_VARIABLES.isdisjoint(variables), f"{name} sets a secret in plain environment"
        for variable, value in variables.items():
            if variable.endswith("_FILE"):
                assert value.startswith("/run/secrets/"), f"{name}: {variable}"
                assert value in secret_targets(service), (
                    f"{name}: {variable} names a secret it does not mount"
                )


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_every_app_service_loads_valid_settings(
    compose: dict[str, Any], secrets_dir: Path, name: str
) -> None:
    # load_settings validates every value and, in production, that the required secrets are set.
    settings = settings_of(compose, name, secrets_dir)

    if name in {"web", "worker"}:
        assert settings.app.env is AppEnv.PRODUCTION


def test_client_urls_carry_the_credentials_the_servers_were_given(
    services: dict[str, Service], secrets_dir: Path
) -> None:
    postgres = environment(services["postgres"])
    database = urlsplit(secret(secrets_dir, "database_url"))
    assert (database.hostname, database.port) == ("postgres", 5432)
    assert database.username == postgres["POSTGRES_USER"]
    assert database.password == secret(secrets_dir, "postgres_password")
    assert database.path == f"/{postgres['POSTGRES_DB']}"

    rabbitmq_conf = dict(
        line.split(" = ", 1) for line in secret(secrets_dir, "rabbitmq_conf").splitlines() if " = " in line
    )
    broker = urlsplit(secret(secrets_dir, "rabbitmq_url"))
    assert (broker.hostname, broker.port) == ("rabbitmq", 5672)
    assert (broker.username, broker.password) == (
        rabbitmq_conf["default_user"],
        rabbitmq_conf["default_pass"],
    )

    redis = urlsplit(secret(secrets_dir, "redis_url"))
    assert (redis.hostname, redis.port) == ("redis", 6379)
    assert f"requirepass {redis.password}" in secret(secrets_dir, "redis_conf").splitlines()
    assert redis.password == secret(secrets_dir, "redis_password")


def test_rabbitmq_has_its_own_user_and_never_guest(services: dict[str, Service], secrets_dir: Path) -> None:
    rabbitmq = services["rabbitmq"]
    assert environment(rabbitmq).get("RABBITMQ_DEFAULT_USER", "") != "guest"
    conf_targets = [path for path, source in secret_targets(rabbitmq).items() if source == "rabbitmq_conf"]
    assert conf_targets, "rabbitmq does not mount its user's configuration"
    assert re.fullmatch(r"/etc/rabbitmq/conf\.d/[\w.-]+\.conf", conf_targets[0])
    assert "default_user = guest" not in secret(secrets_dir, "rabbitmq_conf")
    assert "default_user = " in secret(secrets_dir, "rabbitmq_conf")
    assert urlsplit(secret(secrets_dir, "rabbitmq_url")).username != "guest"


# --- compose: ports and addresses -----------------------------------------------------------------------


def test_web_listens_where_prometheus_and_its_health_check_look(
    compose: dict[str, Any], secrets_dir: Path
) -> None:
    web = compose["services"]["web"]
    settings = settings_of(compose, "web", secrets_dir)
    port = settings.web.port

    assert settings.web.host == "0.0.0.0"
    assert environment(web)["HEALTHCHECK_PORT"] == str(port)
    assert [published.container_port for published in published_ports(web)] == [port]
    assert scrape_job("payments-web")["static_configs"][0]["targets"] == [f"web:{port}"]
    assert settings.app.prometheus_enabled


def test_workers_serve_metrics_where_prometheus_finds_every_replica(
    compose: dict[str, Any], secrets_dir: Path
) -> None:
    worker = compose["services"]["worker"]
    settings = settings_of(compose, "worker", secrets_dir)
    discovery = scrape_job("payments-worker")["dns_sd_configs"][0]

    # The metrics server binds HOST, so it must be every interface for Prometheus to reach it.
    assert settings.web.host == "0.0.0.0"
    assert settings.app.prometheus_enabled
    assert settings.worker.metrics_port == discovery["port"]
    assert environment(worker)["HEALTHCHECK_PORT"] == str(settings.worker.metrics_port)
    assert discovery["names"] == ["worker"]


def test_services_reach_each_other_at_the_ports_they_listen_on(
    compose: dict[str, Any], secrets_dir: Path
) -> None:
    services = compose["services"]
    web_port = settings_of(compose, "web", secrets_dir).web.port
    sandbox = settings_of(compose, "sandbox", secrets_dir).sandbox
    alertmanager = yaml.safe_load((DOCKER / "alertmanager" / "alertmanager.yml").read_text())
    intake = alertmanager["receivers"][0]["webhook_configs"][0]["url"]

    assert sandbox.host == "0.0.0.0"
    assert urlsplit(sandbox.webhook_url).netloc == f"web:{web_port}"
    assert urlsplit(intake).netloc == f"web:{web_port}"
    assert f"127.0.0.1:{sandbox.port}/" in " ".join(services["sandbox"]["healthcheck"]["test"])
    assert [published.container_port for published in published_ports(services["sandbox"])] == [sandbox.port]
    for name in ("web", "worker"):
        settings = settings_of(compose, name, secrets_dir)
        # Orders name PUBLIC_BASE_URL as notify_url: the sandbox must reach web there.
        assert urlsplit(settings.web.public_base_url).netloc == f"web:{web_port}", name
        assert urlsplit(settings.cashfree.base_url).netloc == f"sandbox:{sandbox.port}", name
    targets = prometheus_config()["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert {target.split(":")[0] for target in targets} <= set(services)


def test_the_smtp_sink_listens_where_smtp_url_points(compose: dict[str, Any], secrets_dir: Path) -> None:
    smtp = compose["services"]["smtp"]
    arguments = _parser().parse_args(smtp["command"])
    url = SmtpUrl.parse(settings_of(compose, "worker", secrets_dir).smtp.url.get_secret_value())

    assert arguments.host == "0.0.0.0"
    assert (url.host, url.port) == ("smtp", arguments.port)
    # The sink takes the login from the same URL, so it refuses senders that do not authenticate.
    assert url.username is not None
    assert url == SmtpUrl.parse(settings_of(compose, "smtp", secrets_dir).smtp.url.get_secret_value())
    assert f"'127.0.0.1', {arguments.port}" in " ".join(smtp["healthcheck"]["test"])
    mail = [mount for mount in mounts(smtp) if not mount.bind]
    assert [mount.target for mount in mail] == [str(arguments.directory)]


def test_published_ports_listen_on_loopback_only(services: dict[str, Service]) -> None:
    for name, service in services.items():
        for published in published_ports(service):
            assert published.host_ip == "127.0.0.1", name
    assert [published.container_port for published in published_ports(services["rabbitmq"])] == [15672]


# --- compose: start order, health, state, shutdown ------------------------------------------------------


def test_dependencies_wait_for_health_or_completion(
    services: dict[str, Service], stages: list[Stage]
) -> None:
    for name, service in services.items():
        for target, condition in (service.get("depends_on") or {}).items():
            wanted = "service_completed_successfully" if target in ONE_SHOTS else "service_healthy"
            assert condition["condition"] == wanted, f"{name} -> {target}"
            if wanted == "service_healthy":
                assert has_healthcheck(services[target], stages), f"{name} waits for {target}'s health"
    for name in ("web", "worker"):
        assert set(services[name]["depends_on"]) == STORES | ONE_SHOTS, name


def test_long_running_services_have_health_checks(services: dict[str, Service], stages: list[Stage]) -> None:
    for name, service in services.items():
        if name in ONE_SHOTS:
            # Restarted after a successful exit, they would never count as completed.
            assert service["restart"] == "no", name
        else:
            assert has_healthcheck(service, stages), name


def test_stateful_services_keep_their_data_in_named_volumes(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    for name, service in compose["services"].items():
        named = {mount.source for mount in mounts(service) if not mount.bind}
        assert named <= declared, name
        if name in STATEFUL:
            assert named, f"{name} keeps its data in the container"


def test_web_and_workers_get_time_to_drain_before_they_are_killed(
    compose: dict[str, Any], secrets_dir: Path
) -> None:
    worker = compose["services"]["worker"]
    # Competing consumers: several replicas, and nothing that pins one container (a name, a host port).
    assert worker["deploy"]["replicas"] >= 2
    assert "container_name" not in worker
    assert "ports" not in worker
    # Web gives requests one grace; a worker its messages, then its outbox drain (docs/deployment.md).
    for name, graces in (("web", 1), ("worker", 2)):
        grace = settings_of(compose, name, secrets_dir).app.shutdown_grace_seconds
        assert duration_seconds(compose["services"][name]["stop_grace_period"]) > graces * grace, name


# --- compose: the observability services and their files ------------------------------------------------


def test_alertmanager_presents_the_token_web_checks(services: dict[str, Service]) -> None:
    config_mount = next(mount for mount in mounts(services["alertmanager"]) if mount.bind)
    config = yaml.safe_load((DOCKER / config_mount.source).read_text())
    credentials = config["receivers"][0]["webhook_configs"][0]["http_config"]["authorization"]
    token_path = credentials["credentials_file"]

    assert f"--config.file={config_mount.target}" in services["alertmanager"]["command"]
    source = secret_targets(services["alertmanager"]).get(token_path)
    assert source is not None, f"alertmanager does not mount {token_path}"
    web = services["web"]
    assert secret_targets(web)[environment(web)["ALERTMANAGER_TOKEN_FILE"]] == source


def test_grafana_mounts_what_its_provisioning_names(services: dict[str, Service]) -> None:
    grafana = services["grafana"]
    targets = {mount.source: mount.target for mount in mounts(grafana) if mount.bind}
    provider = yaml.safe_load((DOCKER / "grafana/provisioning/dashboards/payments.yml").read_text())
    datasource = yaml.safe_load((DOCKER / "grafana/provisioning/datasources/prometheus.yml").read_text())

    # Grafana reads provisioning from its default path unless GF_PATHS_PROVISIONING moves it.
    assert "GF_PATHS_PROVISIONING" not in environment(grafana)
    assert targets["./grafana/provisioning"] == "/etc/grafana/provisioning"
    assert targets["./grafana/dashboards"] == provider["providers"][0]["options"]["path"]
    assert urlsplit(datasource["datasources"][0]["url"]).hostname in services
    password_file = environment(grafana)["GF_SECURITY_ADMIN_PASSWORD__FILE"]
    assert password_file in secret_targets(grafana)
    assert grafana["profiles"] == ["grafana"]


def test_prometheus_reads_the_whole_directory_its_rules_are_relative_to(services: dict[str, Service]) -> None:
    prometheus = services["prometheus"]
    targets = {mount.source: mount.target for mount in mounts(prometheus) if mount.bind}

    assert targets == {"./prometheus": "/etc/prometheus"}
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    for rule_file in prometheus_config()["rule_files"]:
        assert (DOCKER / "prometheus" / rule_file).is_file(), rule_file


# --- Dockerfile and .dockerignore ---------------------------------------------------------------------


def test_every_base_image_is_pinned_to_a_version(stages: list[Stage]) -> None:
    for stage in stages:
        pinned = _IMAGE.fullmatch(stage.base)
        assert pinned is not None, f"{stage.base} names no tag"
        assert pinned["tag"] != "latest"
        # The exact patch release: the same build next month gets the same interpreter.
        assert re.match(r"\d+\.\d+\.\d+", pinned["tag"]), f"{stage.base}: not a patch version"


def test_wheels_are_built_in_one_stage_and_installed_in_another(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    assert all(stage.name for stage in stages)
    # The wheels must be for exactly the interpreter that runs them.
    assert len({stage.base for stage in stages}) == 1

    runtime, earlier = stages[-1], {stage.name for stage in stages[:-1]}
    commands = " ".join(instruction.arguments for instruction in runtime.named("RUN"))
    for tool in ("apt-get install", "apt install", "gcc", "build-essential", "pip wheel"):
        assert tool not in commands, f"the runtime stage runs {tool}"
    taken = taken_from_other_stages(runtime)
    assert taken, "the runtime stage takes nothing from the build stage"
    for stage, path in taken:
        assert stage in earlier, stage
        assert path.rstrip("/") == "/wheels", f"the runtime stage takes {path} from {stage}"


def test_the_runtime_runs_as_a_non_root_user(stages: list[Stage]) -> None:
    runtime = list(stages[-1].instructions)
    users = [index for index, instruction in enumerate(runtime) if instruction.keyword == "USER"]
    assert users, "the runtime stage runs as root"
    user = runtime[users[-1]].arguments.split(":")[0]
    assert user not in {"root", "0"}
    starts = [
        index for index, instruction in enumerate(runtime) if instruction.keyword in {"ENTRYPOINT", "CMD"}
    ]
    assert starts
    assert users[-1] < min(starts)


def test_the_runtime_checks_health_on_the_port_compose_names(stages: list[Stage]) -> None:
    checks = stages[-1].named("HEALTHCHECK")
    assert checks, "the image has no HEALTHCHECK"
    command = checks[-1].exec_form()
    assert command is not None
    assert command[0] == "python"
    default = re.search(r"HEALTHCHECK_PORT', '(\d+)'", command[-1])
    assert default is not None
    assert int(default[1]) == Settings().web.port
    assert "/health" in command[-1]


def test_the_image_runs_the_payments_command(stages: list[Stage]) -> None:
    runtime = stages[-1]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert runtime.named("ENTRYPOINT")[-1].exec_form() == ["payments"]
    assert "payments" in scripts
    assert runtime.named("CMD")[-1].exec_form() == ["web"]

    environment_lines = " ".join(instruction.arguments for instruction in runtime.named("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in environment_lines
    assert "PYTHONUNBUFFERED=1" in environment_lines
    exposed = {int(port) for instruction in runtime.named("EXPOSE") for port in instruction.arguments.split()}
    defaults = Settings()
    smtp_port = SmtpUrl.parse(defaults.smtp.url.get_secret_value()).port
    assert {defaults.web.port, defaults.worker.metrics_port, defaults.sandbox.port, smtp_port} <= exposed


def test_the_build_context_holds_the_wheel_inputs_and_nothing_else(stages: list[Stage]) -> None:
    patterns = ignore_patterns((REPO / ".dockerignore").read_text())
    for left_out in (
        ".venv/bin/python",
        ".git/HEAD",
        ".env",
        "docker/secrets/jwt_secret",
        "tests/conftest.py",
    ):
        assert dockerignored(patterns, left_out), left_out
    assert dockerignored(patterns, "var/mail/1.eml")
    assert dockerignored(patterns, "src/payments/__pycache__/cli.cpython-311.pyc")

    sources = [
        word
        for instruction in stages[0].named("COPY")
        if "--from=" not in instruction.arguments
        for word in instruction.arguments.split()[:-1]
    ]
    assert sources
    for source in sources:
        assert (REPO / source).exists(), source
        files = [REPO / source] if (REPO / source).is_file() else (REPO / source).rglob("*")
        for path in files:
            relative = path.relative_to(REPO).as_posix()
            if path.is_file() and "__pycache__" not in relative and ".egg-info" not in relative:
                assert not dockerignored(patterns, relative), relative


# --- scripts/generate-secrets.sh ------------------------------------------------------------------------


def test_generated_secrets_are_hidden_from_other_accounts_but_readable_in_containers(
    secrets_dir: Path,
) -> None:
    assert stat.S_IMODE(secrets_dir.stat().st_mode) == 0o700
    for path in secrets_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path.name


def test_generating_again_keeps_every_value(tmp_path: Path) -> None:
    generate_secrets(tmp_path)
    first = {path.name: path.read_bytes() for path in tmp_path.iterdir()}

    output = generate_secrets(tmp_path)

    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == first
    assert "wrote" not in output


def test_a_deleted_url_is_rebuilt_from_the_password_that_is_kept(tmp_path: Path) -> None:
    generate_secrets(tmp_path)
    password = secret(tmp_path, "postgres_password")
    (tmp_path / "database_url").unlink()

    generate_secrets(tmp_path)

    assert urlsplit(secret(tmp_path, "database_url")).password == password
    assert secret(tmp_path, "postgres_password") == password


def test_a_new_directory_gets_new_values(secrets_dir: Path, tmp_path: Path) -> None:
    generate_secrets(tmp_path)
    for path in secrets_dir.iterdir():
        assert secret(tmp_path, path.name) != secret(secrets_dir, path.name), path.name
