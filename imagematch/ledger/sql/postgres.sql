-- Postgres ledger (psycopg): the plain reads and the migration bookkeeping. Every state change is
-- one of the imagematch_* SQL functions of migrations/, called through call_function, whose
-- {function} and {arguments} are filled in with psycopg.sql.Identifier and Placeholder (quoted
-- names and bound values, never raw text). Each block starts with "-- name: <name>".

-- name: call_function
select * from {function}({arguments});

-- name: job_by_id
select * from image_jobs where id = %(id)s;

-- name: job_by_key
select * from image_jobs where idempotency_key = %(idempotency_key)s;

-- name: list_jobs
-- The lists: newest first, below before_id (the largest bigint for the first page). One statement
-- per filter combination, so each is planned with its own index (no "x is null or" filters).
select * from image_jobs
where id < %(before_id)s
order by id desc limit %(limit)s;

-- name: list_jobs_by_status
select * from image_jobs
where status = %(status)s and id < %(before_id)s
order by id desc limit %(limit)s;

-- name: list_jobs_by_source
select * from image_jobs
where source = %(source)s and id < %(before_id)s
order by id desc limit %(limit)s;

-- name: list_jobs_by_source_and_status
select * from image_jobs
where source = %(source)s and status = %(status)s and id < %(before_id)s
order by id desc limit %(limit)s;

-- name: prediction_by_job
select * from image_prediction_log where job_id = %(job_id)s;

-- name: list_predictions
select * from image_prediction_log
where id < %(before_id)s
order by id desc limit %(limit)s;

-- name: list_predictions_by_ticket
select * from image_prediction_log
where ticket_id = %(ticket_id)s and id < %(before_id)s
order by id desc limit %(limit)s;

-- name: entity_by_ref
select * from entities where entity_type = %(entity_type)s and entity_id = %(entity_id)s;

-- name: entity_photos
select * from entity_photos
where entity_type = %(entity_type)s and entity_id = %(entity_id)s
order by job_id;

-- name: all_entity_photos
-- Every stored photo of every entity: what a new product is scored against (one against many).
select * from entity_photos order by job_id;

-- name: entity_matches
select * from matches where entity_type = %(entity_type)s and entity_id = %(entity_id)s order by rank;

-- name: matches_of_product
select entity_type, entity_id from matches where product_id = %(product_id)s
order by entity_type, entity_id;
-- name: attempts_by_job
select * from image_job_attempts where job_id = %(job_id)s order by id;

-- name: lock_migrations
-- One migrator at a time (a transaction-scoped advisory lock).
select pg_advisory_xact_lock(%(key)s);

-- name: migrations_table
create table if not exists imagematch_migrations (
    name       text primary key,
    applied_at timestamptz not null default now()
);

-- name: applied_migrations
select name from imagematch_migrations;

-- name: record_migration
insert into imagematch_migrations (name) values (%(name)s);
