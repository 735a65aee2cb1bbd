-- SQLite ledger: schema and every query the SQLite backend runs.
-- Times are UNIX seconds (REAL); JSON columns are TEXT. Each block starts with "-- name: <name>".

-- name: schema
CREATE TABLE IF NOT EXISTS image_jobs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT    NOT NULL,
    source          TEXT    NOT NULL,
    idempotency_key TEXT    NOT NULL,
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
-- Keys are unique per job kind: an API caller cannot take the key a catalog event or a Zendesk
-- note will use (with a global key that event would be dropped as a "duplicate").
CREATE UNIQUE INDEX IF NOT EXISTS image_jobs_kind_key ON image_jobs (kind, idempotency_key);
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

-- name: has_global_keys
-- A ledger created before keys were scoped by kind: its column is UNIQUE on its own.
SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'sqlite_autoindex_image_jobs_1';

-- name: scope_keys_by_kind
-- Rebuild image_jobs without the column-level UNIQUE (SQLite cannot drop a constraint), keeping
-- ids and rows (SQLite's documented procedure; run with foreign keys off so the prediction log
-- is untouched). The schema block then recreates the indexes.
BEGIN IMMEDIATE;
CREATE TABLE image_jobs_scoped (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT    NOT NULL,
    source          TEXT    NOT NULL,
    idempotency_key TEXT    NOT NULL,
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
INSERT INTO image_jobs_scoped SELECT * FROM image_jobs;
DROP TABLE image_jobs;
ALTER TABLE image_jobs_scoped RENAME TO image_jobs;
COMMIT;

-- name: insert_job
INSERT INTO image_jobs (kind, source, idempotency_key, status, payload, metadata,
                        next_attempt_at, created_at, updated_at)
VALUES (:kind, :source, :idempotency_key, 'pending', :payload, :metadata, :now, :now, :now)
ON CONFLICT (kind, idempotency_key) DO NOTHING
RETURNING *;

-- name: job_by_id
SELECT * FROM image_jobs WHERE id = :id;

-- name: job_by_key
SELECT * FROM image_jobs WHERE kind = :kind AND idempotency_key = :idempotency_key;

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
    index_version, latency_ms, quality, image_sha256, confidence, band, created_at)
VALUES (:job_id, :source, :ticket_id, :comment_id, :attachment_id, :file_name, :image_url,
    :matches, :best_product_id, :best_score, :no_confident_match, :embedder_id, :index_version,
    :latency_ms, :quality, :image_sha256, :confidence, :band, :now)
ON CONFLICT (job_id) DO UPDATE SET
    matches = excluded.matches, best_product_id = excluded.best_product_id,
    best_score = excluded.best_score, no_confident_match = excluded.no_confident_match,
    embedder_id = excluded.embedder_id, index_version = excluded.index_version,
    latency_ms = excluded.latency_ms, quality = excluded.quality,
    image_sha256 = excluded.image_sha256, confidence = excluded.confidence,
    band = excluded.band, created_at = excluded.created_at;

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

-- Entities (a ticket, a listing): their photos, their state and the matches table. The quality
-- column of the prediction log and these tables came with issue 16; `schema_entities` runs after
-- `schema` on every start (idempotent), `add_prediction_*` once each on an older file.

