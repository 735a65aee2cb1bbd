"""Operator commands against the *deployed* app (``modal deploy modal_app.py`` first).

    modal run modal_ops.py [--scope missing|failed|all] [--source S] [--since DATE] [--limit N] [--dry-run]
    modal run modal_ops.py --rebuild [--catalog URL] [--switch-model SPEC] [--dry-run]

The first re-queues jobs with no successful prediction and dispatches them (``imagematch requeue``);
the second starts a rebuild of the index (default catalog: ``IMAGEMATCH_CATALOG``), with
``--switch-model`` a candidate of that model, served only if it passes its check.

Its own ``modal.App``, with no functions: ``modal run`` starts a temporary copy of the app in the
file it is given, schedules included, so running these from ``modal_app.py`` would bring a second
nightly ``reindex`` — a second writer of CURRENT. Here they call the deployed functions by name.
"""

from __future__ import annotations

import modal

APP_NAME = "imagematch"  # the deployed app (modal_app.APP_NAME)

app = modal.App("imagematch-ops")  # no functions, no schedules


def deployed(name: str) -> modal.Function:
    return modal.Function.from_name(APP_NAME, name)


def describe_requeue(summary: dict[str, object]) -> str:
    """One line for a person: what the deployed ``requeue`` found and did."""
    by_status = summary["by_status"]
    found = ", ".join(f"{n} {s}" for s, n in by_status.items()) if isinstance(by_status, dict) else ""
    if summary["dry_run"]:
        return f"dry run: found {found or 'no jobs'}; would re-queue them and dispatch them"
    return f"found {found or 'no jobs'}; re-queued {summary['requeued']}, dispatched {summary['dispatched']}"


def start_rebuild(catalog: str, switch_model: str, dry_run: bool) -> str:
    """Spawn the deployed ``reindex`` (after fetching a new model's weights); what was done."""
    what = f"a {switch_model} candidate" if switch_model else "the index"
    where = catalog or "IMAGEMATCH_CATALOG"
    if dry_run:
        return f"dry run: would rebuild {what} from {where} on the deployed app and publish it"
    if switch_model:
        deployed("download_weights").remote(switch_model)  # the new model's weights on the Volume
    call = deployed("reindex").spawn(catalog=catalog, model=switch_model)
    return f"rebuilding {what} from {where}: call {call.object_id} (`modal app logs {APP_NAME}`)"


@app.local_entrypoint()
def main(
    rebuild: bool = False,
    catalog: str = "",
    switch_model: str = "",
    scope: str = "missing",
    status: str = "",  # the old name of --scope, for one release
    source: str = "",
    since: str = "",
    limit: int = 0,
    dry_run: bool = False,
) -> None:
    if rebuild:
        print(start_rebuild(catalog, switch_model, dry_run))
        return
    options = {"scope": status or scope, "source": source, "since": since, "limit": limit}
    print(describe_requeue(deployed("requeue").remote(**options, dry_run=dry_run)))
