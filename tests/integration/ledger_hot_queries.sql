-- The ledger's hot statements as the Postgres functions and reads run them, for EXPLAIN (tests)
-- and timing (bench/ledger_scale.py), plus a bulk fill of realistic jobs. "-- name: <name>" heads
-- each block; :now is the reference time.

-- name: fill_jobs
-- :n jobs, mostly complete (a year of traffic), a few of every other status; mixed kinds/sources.
insert into image_jobs (kind, source, idempotency_key, status, payload, attempts, error_kind,
                        last_error, next_attempt_at, locked_until, worker_id, created_at,
                        updated_at, finished_at)
select kind, source, 'fill:' || g, status, '{"image": "blob:x"}'::jsonb,
       case when status = 'pending' then 0 else 1 end,
       case when status = 'failed' then 'transient' end,
       case when status = 'failed' then 'HTTP 503' end,
       case when status = 'pending' then at when status = 'failed' then at + interval '1 hour' end,
       case when status = 'processing' then at + interval '2 minutes' end,
       case when status = 'processing' then 'w1' end,
       at, at, case when status in ('complete', 'skipped') then at end
from (
    select g,
           (%(now)s::timestamptz) - make_interval(secs => (%(n)s - g) * 31536000.0 / %(n)s) as at,
           (array['match_image', 'zendesk_image', 'zendesk_ticket', 'zendesk_note', 'catalog_event'])[1 + g %% 5] as kind,
           (array['api', 'zendesk', 'catalog'])[1 + g %% 3] as source,
           case when g %% 1000 < 970 then 'complete' when g %% 1000 < 980 then 'failed'
                when g %% 1000 < 990 then 'pending' when g %% 1000 < 995 then 'processing'
                else 'skipped' end as status
    from generate_series(1, %(n)s) as g
) as rows;

-- name: claim
select id from image_jobs where status = 'pending' and next_attempt_at <= %(now)s
order by next_attempt_at, id limit 8 for update skip locked;

-- name: sweep_retries_due
select id from image_jobs
where status = 'failed' and next_attempt_at is not null and next_attempt_at <= %(now)s;

-- name: sweep_expired_leases
select id from image_jobs where status = 'processing' and locked_until < %(now)s;

-- name: list_failed
select * from image_jobs where status = 'failed' order by id desc limit 50;

-- name: list_by_source
select * from image_jobs where source = 'zendesk' order by id desc limit 50;

-- name: list_newest
select * from image_jobs order by id desc limit 50;

-- name: job_by_key
select * from image_jobs where idempotency_key = 'fill:4242';

-- name: count_catalog_jobs
select status, count(*) from image_jobs where kind = 'catalog_event' group by status;

-- name: prediction_by_job
select * from image_prediction_log where job_id = 4242;

-- name: fill_backlog
-- :n pending jobs due now (a burst waiting for workers).
insert into image_jobs (kind, source, idempotency_key, status, payload, next_attempt_at, created_at,
                        updated_at)
select 'match_image', 'api', 'backlog:' || g, 'pending', '{"image": "blob:x"}'::jsonb,
       %(now)s, %(now)s, %(now)s
from generate_series(1, %(n)s) as g;