-- name: schema_entities
CREATE TABLE IF NOT EXISTS entities (
    entity_type   TEXT    NOT NULL,
    entity_id     TEXT    NOT NULL,
    photo_count   INTEGER NOT NULL DEFAULT 0,
    index_version TEXT,
    matched_at    REAL,
    top_product_id TEXT,
    floor_score   REAL,
    match_count   INTEGER NOT NULL DEFAULT 0,
    created_at    REAL    NOT NULL,
    updated_at    REAL    NOT NULL,
    PRIMARY KEY (entity_type, entity_id)
);
CREATE INDEX IF NOT EXISTS entities_updated ON entities (updated_at);
CREATE TABLE IF NOT EXISTS entity_photos (
    entity_type  TEXT    NOT NULL,
    entity_id    TEXT    NOT NULL,
    job_id       INTEGER NOT NULL,
    image_sha256 TEXT    NOT NULL,
    embedder_id  TEXT    NOT NULL,
    phash        TEXT,
    low_quality  INTEGER NOT NULL DEFAULT 0,
    created_at   REAL    NOT NULL,
    PRIMARY KEY (entity_type, entity_id, job_id),
    FOREIGN KEY (entity_type, entity_id) REFERENCES entities (entity_type, entity_id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS matches (
    entity_type   TEXT    NOT NULL,
    entity_id     TEXT    NOT NULL,
    product_id    TEXT    NOT NULL,
    name          TEXT    NOT NULL DEFAULT '',
    score         REAL    NOT NULL,
    rank          INTEGER NOT NULL,
    photos        INTEGER NOT NULL,
    evidence      TEXT    NOT NULL DEFAULT '[]',
    index_version TEXT    NOT NULL,
    computed_at   REAL    NOT NULL,
    PRIMARY KEY (entity_type, entity_id, product_id),
    FOREIGN KEY (entity_type, entity_id) REFERENCES entities (entity_type, entity_id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS matches_product ON matches (product_id);

-- name: prediction_columns
SELECT name FROM pragma_table_info('image_prediction_log');

-- name: add_prediction_quality
ALTER TABLE image_prediction_log ADD COLUMN quality TEXT;

-- name: add_prediction_image_sha256
ALTER TABLE image_prediction_log ADD COLUMN image_sha256 TEXT;

-- name: add_prediction_confidence
ALTER TABLE image_prediction_log ADD COLUMN confidence REAL;

-- name: add_prediction_band
ALTER TABLE image_prediction_log ADD COLUMN band TEXT;

-- name: upsert_entity
INSERT INTO entities (entity_type, entity_id, created_at, updated_at)
VALUES (:entity_type, :entity_id, :now, :now)
ON CONFLICT (entity_type, entity_id) DO UPDATE SET updated_at = excluded.updated_at;

-- name: upsert_entity_photo
INSERT INTO entity_photos (entity_type, entity_id, job_id, image_sha256, embedder_id, phash,
                           low_quality, created_at)
VALUES (:entity_type, :entity_id, :job_id, :image_sha256, :embedder_id, :phash, :low_quality, :now)
ON CONFLICT (entity_type, entity_id, job_id) DO UPDATE SET
    image_sha256 = excluded.image_sha256, embedder_id = excluded.embedder_id,
    phash = excluded.phash, low_quality = excluded.low_quality, created_at = excluded.created_at;

-- name: count_entity_photos
UPDATE entities SET photo_count = (
    SELECT COUNT(*) FROM entity_photos p
    WHERE p.entity_type = entities.entity_type AND p.entity_id = entities.entity_id
)
WHERE entity_type = :entity_type AND entity_id = :entity_id;

-- name: entity_photos
SELECT * FROM entity_photos
WHERE (:entity_type IS NULL OR (entity_type = :entity_type AND entity_id = :entity_id))
ORDER BY job_id, entity_type, entity_id;

-- name: entity_by_ref
SELECT * FROM entities WHERE entity_type = :entity_type AND entity_id = :entity_id;

-- name: list_entities
SELECT * FROM entities
WHERE (:after_type IS NULL OR (entity_type, entity_id) > (:after_type, :after_id))
  AND (:since IS NULL OR updated_at >= :since)
ORDER BY entity_type, entity_id
LIMIT :limit;

-- name: delete_entity_matches
DELETE FROM matches WHERE entity_type = :entity_type AND entity_id = :entity_id;

-- name: insert_entity_match
INSERT INTO matches (entity_type, entity_id, product_id, name, score, rank, photos, evidence,
                     index_version, computed_at)
VALUES (:entity_type, :entity_id, :product_id, :name, :score, :rank, :photos, :evidence,
        :index_version, :now);

-- name: stamp_entity_matches
UPDATE entities
SET index_version = :index_version, matched_at = :now, top_product_id = :top_product_id,
    floor_score = :floor_score, match_count = :match_count
WHERE entity_type = :entity_type AND entity_id = :entity_id;

-- name: entity_matches
SELECT * FROM matches WHERE entity_type = :entity_type AND entity_id = :entity_id ORDER BY rank;

-- name: entities_matching
SELECT entity_type, entity_id FROM matches WHERE product_id = :product_id
ORDER BY entity_type, entity_id;

-- name: advance_entities
UPDATE entities SET index_version = :to_version
WHERE index_version = :from_version
  AND NOT EXISTS (
    SELECT 1 FROM json_each(:keep) k
    WHERE json_extract(k.value, '$[0]') = entities.entity_type
      AND json_extract(k.value, '$[1]') = entities.entity_id
  );

-- name: count_stale_entities
SELECT COUNT(*) AS n FROM entities
WHERE index_version IS NULL OR index_version <> :index_version;
-- name: list_attempts
SELECT * FROM image_job_attempts WHERE job_id = :job_id ORDER BY id;
