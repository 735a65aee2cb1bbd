"""One contract for every ledger backend: each test runs against each backend."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from imagematch.entities import EntityMatch, EntityPhoto, EntityRef, PhotoEvidence
from imagematch.ledger import JobOutcome, Ledger, open_ledger
from imagematch.ledger.supabase import SupabaseLedger
from imagematch.models import ErrorKind, JobKind, JobStatus, Match, NewJob, NewPrediction
from imagematch.quality import QualitySignals, assess_quality
from imagematch.sources.catalog import CATALOG_EVENT_KIND
from imagematch.sources.zendesk import ZendeskNotePayload
from tests.conftest import FakeClock
from tests.postgrest_standin import serve_postgrest

BACKENDS = [
    "memory",
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("supabase", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def make_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Ledger]]:
    opened: list[Ledger] = []
    urls = {"memory": lambda: "memory://", "sqlite": lambda: f"sqlite:///{tmp_path / 'ledger.sqlite3'}"}
    with ExitStack() as stack:
        if request.param in ("postgres", "supabase"):
            pg_url = request.getfixturevalue("postgres_url")
            urls["postgres"] = lambda: pg_url
            open_ledger(pg_url).close()  # apply the migrations
        if request.param == "supabase":
            project_url = stack.enter_context(serve_postgrest(pg_url))

        def make(clock: Callable[[], datetime] | None = None) -> Ledger:
            options = {"clock": clock} if clock else {}
            if request.param == "supabase":
                ledger: Ledger = SupabaseLedger(project_url, "service-role-key-for-tests", **options)
            else:
                ledger = open_ledger(urls[request.param](), **options)
            opened.append(ledger)
            return ledger

        yield make
        for ledger in opened:
            ledger.close()


def _job(n: int, source: str = "test") -> NewJob:
    return NewJob(source=source, idempotency_key=f"key-{n}", payload={"image": f"blob:{n}"})


def _prediction() -> NewPrediction:
    match = Match(product_id="P1", name="One", score=0.9, image_id="P1/abc")
    return NewPrediction(matches=[match], embedder_id="e", index_version="v000001", latency_ms=3.0)


def test_submit_is_idempotent(make_ledger: Callable[..., Ledger]) -> None:
    ledger = make_ledger()
    first, created = ledger.submit(_job(1))
    again, created_again = ledger.submit(_job(1).model_copy(update={"payload": {"other": 1}}))
    assert created and not created_again
    assert again.id == first.id and again.payload == {"image": "blob:1"}
    assert first.status == JobStatus.PENDING and first.attempts == 0
    assert ledger.get_job_by_key("key-1", kind=JobKind.MATCH_IMAGE) == ledger.get_job(first.id)
    assert ledger.get_job(999) is None


def test_idempotency_keys_are_scoped_by_kind(make_ledger: Callable[..., Ledger]) -> None:
    """A caller of POST /v1/images who picks the key a future Zendesk note will use must not make
    that note job a "duplicate" of the upload."""
    ledger = make_ledger()
    key = "zendesk-note:7:42"
    upload, _ = ledger.submit(NewJob(source="api", idempotency_key=key, payload={"image": "blob:x"}))
    note, created = ledger.submit(
        NewJob(
            kind=ZendeskNotePayload.KIND, source="zendesk", idempotency_key=key, payload={"ticket_id": "7"}
        )
    )
    assert created and note.id != upload.id and note.kind == ZendeskNotePayload.KIND
    again, created_again = ledger.submit(
        NewJob(kind=ZendeskNotePayload.KIND, source="zendesk", idempotency_key=key, payload={})
    )
    assert not created_again and again.id == note.id
    assert ledger.get_job_by_key(key, kind=ZendeskNotePayload.KIND) == ledger.get_job(note.id)
    assert ledger.get_job_by_key(key, kind=JobKind.MATCH_IMAGE) == ledger.get_job(upload.id)
    assert ledger.get_job_by_key(key, kind=CATALOG_EVENT_KIND) is None


def test_complete_records_one_prediction(make_ledger: Callable[..., Ledger]) -> None:
    ledger = make_ledger()
    job, _ = ledger.submit(_job(1))
    [claimed] = ledger.claim("w1", limit=5, lease_seconds=60)
    assert claimed.id == job.id and claimed.status == JobStatus.PROCESSING and claimed.attempts == 1
    assert ledger.claim("w2", limit=5, lease_seconds=60) == []
    assert not ledger.complete(job.id, "w2", _prediction())  # not w2's job
    assert ledger.complete(job.id, "w1", _prediction())
    assert not ledger.complete(job.id, "w1", _prediction())  # already complete
    done = ledger.get_job(job.id)
    assert done and done.status == JobStatus.COMPLETE and done.finished_at is not None
    prediction = ledger.get_prediction(job.id)
    assert prediction and prediction.best_product_id == "P1" and prediction.best_score == 0.9
    assert prediction.matches[0].name == "One"
    assert len(ledger.list_predictions()) == 1


def test_reprocessing_replaces_the_prediction(make_ledger: Callable[..., Ledger]) -> None:
    ledger = make_ledger()
    job, _ = ledger.submit(_job(1))
    ledger.claim("w", limit=1, lease_seconds=60)
    ledger.complete(job.id, "w", _prediction())
    assert ledger.requeue(job.id)
    ledger.claim("w", limit=1, lease_seconds=60)
    newer = _prediction().model_copy(update={"index_version": "v000002"})
    assert ledger.complete(job.id, "w", newer)
    [only] = ledger.list_predictions()
    assert only.job_id == job.id and only.index_version == "v000002"


def test_claim_is_exclusive_across_concurrent_workers(make_ledger: Callable[..., Ledger]) -> None:
    ledger = make_ledger()
    total = 1000
    for n in range(total):
        ledger.submit(_job(n))
    processed: Counter[int] = Counter()
    lock = threading.Lock()

    def work(worker_id: str) -> None:
        while jobs := ledger.claim(worker_id, limit=10, lease_seconds=60):
            for job in jobs:
                with lock:
                    processed[job.id] += 1
                assert ledger.complete(job.id, worker_id, _prediction())

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(processed) == total and set(processed.values()) == {1}
    assert ledger.count_by_status()[JobStatus.COMPLETE] == total
    assert len(ledger.list_predictions(limit=2000)) == total


def test_expired_lease_is_swept_back_and_completes(make_ledger: Callable[..., Ledger]) -> None:
    clock = FakeClock()
    ledger = make_ledger(clock)
    job, _ = ledger.submit(_job(1))
    ledger.claim("dead-worker", limit=1, lease_seconds=30)
    clock.advance(10)
    assert ledger.sweep(max_attempts=5, pending_grace_seconds=60).leases_expired == 0
    clock.advance(30)
    report = ledger.sweep(max_attempts=5, pending_grace_seconds=60)
    assert report.leases_expired == 1
    swept = ledger.get_job(job.id)
    assert swept and swept.status == JobStatus.PENDING and "lease expired" in (swept.last_error or "")
    [again] = ledger.claim("w2", limit=1, lease_seconds=30)
    assert again.attempts == 2
    assert not ledger.complete(job.id, "dead-worker", _prediction())  # the old worker lost it
    assert ledger.complete(job.id, "w2", _prediction())


def test_claim_job_takes_one_dispatched_job_once(make_ledger: Callable[..., Ledger]) -> None:
    ledger = make_ledger()
    first, _ = ledger.submit(_job(1))
    ledger.submit(_job(2))
    claimed = ledger.claim_job(first.id, "w1", lease_seconds=60)
    assert claimed and claimed.status == JobStatus.PROCESSING and claimed.worker_id == "w1"
    assert ledger.claim_job(first.id, "w2", lease_seconds=60) is None  # a duplicate dispatch
    assert ledger.claim_job(999, "w2", lease_seconds=60) is None
    [other] = ledger.claim("w2", limit=5, lease_seconds=60)
    assert other.id != first.id


def test_heartbeat_keeps_the_lease(make_ledger: Callable[..., Ledger]) -> None:
    clock = FakeClock()
    ledger = make_ledger(clock)
    job, _ = ledger.submit(_job(1))
    ledger.claim("w1", limit=1, lease_seconds=30)
    for _ in range(5):
        clock.advance(20)
        assert ledger.heartbeat(job.id, "w1", lease_seconds=30)
    assert ledger.sweep(max_attempts=5, pending_grace_seconds=60).leases_expired == 0
    assert not ledger.heartbeat(job.id, "intruder", lease_seconds=30)


def test_expired_lease_out_of_attempts_fails(make_ledger: Callable[..., Ledger]) -> None:
    clock = FakeClock()
    ledger = make_ledger(clock)
    job, _ = ledger.submit(_job(1))
    for _ in range(2):
        ledger.claim("w", limit=1, lease_seconds=5)
        clock.advance(10)
        ledger.sweep(max_attempts=2, pending_grace_seconds=60)
    failed = ledger.get_job(job.id)
    assert failed and failed.status == JobStatus.FAILED and failed.error_kind == ErrorKind.TRANSIENT


def test_transient_failure_waits_for_its_retry_time(make_ledger: Callable[..., Ledger]) -> None:
    clock = FakeClock()
    ledger = make_ledger(clock)
    job, _ = ledger.submit(_job(1))
    ledger.claim("w", limit=1, lease_seconds=60)
    retry_at = clock.now + timedelta(seconds=60)
    assert ledger.fail(job.id, "w", error_kind=ErrorKind.TRANSIENT, error="HTTP 503", retry_at=retry_at)
    failed = ledger.get_job(job.id)
    assert failed and failed.status == JobStatus.FAILED and failed.next_attempt_at == retry_at
    assert ledger.sweep(max_attempts=5, pending_grace_seconds=60).retries_due == 0
    clock.advance(61)
    assert ledger.sweep(max_attempts=5, pending_grace_seconds=60).retries_due == 1
    [again] = ledger.claim("w", limit=1, lease_seconds=60)
    assert again.id == job.id and again.attempts == 2 and again.last_error == "HTTP 503"


def test_permanent_failure_is_never_retried_by_the_sweep(make_ledger: Callable[..., Ledger]) -> None:
    clock = FakeClock()
    ledger = make_ledger(clock)
    job, _ = ledger.submit(_job(1))
    ledger.claim("w", limit=1, lease_seconds=60)
    ledger.fail(job.id, "w", error_kind=ErrorKind.PERMANENT, error="not an image", retry_at=None)
    clock.advance(10_000)
    assert ledger.sweep(max_attempts=5, pending_grace_seconds=60).retries_due == 0
    failed = ledger.get_job(job.id)
    assert failed and failed.error_kind == ErrorKind.PERMANENT and failed.last_error == "not an image"
    # ...until someone retries it by hand.
    requeued = ledger.requeue(job.id)
    assert requeued and requeued.status == JobStatus.PENDING and requeued.attempts == 0


def test_skip_is_a_clean_outcome(make_ledger: Callable[..., Ledger]) -> None:
    ledger = make_ledger()
    job, _ = ledger.submit(_job(1))
    ledger.claim("w", limit=1, lease_seconds=60)
    assert ledger.skip(job.id, "w", reason="product deleted")
    skipped = ledger.get_job(job.id)
    assert skipped and skipped.status == JobStatus.SKIPPED and skipped.last_error == "product deleted"


def test_requeue_failed_and_listing(make_ledger: Callable[..., Ledger]) -> None:
    ledger = make_ledger()
    for n in range(5):
        ledger.submit(_job(n, source="a" if n % 2 else "b"))
    for job in ledger.claim("w", limit=5, lease_seconds=60):
        ledger.fail(job.id, "w", error_kind=ErrorKind.PERMANENT, error="bad", retry_at=None)
    assert ledger.requeue_failed(source="a") == 2
    assert ledger.count_by_status()[JobStatus.PENDING] == 2
    page1 = ledger.list_jobs(limit=3)
    page2 = ledger.list_jobs(limit=3, before_id=page1[-1].id)
    assert [j.id for j in page1 + page2] == [5, 4, 3, 2, 1]
    assert {j.source for j in ledger.list_jobs(status=JobStatus.FAILED)} == {"b"}


def test_sweep_lists_pending_jobs_nobody_picked_up(make_ledger: Callable[..., Ledger]) -> None:
    clock = FakeClock()
    ledger = make_ledger(clock)
    job, _ = ledger.submit(_job(1))
    assert ledger.sweep(max_attempts=5, pending_grace_seconds=60).due_pending == []
    clock.advance(61)
    assert ledger.sweep(max_attempts=5, pending_grace_seconds=60).due_pending == [job.id]


def test_counts_by_status_of_one_kind(make_ledger: Callable[..., Ledger]) -> None:
    ledger = make_ledger()
    for n in range(3):
        ledger.submit(_job(n))
    for n in range(3, 7):
        ledger.submit(_job(n).model_copy(update={"kind": "catalog_event"}))
    [claimed] = ledger.claim("w", limit=1, lease_seconds=60)  # oldest first: a match job
    assert claimed.kind == "match_image"
    catalog = ledger.count_by_status(kind="catalog_event")
    assert catalog[JobStatus.PENDING] == 4 and catalog[JobStatus.PROCESSING] == 0
    assert catalog[JobStatus.COMPLETE] == 0 and set(catalog) == set(JobStatus)
    every = ledger.count_by_status()
    assert every[JobStatus.PENDING] == 6 and every[JobStatus.PROCESSING] == 1
    assert sum(ledger.count_by_status(kind="no-such-kind").values()) == 0


def _photo(entity: str, job_id: int, *, low_quality: bool = False) -> EntityPhoto:
    ref = EntityRef.parse(entity)
    return EntityPhoto(
        **ref.model_dump(), job_id=job_id, image_sha256=f"{job_id:064x}", embedder_id="e",
        phash="ff00ff00ff00ff00", low_quality=low_quality,
    )  # fmt: skip


def _entity_match(product_id: str, score: float, rank: int, job_ids: list[int]) -> EntityMatch:
    evidence = [PhotoEvidence(job_id=j, score=score, rank=1) for j in job_ids]
    return EntityMatch(product_id=product_id, name=product_id.lower(), score=score, rank=rank,
                       photos=len(job_ids), evidence=evidence)  # fmt: skip


def test_entity_photos_and_matches_table(make_ledger: Callable[..., Ledger]) -> None:
    clock = FakeClock()
    ledger = make_ledger(clock)
    ticket = EntityRef.parse("ticket/101")
    jobs = [ledger.submit(_job(n))[0].id for n in range(3)]
    assert ledger.replace_entity_matches(ticket, [], index_version="v000001") is None  # unknown
    ledger.add_entity_photo(_photo("ticket/101", jobs[0]))
    ledger.add_entity_photo(_photo("ticket/101", jobs[1], low_quality=True))
    ledger.add_entity_photo(_photo("ticket/101", jobs[1], low_quality=True))  # a re-run: same row
    ledger.add_entity_photo(_photo("listing/abc", jobs[2]))
    assert [p.job_id for p in ledger.entity_photos(ticket)] == jobs[:2]
    assert [p.low_quality for p in ledger.entity_photos(ticket)] == [False, True]
    assert len(ledger.entity_photos()) == 3
    fresh = ledger.get_entity(ticket)
    assert fresh is not None and fresh.photo_count == 2 and fresh.index_version is None
    assert ledger.count_stale_entities("v000001") == 2

    clock.advance(5)
    before = ledger.replace_entity_matches(
        ticket,
        [_entity_match("P1", 0.8, 1, jobs[:2]), _entity_match("P2", 0.5, 2, jobs[1:2])],
        index_version="v000001",
    )
    assert before is not None and before.index_version is None
    rows = ledger.entity_matches(ticket)
    assert [(m.product_id, m.rank, m.photos) for m in rows] == [("P1", 1, 2), ("P2", 2, 1)]
    assert rows[0].index_version == "v000001" and rows[0].computed_at == clock.now
    assert [e.job_id for e in rows[0].evidence] == jobs[:2] and rows[0].evidence[0].score == 0.8
    entity = ledger.get_entity(ticket)
    assert entity is not None and entity.top_product_id == "P1" and entity.floor_score == 0.5
    assert entity.match_count == 2 and entity.matched_at == clock.now
    assert ledger.entities_matching("P2") == [ticket] and ledger.entities_matching("P9") == []
    assert ledger.count_stale_entities("v000001") == 1  # listing/abc was never matched
    assert ledger.count_stale_entities("v000002") == 2

    listing = EntityRef.parse("listing/abc")
    ledger.replace_entity_matches(listing, [], index_version="v000001")
    assert ledger.advance_entities(from_version="v000001", to_version="v000001+7", keep=[listing]) == 1
    assert ledger.count_stale_entities("v000001+7") == 1  # the kept one: it is being re-matched
    entity = ledger.get_entity(ticket)
    assert entity is not None and entity.index_version == "v000001+7"

    before = ledger.replace_entity_matches(
        ticket, [_entity_match("P2", 0.6, 1, jobs[1:2])], index_version="v2"
    )
    assert before is not None and before.top_product_id == "P1"
    assert [m.product_id for m in ledger.entity_matches(ticket)] == ["P2"]
    assert ledger.entities_matching("P1") == []


def test_entities_are_listed_in_pages_and_since_a_date(make_ledger: Callable[..., Ledger]) -> None:
    clock = FakeClock()
    ledger = make_ledger(clock)
    for n, name in enumerate(["ticket/2", "listing/b", "ticket/1", "listing/a"]):
        job, _ = ledger.submit(_job(n))
        ledger.add_entity_photo(_photo(name, job.id))
        clock.advance(60)
    names = [str(e) for e in ledger.list_entities(limit=3)]
    assert names == ["listing/a", "listing/b", "ticket/1"]
    last = ledger.list_entities(after=EntityRef.parse("ticket/1"))
    assert [str(e) for e in last] == ["ticket/2"]
    recent = ledger.list_entities(since=clock.now - timedelta(seconds=150))
    assert [str(e) for e in recent] == ["listing/a", "ticket/1"]


def test_a_prediction_keeps_its_quality_verdict(make_ledger: Callable[..., Ledger]) -> None:
    ledger = make_ledger()
    job, _ = ledger.submit(_job(1))
    ledger.claim("w1", limit=1, lease_seconds=60)
    signals = QualitySignals(width=64, height=64, sharpness=3.0, brightness=120.0, dark_share=0.0,
                             bright_share=0.0, phash="00ff00ff00ff00ff")  # fmt: skip
    quality = assess_quality(signals)
    digest = "ab" * 32
    prediction = _prediction().model_copy(update={"quality": quality, "image_sha256": digest})
    assert ledger.complete(job.id, "w1", prediction)
    stored = ledger.get_prediction(job.id)
    assert stored is not None and stored.quality is not None and stored.image_sha256 == digest
    assert stored.quality.low_quality and stored.quality.reasons == quality.reasons


def test_every_ended_attempt_is_kept_in_order(make_ledger: Callable[..., Ledger]) -> None:
    clock = FakeClock()
    ledger = make_ledger(clock)
    job, _ = ledger.submit(_job(1))
    ledger.claim("w1", limit=1, lease_seconds=60)
    retry_at = clock.now + timedelta(seconds=30)
    ledger.fail(job.id, "w1", error_kind=ErrorKind.TRANSIENT, error="HTTP 503", retry_at=retry_at)
    clock.advance(31)
    ledger.sweep(max_attempts=5, pending_grace_seconds=60)
    ledger.claim("w2", limit=1, lease_seconds=5)
    clock.advance(10)
    ledger.sweep(max_attempts=5, pending_grace_seconds=60)  # w2 died: its lease expired
    ledger.claim("w3", limit=1, lease_seconds=60)
    ledger.heartbeat(job.id, "w3", lease_seconds=60)
    ledger.complete(job.id, "w3", _prediction())
    attempts = ledger.list_attempts(job.id)
    assert [(a.attempt, a.worker_id, a.outcome) for a in attempts] == [
        (1, "w1", JobStatus.FAILED),
        (2, "w2", JobStatus.PENDING),
        (3, "w3", JobStatus.COMPLETE),
    ]
    first, lost, done = attempts
    assert first.error == "HTTP 503" and first.error_kind == ErrorKind.TRANSIENT
    assert first.next_attempt_at == retry_at and first.finished_at == retry_at - timedelta(seconds=30)
    assert "lease expired" in (lost.error or "")
    assert done.finished_at == clock.now
    assert ledger.list_attempts(999) == []


def test_claim_jobs_takes_the_claimable_ones_of_a_batch(make_ledger: Callable[..., Ledger]) -> None:
    clock = FakeClock()
    ledger = make_ledger(clock)
    jobs = [ledger.submit(_job(n))[0] for n in range(4)]
    assert ledger.claim_job(jobs[1].id, "other", lease_seconds=60)  # another worker's
    ids = [jobs[3].id, jobs[0].id, jobs[1].id, jobs[2].id, jobs[0].id, 999_999]  # dupes, unknown
    claimed = ledger.claim_jobs(ids, "w", lease_seconds=60)
    assert [j.id for j in claimed] == [jobs[0].id, jobs[2].id, jobs[3].id]
    assert all(j.status == JobStatus.PROCESSING and j.worker_id == "w" and j.attempts == 1 for j in claimed)
    assert ledger.claim_jobs(ids, "w2", lease_seconds=60) == []  # a duplicate dispatch
    assert ledger.claim_jobs([], "w", lease_seconds=60) == []


def test_finish_many_records_each_outcome_independently(make_ledger: Callable[..., Ledger]) -> None:
    clock = FakeClock()
    ledger = make_ledger(clock)
    done, failed, retried, skipped, lost = (ledger.submit(_job(n))[0] for n in range(5))
    ledger.claim("w", limit=5, lease_seconds=60)
    clock.advance(61)  # every lease expires: the sweep takes the jobs back, then ``lost`` goes to w2
    ledger.sweep(max_attempts=5, pending_grace_seconds=600)
    assert (
        len(ledger.claim_jobs([j.id for j in (done, failed, retried, skipped)], "w", lease_seconds=60)) == 4
    )
    assert ledger.claim_job(lost.id, "w2", lease_seconds=60)
    retry_at = clock.now + timedelta(seconds=30)
    outcomes = [
        JobOutcome(lost.id, JobStatus.COMPLETE, _prediction()),
        JobOutcome(done.id, JobStatus.COMPLETE, _prediction()),
        JobOutcome(failed.id, JobStatus.FAILED, error_kind=ErrorKind.PERMANENT, error="not an image"),
        JobOutcome(
            retried.id, JobStatus.FAILED, error_kind=ErrorKind.TRANSIENT, error="503", retry_at=retry_at
        ),
        JobOutcome(skipped.id, JobStatus.SKIPPED, error="ticket deleted"),
    ]
    assert ledger.finish_many("w", outcomes) == [False, True, True, True, True]
    assert ledger.finish_many("w", outcomes[1:2]) == [False]  # once only
    assert ledger.finish_many("w", []) == []
    status = {job.id: ledger.get_job(job.id) for job in (done, failed, retried, skipped, lost)}
    assert {i: j.status if j else None for i, j in status.items()} == {
        done.id: JobStatus.COMPLETE,
        failed.id: JobStatus.FAILED,
        retried.id: JobStatus.FAILED,
        skipped.id: JobStatus.SKIPPED,
        lost.id: JobStatus.PROCESSING,
    }
    f, r, s = status[failed.id], status[retried.id], status[skipped.id]
    assert f and f.error_kind == ErrorKind.PERMANENT and f.last_error == "not an image" and f.finished_at
    assert r and r.error_kind == ErrorKind.TRANSIENT and r.next_attempt_at == retry_at
    assert s and s.last_error == "ticket deleted"
    prediction = ledger.get_prediction(done.id)
    assert prediction and prediction.best_product_id == "P1"
    assert ledger.get_prediction(lost.id) is None and ledger.get_prediction(failed.id) is None
    assert [a.outcome for a in ledger.list_attempts(done.id)][-1] == JobStatus.COMPLETE


def test_attempt_numbers_keep_increasing_across_a_manual_retry(make_ledger: Callable[..., Ledger]) -> None:
    """A manual retry resets the job's retry budget, not its history: attempts read 1, 2 (issue #24)."""
    ledger = make_ledger(FakeClock())
    job, _ = ledger.submit(_job(1))
    for worker in ("w1", "w2"):
        ledger.claim(worker, limit=1, lease_seconds=60)
        ledger.fail(job.id, worker, error_kind=ErrorKind.PERMANENT, error="not an image", retry_at=None)
        ledger.requeue(job.id)
    assert [(a.attempt, a.worker_id) for a in ledger.list_attempts(job.id)] == [(1, "w1"), (2, "w2")]
