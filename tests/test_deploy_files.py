"""deploy/: the compose files and Kubernetes manifests parse, every pipeline command is a valid
`python -m pipeline run CONFIG --role ROLE` for the CLI, images match what the Dockerfile builds, and every
config they name exists in the image or in a ConfigMap and validates for its role. (No Docker engine or
Kubernetes cluster here: this is all that is checked.)"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from pipeline.cli import build_parser
from pipeline.config import interpolate, parse_config
from pipeline.distributed.roles import ROLES, check_role

DEPLOY = REPO / "deploy"
IMAGE = re.compile(r"^itd-pipeline:(cpu|cuda)$")


def compose(*names: str) -> dict:
    """The compose files merged the way `docker compose -f a -f b` does for the keys used here."""
    merged: dict = {}
    for name in names:
        data = yaml.safe_load((DEPLOY / name).read_text())
        for key, value in data.items():
            if key == "services":
                for svc, body in value.items():
                    merged.setdefault("services", {}).setdefault(svc, {}).update(body)
            else:
                merged[key] = value
    return merged


def k8s_docs() -> list[dict]:
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def configmaps() -> dict[str, dict[str, str]]:
    return {d["metadata"]["name"]: d["data"] for d in k8s_docs() if d["kind"] == "ConfigMap"}


def check_command(cmd: list[str], config_text: str | None = None) -> str:
    """Parse a container command with the CLI's own parser; return its role."""
    assert cmd[:3] == ["python", "-m", "pipeline"], cmd
    args = build_parser().parse_args(cmd[3:])
    assert args.command == "run" and args.role in ROLES, cmd
    text = config_text if config_text is not None else (REPO / args.config).read_text()
    config = parse_config(interpolate(text, {}), args.set, source=args.config)
    assert check_role(config, args.role) is None
    return args.role


def dockerfile_tags() -> set[str]:
    text = (DEPLOY / "Dockerfile").read_text()
    return set(re.findall(r"-t (itd-pipeline:\w+)", text))


def test_dockerfile_copies_what_exists_and_runs_the_cli():
    text = (DEPLOY / "Dockerfile").read_text()
    for line in text.splitlines():
        if line.startswith("COPY "):
            for src in line.split()[1:-1]:
                if src != "README.md":  # written by the lead from the README sections
                    assert (REPO / src).exists(), src
    cmd = yaml.safe_load(re.search(r"^CMD (.+)$", text, re.M)[1])
    assert cmd[:3] == ["python", "-m", "pipeline"] and build_parser().parse_args(cmd[3:]).command == "run"
    assert dockerfile_tags() == {"itd-pipeline:cpu", "itd-pipeline:cuda"}
    assert "ARG TORCH_INDEX" in text and "--index-url" in text
    pinned = re.search(r'"torch==([\d.]+)"', (REPO / "pyproject.toml").read_text())[1]
    assert f"ARG TORCH_VERSION={pinned}" in text


def test_compose_runs_redis_ingest_n_detect_and_track():
    c = compose("compose.yaml")
    services = c["services"]
    assert set(services) == {"redis", "ingest", "detect", "track"}
    assert services["redis"]["image"].startswith("redis:7")
    roles = {}
    for name in ("ingest", "detect", "track"):
        svc = services[name]
        assert IMAGE.match(svc["image"]) and svc["image"] in dockerfile_tags()
        assert (REPO / svc["build"]["dockerfile"]).is_file() and svc["build"]["context"] == ".."
        assert svc["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert svc["depends_on"]["redis"]["condition"] == "service_healthy"
        roles[name] = check_command(svc["command"])
    assert roles == {"ingest": "ingest", "detect": "detect", "track": "track"}
    assert int(interpolate(str(services["detect"]["deploy"]["replicas"]), {})) >= 2
    sequence = interpolate(services["ingest"]["environment"]["SEQUENCE"], {})
    assert (REPO / sequence / "video.mp4").is_file()


def test_compose_cuda_override_gives_detect_a_gpu():
    c = compose("compose.yaml", "compose.cuda.yaml")
    detect = c["services"]["detect"]
    assert detect["image"] == "itd-pipeline:cuda" and detect["environment"]["DEVICE"] == "cuda"
    assert "TORCH_INDEX" in detect["build"]["args"]["TORCH_INDEX"]
    devices = detect["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert check_command(detect["command"]) == "detect"


def test_k8s_manifests_are_consistent():
    docs = k8s_docs()
    for d in docs:
        assert {"apiVersion", "kind", "metadata"} <= d.keys(), d
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    assert set(deployments) == {"itd-redis", "itd-ingest", "itd-detect", "itd-track"}
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    assert "itd-redis" in services
    cms = configmaps()
    roles = {}
    for name, dep in deployments.items():
        spec = dep["spec"]
        assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
        if name == "itd-redis":
            continue
        pod = spec["template"]["spec"]
        (container,) = pod["containers"]
        assert IMAGE.match(container["image"]) and container["image"] in dockerfile_tags()
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        config_arg = container["command"][4]
        text = None
        if not (REPO / config_arg).is_file():  # mounted from a ConfigMap
            mount = str(Path(config_arg).parent)
            cm = volumes[mounts[mount]]["configMap"]["name"]
            text = cms[cm][Path(config_arg).name]
        roles[name] = check_command(container["command"], text)
        config = parse_config(interpolate(text or (REPO / config_arg).read_text(), {}))
        assert config.streams.url.endswith("//itd-redis:6379/0") and "itd-redis" in services
        port = int(spec["template"]["metadata"]["annotations"]["prometheus.io/port"])
        assert port == config.metrics.port and {"containerPort": port, "name": "metrics"} in container["ports"]
    assert roles == {"itd-ingest": "ingest", "itd-detect": "detect", "itd-track": "track"}
    detect = deployments["itd-detect"]["spec"]["template"]["spec"]["containers"][0]
    assert detect["resources"]["limits"]["nvidia.com/gpu"] == 1 and detect["image"] == "itd-pipeline:cuda"
    assert {"name": "DEVICE", "value": "cuda"} in detect["env"]
    assert deployments["itd-detect"]["spec"]["replicas"] >= 2
    track = deployments["itd-track"]["spec"]
    assert track["replicas"] == 1 and track["strategy"]["type"] == "Recreate"


@pytest.mark.parametrize("role", ROLES)
def test_distributed_config_validates_for_every_role(role):
    config = parse_config(interpolate((REPO / "configs" / "distributed.yaml").read_text(), {}))
    assert check_role(config, role) is None
    assert config.streams.url == config.sinks.redis.url == "redis://127.0.0.1:6379/0"
    (cam,) = config.cameras.values()
    assert not cam.live and (REPO / cam.source.path).is_dir()


def test_apt_packages_keep_what_ci_installs():
    lines = (DEPLOY / "apt-packages.txt").read_text().split()
    assert "redis-server" in lines and "ffmpeg" in lines
    assert "deploy/apt-packages.txt" in (REPO / ".ci" / "run").read_text()


def test_one_opencv_wheel_the_one_trackeval_requires():
    """Two OpenCV wheels (`opencv-python` through trackeval, `-headless`) would write the same cv2 package."""
    from importlib.metadata import requires

    text = (REPO / "pyproject.toml").read_text()
    named = set(re.findall(r'"(opencv-[\w-]+)', text))
    wanted = {re.match(r"[\w-]+", r)[0] for r in requires("trackeval") if r.startswith("opencv")}
    assert named == wanted == {"opencv-python"}
    docker = (DEPLOY / "Dockerfile").read_text()
    assert "libgl1" in docker and "libglib2.0-0" in docker  # what that wheel's cv2 loads
