-- SQLite ledger: the labels table and its queries (see migration 20261207000000_labels for the
-- Postgres side). Times are UNIX seconds (REAL). Each block starts with "-- name: <name>".

-- name: schema_labels
CREATE TABLE IF NOT EXISTS labels (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id         INTEGER NOT NULL,
    verdict        TEXT    NOT NULL
        CHECK (verdict IN ('confirmed', 'corrected', 'not_in_catalog', 'unusable')),
    product_id     TEXT,
    comment        TEXT,
    given_by       TEXT    NOT NULL,
    agent_name     TEXT,
    agent_email    TEXT,
    source         TEXT    NOT NULL DEFAULT '',
    image_sha256   TEXT,
    predicted_rank INTEGER,
    top_score      REAL,
    category       TEXT    NOT NULL DEFAULT '',
    created_at     REAL    NOT NULL,
    ended_at       REAL,
    ended_by       TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS labels_current ON labels (job_id) WHERE ended_at IS NULL;
CREATE INDEX IF NOT EXISTS labels_created ON labels (created_at);
CREATE INDEX IF NOT EXISTS labels_product ON labels (product_id) WHERE ended_at IS NULL;
CREATE INDEX IF NOT EXISTS labels_sha ON labels (image_sha256) WHERE ended_at IS NULL;

-- name: current_label
SELECT * FROM labels WHERE job_id = :job_id AND ended_at IS NULL;

-- name: end_label
UPDATE labels SET ended_at = :now, ended_by = :by WHERE job_id = :job_id AND ended_at IS NULL
RETURNING *;

-- name: insert_label
INSERT INTO labels (job_id, verdict, product_id, comment, given_by, agent_name, agent_email,
                    source, image_sha256, predicted_rank, top_score, category, created_at)
VALUES (:job_id, :verdict, :product_id, :comment, :given_by, :agent_name, :agent_email,
        :source, :image_sha256, :predicted_rank, :top_score, :category, :now)
RETURNING *;

-- name: list_labels
SELECT * FROM labels
WHERE (:since IS NULL OR created_at >= :since)
  AND (:verdict IS NULL OR verdict = :verdict)
  AND (:job_id IS NULL OR job_id = :job_id)
  AND (:product_id IS NULL OR product_id = :product_id)
  AND (:image_sha256 IS NULL OR image_sha256 = :image_sha256)
  AND (NOT :current_only OR ended_at IS NULL)
  AND (:after_id IS NULL OR id > :after_id)
ORDER BY id
LIMIT :limit;
