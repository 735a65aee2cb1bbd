-- SQLite ledger: schema and every query the SQLite backend runs.
-- Times are UNIX seconds (REAL); JSON columns are TEXT. Each block starts with "-- name: <name>".

-- name: schema
CREATE TABLE IF NOT EXISTS image_jobs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT    NOT NULL,
    source          TEXT    NOT NULL,
    idempotency_key TEXT    NOT NULL UNIQUE,
    status          TEXT    NOT NULL
        CHECK (status IN ('pending', 'processing', 'complete', 'failed', 'skipped')),
    payload         TEXT    NOT NULL DEFAULT '{}',
    metadata        TEXT    NOT NULL DEFAULT '{}',
    attempts        INTEGER NOT NULL DEFAULT 0,
    error_kind      TEXT    CHECK (error_kind IN ('transient', 'permanent')),
    last_error      TEXT,
    next_attempt_at REAL,
    locked_until    REAL,
    worker_id       TEXT,
    created_at      REAL    NOT NULL,
    updated_at      REAL    NOT NULL,
    finished_at     REAL
);
CREATE INDEX IF NOT EXISTS image_jobs_due ON image_jobs (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS image_jobs_source ON image_jobs (source, id);
CREATE TABLE IF NOT EXISTS image_prediction_log (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id             INTEGER NOT NULL UNIQUE REFERENCES image_jobs (id) ON DELETE CASCADE,
    source             TEXT    NOT NULL,
    ticket_id          TEXT,
    comment_id         TEXT,
    attachment_id      TEXT,
    file_name          TEXT,
    image_url          TEXT,
    matches            TEXT    NOT NULL,
    best_product_id    TEXT,
    best_score         REAL,
    no_confident_match INTEGER NOT NULL DEFAULT 0,
    embedder_id        TEXT    NOT NULL,
    index_version      TEXT    NOT NULL,
    latency_ms         REAL    NOT NULL,
    created_at         REAL    NOT NULL
);
CREATE INDEX IF NOT EXISTS image_prediction_log_ticket ON image_prediction_log (ticket_id, id);

-- Attempt history: one row each time a job leaves 'processing' (see JobAttempt).
CREATE TABLE IF NOT EXISTS image_job_attempts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id          INTEGER NOT NULL REFERENCES image_jobs (id) ON DELETE CASCADE,
    attempt         INTEGER NOT NULL,
    worker_id       TEXT,
    outcome         TEXT    NOT NULL,
    error_kind      TEXT,
    error           TEXT,
    next_attempt_at REAL,
    finished_at     REAL    NOT NULL
);
CREATE INDEX IF NOT EXISTS image_job_attempts_job ON image_job_attempts (job_id, id);
CREATE TRIGGER IF NOT EXISTS image_jobs_attempt_ended
AFTER UPDATE OF status ON image_jobs
WHEN OLD.status = 'processing' AND NEW.status <> 'processing'
BEGIN
    INSERT INTO image_job_attempts (job_id, attempt, worker_id, outcome, error_kind, error,
                                    next_attempt_at, finished_at)
    VALUES (NEW.id, OLD.attempts, OLD.worker_id, NEW.status, NEW.error_kind, NEW.last_error,
            NEW.next_attempt_at, NEW.updated_at);
END;

-- name: insert_job
INSERT INTO image_jobs (kind, source, idempotency_key, status, payload, metadata,
                        next_attempt_at, created_at, updated_at)
VALUES (:kind, :source, :idempotency_key, 'pending', :payload, :metadata, :now, :now, :now)
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING *;

-- name: job_by_id
SELECT * FROM image_jobs WHERE id = :id;

-- name: job_by_key
SELECT * FROM image_jobs WHERE idempotency_key = :idempotency_key;

-- name: list_jobs
SELECT * FROM image_jobs
WHERE (:status IS NULL OR status = :status)
  AND (:source IS NULL OR source = :source)
  AND (:before_id IS NULL OR id < :before_id)
ORDER BY id DESC
LIMIT :limit;

-- name: claim
UPDATE image_jobs
SET status = 'processing', attempts = attempts + 1, worker_id = :worker_id,
    locked_until = :now + :lease_seconds, updated_at = :now
