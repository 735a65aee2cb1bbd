-- Embedding cache (SQLite), by (embedding key, image SHA-256): each image's vector (the normalised
-- mean of its catalog views) and, for images in the whitening sample only, all its view vectors.
-- Each block starts with "-- name: <name>"; parameters are named.

-- name: schema
CREATE TABLE IF NOT EXISTS image_vectors (
    embedding_key TEXT    NOT NULL,
    sha256        TEXT    NOT NULL,
    dim           INTEGER NOT NULL,
    vector        BLOB    NOT NULL,
    views         BLOB,
    PRIMARY KEY (embedding_key, sha256)
);

-- name: journal_mode
PRAGMA journal_mode = WAL;

-- name: vectors_of
-- :digests is a JSON array of SHA-256 hex digests.
SELECT sha256, dim, vector, views FROM image_vectors
WHERE embedding_key = :embedding_key AND sha256 IN (SELECT value FROM json_each(:digests));

-- name: put_vectors
INSERT OR REPLACE INTO image_vectors (embedding_key, sha256, dim, vector, views)
VALUES (:embedding_key, :sha256, :dim, :vector, :views);

-- name: size
SELECT count(*), coalesce(sum(length(vector)), 0), coalesce(sum(length(views)), 0)
FROM image_vectors WHERE embedding_key = :embedding_key;
