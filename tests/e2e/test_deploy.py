"""The sidecar deployment files: the Kubernetes manifests validate against the API's schemas
(kubernetes-validate), watchd's configs inside them are valid, and the Dockerfile passes hadolint."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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
    assert set(config_map["data"]) == {"watchd.yaml", "watchd-signal.yaml"}
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