WHERE id IN (
    SELECT id FROM image_jobs
    WHERE status = 'pending' AND next_attempt_at <= :now
    ORDER BY next_attempt_at, id
    LIMIT :limit
)
RETURNING *;

-- name: claim_job
UPDATE image_jobs
SET status = 'processing', attempts = attempts + 1, worker_id = :worker_id,
    locked_until = :now + :lease_seconds, updated_at = :now
WHERE id = :id AND status = 'pending' AND next_attempt_at <= :now
RETURNING *;

-- name: heartbeat
UPDATE image_jobs SET locked_until = :now + :lease_seconds, updated_at = :now
WHERE id = :id AND status = 'processing' AND worker_id = :worker_id;

-- name: finish
UPDATE image_jobs
SET status = :status, error_kind = :error_kind, last_error = :error, next_attempt_at = :retry_at,
    locked_until = NULL, updated_at = :now,
    finished_at = CASE WHEN :retry_at IS NULL THEN :now ELSE NULL END
WHERE id = :id AND status = 'processing' AND worker_id = :worker_id;

-- name: insert_prediction
INSERT INTO image_prediction_log (job_id, source, ticket_id, comment_id, attachment_id, file_name,
    image_url, matches, best_product_id, best_score, no_confident_match, embedder_id,
    index_version, latency_ms, created_at)
VALUES (:job_id, :source, :ticket_id, :comment_id, :attachment_id, :file_name, :image_url,
    :matches, :best_product_id, :best_score, :no_confident_match, :embedder_id, :index_version,
    :latency_ms, :now)
ON CONFLICT (job_id) DO UPDATE SET
    matches = excluded.matches, best_product_id = excluded.best_product_id,
    best_score = excluded.best_score, no_confident_match = excluded.no_confident_match,
    embedder_id = excluded.embedder_id, index_version = excluded.index_version,
    latency_ms = excluded.latency_ms, created_at = excluded.created_at;

-- name: requeue
UPDATE image_jobs
SET status = 'pending', attempts = 0, next_attempt_at = :now, locked_until = NULL,
    worker_id = NULL, finished_at = NULL, updated_at = :now
WHERE id = :id AND status IN ('failed', 'skipped', 'complete');

-- name: requeue_failed
UPDATE image_jobs
SET status = 'pending', attempts = 0, next_attempt_at = :now, locked_until = NULL,
    worker_id = NULL, finished_at = NULL, updated_at = :now
WHERE status = 'failed' AND (:source IS NULL OR source = :source);

-- name: sweep_retries_due
UPDATE image_jobs SET status = 'pending', worker_id = NULL, updated_at = :now
WHERE status = 'failed' AND next_attempt_at IS NOT NULL AND next_attempt_at <= :now;

-- name: sweep_expired_give_up
UPDATE image_jobs
SET status = 'failed', error_kind = 'transient', next_attempt_at = NULL, locked_until = NULL,
    last_error = 'lease expired: worker ' || COALESCE(worker_id, '?') || ' stopped responding',
    finished_at = :now, updated_at = :now
WHERE status = 'processing' AND locked_until < :now AND attempts >= :max_attempts;

-- name: sweep_expired_requeue
UPDATE image_jobs
SET status = 'pending', next_attempt_at = :now, locked_until = NULL,
    last_error = 'lease expired: worker ' || COALESCE(worker_id, '?') || ' stopped responding',
    worker_id = NULL, updated_at = :now
WHERE status = 'processing' AND locked_until < :now;

-- name: due_pending
SELECT id FROM image_jobs
WHERE status = 'pending' AND next_attempt_at <= :now AND updated_at <= :cutoff
ORDER BY id;

-- name: count_by_status
SELECT status, COUNT(*) AS n FROM image_jobs
WHERE (:kind IS NULL OR kind = :kind)
GROUP BY status;

-- name: prediction_by_job
SELECT * FROM image_prediction_log WHERE job_id = :job_id;

-- name: list_predictions
SELECT * FROM image_prediction_log
WHERE (:ticket_id IS NULL OR ticket_id = :ticket_id)
  AND (:before_id IS NULL OR id < :before_id)
ORDER BY id DESC
LIMIT :limit;

-- name: list_attempts
SELECT * FROM image_job_attempts WHERE job_id = :job_id ORDER BY id;
