-- Embedding cache (SQLite): an image's catalog-view vectors by (embedding key, image SHA-256).
-- Each block starts with "-- name: <name>"; parameters are named.

-- name: schema
CREATE TABLE IF NOT EXISTS image_views (
    embedding_key TEXT    NOT NULL,
    sha256        TEXT    NOT NULL,
    dim           INTEGER NOT NULL,
    vectors       BLOB    NOT NULL,
    PRIMARY KEY (embedding_key, sha256)
);

-- name: journal_mode
PRAGMA journal_mode = WAL;

-- name: views_of
-- :digests is a JSON array of SHA-256 hex digests.
SELECT sha256, dim, vectors FROM image_views
WHERE embedding_key = :embedding_key AND sha256 IN (SELECT value FROM json_each(:digests));

-- name: put_views
INSERT OR REPLACE INTO image_views (embedding_key, sha256, dim, vectors)
VALUES (:embedding_key, :sha256, :dim, :vectors);
