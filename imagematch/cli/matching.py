"""``imagematch match`` and ``imagematch eval``: the model and the index, from the terminal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from imagematch.cli.terminal import JsonFlag, err, fail, load_settings, out, progress_bar
from imagematch.errors import ImageMatchError
from imagematch.models import Match

if TYPE_CHECKING:
    from imagematch.app import Services
    from imagematch.evaluation import EvalReport
    from imagematch.index import ProductIndex
    from index_builder import BuildReport

__all__ = ["eval_", "match"]


def _match_table(title: str, matches: list[Match]) -> Table:
    table = Table(title=title)
    for column in ("#", "product", "name", "category", "score"):
        table.add_column(column)
    for rank, m in enumerate(matches, start=1):
        table.add_row(str(rank), m.product_id, m.name, m.category, f"{m.score:.3f}")
    return table


def match(
    images: Annotated[list[Path], typer.Argument(help="Image files to match.", exists=True, dir_okay=False)],
    top_k: Annotated[int, typer.Option(help="Products per image.")] = 5,
    as_json: JsonFlag = False,
) -> None:
    """Show the top products for each image."""
    from imagematch.app import build_services, serving_model
    from imagematch.models import MatchRequest

    settings = load_settings()
    services = build_services(settings, embedder=serving_model(settings))
    results: dict[str, Any] = {}
    for path in images:
        try:
            result = services.photos.match_bytes(path.read_bytes(), MatchRequest(top_k=top_k)).result
        except ImageMatchError as exc:
            err.print(f"[red]{path}:[/red] {exc}")
            results[str(path)] = {"error": str(exc)}
            continue
        results[str(path)] = result.model_dump(mode="json")
        note = "  [yellow](no confident match)[/yellow]" if result.no_confident_match else ""
        (err if as_json else out).print(_match_table(f"{path}{note}", result.matches))
    if as_json:
        print(json.dumps(results))
    if any("error" in r for r in results.values()):
        raise typer.Exit(code=1)


_LEARN_FROM_HELP = (
    "Labelled photos (lines like --queries) to learn from first, in a fresh data dir: each is "
    "submitted as a job, labelled with its product_id, and becomes a learned reference."
)


def eval_(
    catalog: Annotated[Path, typer.Option(help="products.json of the catalog.", exists=True)],
    queries: Annotated[
        Path, typer.Option(help="queries.jsonl lines: image, product_id, split?", exists=True)
    ],
    limit: Annotated[int | None, typer.Option(help="Only the first N queries.")] = None,
    learn_from: Annotated[Path | None, typer.Option(help=_LEARN_FROM_HELP, exists=True)] = None,
    as_json: JsonFlag = False,
) -> None:
    """Product-level recall@1/@5, MRR and images/s on labelled photos, overall and per split.
    With ``--learn-from``, after learning from those labelled photos the way production does."""
    from imagematch.app import build_services
    from imagematch.evaluation import evaluate, load_queries
    from imagematch.images import sha256_hex
    from imagematch.index import SnapshotStore
    from index_builder import rebuild_catalog_index

    services = build_services(load_settings())
    if learn_from is not None:
        _eval_after_learning(services, catalog, queries, learn_from, limit=limit, as_json=as_json)
        return
    data_dir = services.settings.data_dir
    # Each catalog gets its own index under data/eval/, so evaluating never replaces the served one.
    snapshots = SnapshotStore(data_dir / "eval" / sha256_hex(str(catalog.resolve()).encode())[:12], keep=2)
    labelled = load_queries(queries)[:limit]
    with progress_bar() as progress:
        task = progress.add_task("catalog", total=None)
        index, report = rebuild_catalog_index(
            services,
            str(catalog.resolve()),
            snapshots=snapshots,
            progress=lambda n: progress.advance(task, n),
            on_catalog=lambda total: progress.update(task, total=total),
        )
        _refuse_unusable_catalog(report)
        query_task = progress.add_task("queries", total=len(labelled))
        result = evaluate(
            labelled,
            embedder=services.embedder,
            index=index,
            limits=services.limits,
            batch_size=services.settings.batch_size,
            progress=lambda n: progress.advance(query_task, n),
            calibration=services.matcher.calibration,
        )
    _print_evaluation(services, index, report, result, as_json=as_json)


def _refuse_unusable_catalog(report: BuildReport) -> None:
    """Say how many catalog images were refused or failed, and why; exit 1 when none is usable
    (recall on an empty index is no measurement)."""
    from imagematch.cli.index import print_build_report

    unusable, listed = report.unusable_images()
    if unusable == 0:
        return
    print_build_report(report)  # each refusal with its reason
    if unusable < listed:
        err.print(f"[yellow]{unusable} of {listed} catalog images refused or failed[/yellow]")
        return
    raise fail(f"{unusable} of {listed} catalog images refused or failed: nothing to evaluate against")


def _eval_after_learning(
    services: Services, catalog: Path, queries: Path, labels: Path, *, limit: int | None, as_json: bool
) -> None:
    """``eval --learn-from``: build the catalog in a fresh data dir, learn from ``labels`` through
    the feedback path (:mod:`imagematch.learn_from`), then evaluate ``queries`` on the result."""
    from imagematch.evaluation import evaluate, load_queries
    from imagematch.learn_from import fresh_services, learn_from_labels
    from index_builder import rebuild_catalog_index

    labelled, to_learn = load_queries(queries)[:limit], load_queries(labels)
    with fresh_services(services.settings, embedder=services.embedder) as fresh, progress_bar() as progress:
        task = progress.add_task("catalog", total=None)
        _, report = rebuild_catalog_index(
            fresh,
            str(catalog.resolve()),
            progress=lambda n: progress.advance(task, n),
            on_catalog=lambda total: progress.update(task, total=total),
        )
        _refuse_unusable_catalog(report)
        learn_task = progress.add_task("learning", total=len(to_learn))
        learned = learn_from_labels(fresh, to_learn, progress=lambda n: progress.advance(learn_task, n))
        index = fresh.index.get()
        query_task = progress.add_task("queries", total=len(labelled))
        result = evaluate(
            labelled,
            embedder=fresh.embedder,
            index=index,
            limits=fresh.limits,
            batch_size=fresh.settings.batch_size,
            progress=lambda n: progress.advance(query_task, n),
        )
    err.print(f"learned from {learned.labelled} labelled photos: " + json.dumps(learned.summary()))
    _print_evaluation(services, index, report, result, as_json=as_json, extra={"learned": learned.summary()})


def _print_evaluation(
    services: Services,
    index: ProductIndex,
    report: BuildReport,
    result: EvalReport,
    *,
    as_json: bool,
    extra: dict[str, Any] | None = None,
) -> None:
    recipe = ", ".join(f"{key}={value}" for key, value in index.recipe.items())
    table = Table(title=f"{services.embedder.embedder_id} ({recipe}) on {len(index.products)} products")
    for column in ("queries", "n", "recall@1", "recall@5", "MRR"):
        table.add_column(column)
    for name, row in [("all", result.summary([])), *result.per_split().items()]:
        table.add_row(
            name if name == "all" else f"split {name}",
            str(row["n"]),
            f"{row['recall@1']:.3f}",
            f"{row['recall@5']:.3f}",
            f"{row['mrr']:.3f}",
        )
    table.caption = f"{result.images_per_second:.1f} query images/s end to end"
    (err if as_json else out).print(table)
    err.print(_category_table(result))
    err.print(_confidence_table(result, services.settings.min_score))
    for skipped in result.skipped:
        err.print(f"[yellow]skipped:[/yellow] {skipped}")
    if report.failed_images:
        err.print(f"[yellow]{len(report.failed_images)} catalog images failed[/yellow]")
    if as_json:
        summary = {**result.summary(), "embedder": services.embedder.embedder_id, **index.recipe}
        print(json.dumps({**summary, **(extra or {})}))


def _category_table(result: EvalReport) -> Table:
    by_category = Table(title="per category")
    for column in ("category", "n", "recall@1", "recall@5"):
        by_category.add_column(column)
    for category, row in result.per_category.items():
        by_category.add_row(category, str(row["n"]), f"{row['recall@1']:.2f}", f"{row['recall@5']:.2f}")
    return by_category


def _confidence_table(result: EvalReport, min_score: float) -> Table:
    from imagematch.evaluation import CONFIDENCE_THRESHOLDS

    table = Table(title=f"no-confident-match threshold (IMAGEMATCH_MIN_SCORE={min_score})")
    table.add_column("best score ≥")
    scopes: list[str | None] = [None, *result.splits]
    for scope in scopes:
        label = "" if scope is None else f" ({scope})"
        table.add_column(f"coverage{label}")
        table.add_column(f"precision{label}")
    for threshold in sorted({*CONFIDENCE_THRESHOLDS, min_score}):
        cells = [f"{threshold:.2f}"]
        for scope in scopes:
            row = result.confidence_at(threshold, scope)
            cells += [f"{row['coverage']:.3f}", f"{row['precision']:.3f}"]
        table.add_row(*cells, style="bold" if threshold == min_score else None)
    return table
