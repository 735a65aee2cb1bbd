-- The ledger at a million jobs: every hot query has an index (tests/integration/test_ledger_scale.py
-- checks the plans with EXPLAIN), and finished jobs can be archived without losing predictions.

-- The console's and API's job lists: newest first, by status or by kind.
create index if not exists image_jobs_status_id on image_jobs (status, id);
create index if not exists image_jobs_kind_status on image_jobs (kind, status);
-- The sweep's expired leases: only processing rows, a small set however large the table.
create index if not exists image_jobs_processing_lease on image_jobs (locked_until)
    where status = 'processing';
-- The sweep's due retries: only failed rows waiting for a retry.
create index if not exists image_jobs_failed_due on image_jobs (next_attempt_at)
    where status = 'failed' and next_attempt_at is not null;
-- Archiving: finished jobs by age.
create index if not exists image_jobs_finished on image_jobs (finished_at)
    where status in ('complete', 'skipped');

-- Archived jobs keep every column; the prediction log keeps their answers. A prediction's job_id
-- names its job in image_jobs or, once archived, in image_jobs_archive: the foreign key that
-- would delete a prediction with its job goes.
create table if not exists image_jobs_archive (like image_jobs including defaults);
alter table image_jobs_archive add primary key (id);
alter table image_jobs_archive enable row level security;
alter table image_prediction_log drop constraint if exists image_prediction_log_job_id_fkey;

-- Move up to p_limit complete or skipped jobs finished before p_before into the archive; returns
-- how many moved. Safe to run concurrently (SKIP LOCKED) and in batches (call until it returns 0).
create or replace function imagematch_archive_jobs(p_before timestamptz, p_limit integer, p_now timestamptz)
returns integer language sql set search_path = public, pg_temp as $$
    with moved as (
        delete from image_jobs
        where id in (
            select id from image_jobs
            where status in ('complete', 'skipped') and finished_at < p_before
            order by finished_at
            limit p_limit
            for update skip locked
        )
        returning *
    ), archived as (
        insert into image_jobs_archive select * from moved on conflict (id) do nothing returning 1
    )
    select count(*)::integer from archived;
$$;
revoke execute on function imagematch_archive_jobs(timestamptz, integer, timestamptz) from public;
do $$ begin
    if exists (select 1 from pg_roles where rolname = 'service_role') then  -- Supabase's server key
        grant execute on function imagematch_archive_jobs(timestamptz, integer, timestamptz) to service_role;
    end if;
end $$;
