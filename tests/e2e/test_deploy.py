"""The sidecar deployment files: the Kubernetes manifests validate against the API's schemas
(kubernetes-validate), watchd's configs inside them are valid, and the Dockerfile passes hadolint."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from watchd import __version__

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))


def test_there_are_manifests() -> None:
    assert {m.name for m in MANIFESTS} >= {
        "configmaps.yaml",
        "deployment-http.yaml",
        "deployment-signal.yaml",
        "deployment-process.yaml",
    }


@pytest.mark.parametrize("manifest", MANIFESTS, ids=[m.name for m in MANIFESTS])
def test_manifests_validate_strictly(manifest: Path) -> None:
    done = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", "--quiet", str(manifest)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_watchd_configs_in_the_configmap_are_valid(tmp_path: Path) -> None:
    docs = list(yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / "configmaps.yaml").read_text()))
    (config_map,) = [d for d in docs if d["metadata"]["name"] == "watchd-config"]
    assert set(config_map["data"]) == {"watchd.yaml", "watchd-signal.yaml", "watchd-process.yaml"}
    for name, text in config_map["data"].items():
        (tmp_path / name).write_text(text)
        done = subprocess.run(
            [str(BIN / "watchd"), "--config", str(tmp_path / name), "--validate"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    assert (
        "POST http://127.0.0.1:9090/-/reload"
        in subprocess.run(
            [str(BIN / "watchd"), "--config", str(tmp_path / "watchd.yaml"), "--validate"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )


def test_the_dockerfile_passes_hadolint() -> None:
    done = subprocess.run(
        [str(BIN / "hadolint"), str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_runs_watchd_as_uid_65532_and_pins_this_version() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "USER 65532:65532" in dockerfile
    assert 'ENTRYPOINT ["watchd"]' in dockerfile
    assert "STOPSIGNAL SIGTERM" in dockerfile
    assert f"watchd=={__version__}" in dockerfile
    for manifest in MANIFESTS:
        for image in re.findall(r"image: (watchd:\S+)", manifest.read_text()):
            assert image == f"watchd:{__version__}", manifest.name


def _documents() -> list[dict[str, Any]]:
    return [d for m in MANIFESTS for d in yaml.safe_load_all(m.read_text()) if d]


def _deployments() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in _documents() if d["kind"] == "Deployment"}


def test_every_deployment_has_a_watchd_container() -> None:
    """The README tells the user to change `image:` of the `watchd` container in every Deployment."""
    deployments = _deployments()
    assert set(deployments) == {"prometheus", "app", "app-by-name"}
    for name, deployment in deployments.items():
        containers = {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}
        assert containers["watchd"]["image"] == f"watchd:{__version__}", name


def test_no_configmap_is_mounted_with_subpath() -> None:
    """The kubelet never updates a subPath mount: watchd would see no change, ever."""
    for name, deployment in _deployments().items():
        pod = deployment["spec"]["template"]["spec"]
        config_maps = {v["name"] for v in pod["volumes"] if "configMap" in v}
        assert config_maps, name
        for container in pod["containers"]:
            for mount in container.get("volumeMounts", []):
                if mount["name"] in config_maps:
                    assert "subPath" not in mount and "subPathExpr" not in mount, (name, container["name"])


def test_the_documented_commands_name_what_the_manifests_hold() -> None:
    """`kubectl apply/logs/exec/edit` in the README and the manifests' comments: files that exist,
    Deployments with those containers, ConfigMaps with that name."""
    texts = [(ROOT / "README.md").read_text(), *(m.read_text() for m in MANIFESTS)]
    deployments = _deployments()
    config_maps = {d["metadata"]["name"] for d in _documents() if d["kind"] == "ConfigMap"}
    applied = [f for t in texts for f in re.findall(r"-f (deploy/kubernetes/[\w.-]+)", t)]
    containers = [
        c for t in texts for c in re.findall(r"kubectl (?:logs|exec) deploy/([\w-]+) -c ([\w-]+)", t)
    ]
    edited = [c for t in texts for c in re.findall(r"kubectl edit configmap ([\w-]+)", t)]
    assert applied and containers and edited
    assert [f for f in applied if not (ROOT / f).is_file()] == []
    for deployment, container in containers:
        names = [c["name"] for c in deployments[deployment]["spec"]["template"]["spec"]["containers"]]
        assert container in names, (deployment, container)
    assert set(edited) <= config_maps


@pytest.mark.parametrize(
    ("manifest", "config_key"),
    [
        ("deployment-http.yaml", "watchd.yaml"),
        ("deployment-signal.yaml", "watchd-signal.yaml"),
        ("deployment-process.yaml", "watchd-process.yaml"),
    ],
)
def test_the_sidecar_exposes_metrics_a_liveness_probe_and_scrape_annotations(
    manifest: str, config_key: str
) -> None:
    """The port watchd's config serves /metrics and /healthz on is the container's, the probe's and
    the annotation's; the control socket has a writable runtime directory (the root is read-only)."""
    configs = yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / "configmaps.yaml").read_text())
    (config_map,) = [d for d in configs if d["metadata"]["name"] == "watchd-config"]
    port = int(yaml.safe_load(config_map["data"][config_key])["metrics"].rsplit(":", 1)[1])
    (deployment,) = list(yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / manifest).read_text()))
    template = deployment["spec"]["template"]
    assert template["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(port),
        "prometheus.io/path": "/metrics",
    }
    (watchd,) = [c for c in template["spec"]["containers"] if c["name"] == "watchd"]
    assert watchd["ports"] == [{"name": "metrics", "containerPort": port}]
    probe = watchd["livenessProbe"]["httpGet"]
    assert (probe["path"], probe["port"]) == ("/healthz", "metrics")
    (runtime,) = [e["value"] for e in watchd["env"] if e["name"] == "XDG_RUNTIME_DIR"]
    assert runtime in {m["mountPath"] for m in watchd["volumeMounts"]}
    assert watchd["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_sidecar_without_a_pidfile_finds_the_app_by_name_in_a_shared_process_namespace() -> None:
    """deployment-process.yaml: watchd's config names the process (no pidfile anywhere), and the pod
    gives watchd what `process:` needs -- one process namespace, the app's user."""
    configs = yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / "configmaps.yaml").read_text())
    (config_map,) = [d for d in configs if d["metadata"]["name"] == "watchd-config"]
    (watch,) = yaml.safe_load(config_map["data"]["watchd-process.yaml"])["watches"].values()
    assert watch["process"] == "gunicorn" and "pidfile" not in watch
    pod = _deployments()["app-by-name"]["spec"]["template"]["spec"]
    assert pod["shareProcessNamespace"] is True
    assert pod["securityContext"]["runAsUser"] == 65532  # both containers: watchd signals its own user's
    containers = {c["name"]: c for c in pod["containers"]}
    assert not any("--pid" in arg for arg in containers["app"]["args"])
    assert containers["watchd"]["args"] == ["--config", "/etc/watchd/watchd-process.yaml"]
    assert all(
        "securityContext" not in c or "runAsUser" not in c["securityContext"] for c in containers.values()
    )
