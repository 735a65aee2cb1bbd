"""``imagematch index …``: build and inspect the product index."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from imagematch.cli.terminal import JsonFlag, err, fail, load_settings, progress_bar
from imagematch.errors import ImageMatchError

if TYPE_CHECKING:
    from index_builder import BuildReport

__all__ = ["app", "print_build_report"]

app = typer.Typer(help="Build and inspect the product index.", no_args_is_help=True)


def print_build_report(report: BuildReport) -> None:
    table = Table(title=f"Index {report.version}", show_header=False)
    for label, value in [
        ("products", report.products),
        ("images listed", report.images + report.refused_images),
        ("images refused (see below)", report.refused_images),
        ("embedded", report.embedded),
        ("from cache", report.cached),
        ("failed images", len(report.failed_images)),
        ("products without a usable image", len(report.products_without_images)),
        ("seconds", f"{report.seconds:.1f}"),
    ]:
        table.add_row(label, str(value))
    err.print(table)
    for problem in report.catalog_problems:
        err.print(f"[yellow]catalog:[/yellow] {problem}")
    for failed in report.failed_images:
        err.print(f"[yellow]image failed:[/yellow] {failed.product_id} {failed.uri}: {failed.reason}")
    for product_id, why in report.products_without_images.items():
        err.print(f"[yellow]no usable image:[/yellow] {product_id}: {why}")


@app.command("build")
def index_build(
    catalog: Annotated[
        str | None,
        typer.Option(
            help="Catalog JSON/CSV (path, file:// or http(s) URL), postgresql://… (catalog tables) "
            "or supabase:. Default: IMAGEMATCH_CATALOG."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Embed the catalog's images (only new ones: a cache keeps the rest) and publish a snapshot."""
    from imagematch.operations import open_services, rebuild

    settings = load_settings()
    catalog = catalog or settings.catalog
    if not catalog:
        raise fail("give --catalog or set IMAGEMATCH_CATALOG")
    with open_services(settings) as services, progress_bar() as progress:
        task = progress.add_task("embedding catalog images", total=None)
        try:
            report = rebuild(
                services,
                catalog,
                progress=lambda n: progress.advance(task, n),
                on_catalog=lambda total: progress.update(task, total=total),
            )
        except ImageMatchError as exc:
            raise fail(str(exc)) from exc
        except OSError as exc:  # disk full, quota: the previous snapshot stays current
            raise fail(f"cannot write the index snapshot ({exc}); the previous one keeps serving") from exc
    print_build_report(report)
    if as_json:
        print(json.dumps(report.summary()))


@app.command("switch-model")
def index_switch_model(
    model: Annotated[str, typer.Argument(help="The new model spec, e.g. open_clip:ViT-L-14/<pretrained>.")],
    catalog: Annotated[
        str | None, typer.Option(help="Catalog to build (default: IMAGEMATCH_CATALOG).")
    ] = None,
    queries: Annotated[
        Path | None,
        typer.Option(
            help="Labelled photos (JSON lines: image, product_id) for the check; default: "
            "catalog self-retrieval.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    floor: Annotated[float, typer.Option(help="The check's recall@1 the new model must reach.")] = 0.9,
    as_json: JsonFlag = False,
) -> None:
    """Build the catalog with another model beside the served snapshot, check it, and serve it only
    if the check passes (processes holding the old model keep serving until they restart)."""
    from imagematch.operations import open_services, switch_model

    settings = load_settings()
    catalog = catalog or settings.catalog
    if not catalog:
        raise fail("give --catalog or set IMAGEMATCH_CATALOG")
    try:
        with open_services(settings, embedder=model) as new:
            report = switch_model(new, catalog, queries=queries, floor=floor)
    except ImageMatchError as exc:
        raise fail(str(exc)) from exc
    print_build_report(report.build)
    check = report.check
    verdict = "promoted: now served" if report.promoted else "NOT promoted: the served snapshot is unchanged"
    err.print(f"{check.name} {check.value:.3f} (floor {check.floor}, {check.samples} photos): {verdict}")
    if as_json:
        print(json.dumps(report.summary()))
    if not report.promoted:
        raise typer.Exit(1)
