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
-- Newest first, below before_id; a null filter matches every row.
select * from image_jobs
where (%(status)s::text is null or status = %(status)s)
  and (%(source)s::text is null or source = %(source)s)
  and (%(before_id)s::bigint is null or id < %(before_id)s)
order by id desc
limit %(limit)s;

-- name: prediction_by_job
select * from image_prediction_log where job_id = %(job_id)s;

-- name: list_predictions
-- Newest first, below before_id; a null ticket_id matches every row.
select * from image_prediction_log
where (%(ticket_id)s::text is null or ticket_id = %(ticket_id)s)
  and (%(before_id)s::bigint is null or id < %(before_id)s)
order by id desc
limit %(limit)s;

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
