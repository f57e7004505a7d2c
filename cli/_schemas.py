"""``relay247 schemas``: export the JSON Schemas of the wire objects."""

from __future__ import annotations

from pathlib import Path

import click

from schemas.export import export_all


@click.group()
def schemas() -> None:
    """JSON Schemas of every wire object (docs/schemas/)."""


@schemas.command("export")
@click.argument(
    "directory", type=click.Path(file_okay=False, dir_okay=True, writable=True, path_type=Path)
)
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 if DIRECTORY differs from the generated schemas.",
)
def export(directory: Path, check: bool) -> None:
    """Write one <name>.schema.json file per wire object into DIRECTORY."""
    files = export_all()
    if check:
        stale = sorted(
            name
            for name, data in files.items()
            if not (directory / name).is_file() or (directory / name).read_bytes() != data
        )
        if stale:
            raise click.ClickException("out of date: " + ", ".join(stale))
        click.echo(f"{len(files)} schemas up to date in {directory}")
        return
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (directory / name).write_bytes(data)
    click.echo(f"wrote {len(files)} schemas to {directory}")
