-- Attempt history: one row each time a job leaves 'processing' (completed, failed, skipped, or its
-- lease expired and the sweep took it back), written by a trigger so that every state-changing
-- function keeps it without knowing about it. Read by the console's job page.

create table if not exists image_job_attempts (
    id              bigint generated always as identity primary key,
    job_id          bigint      not null references image_jobs (id) on delete cascade,
    attempt         integer     not null,
    worker_id       text,
    outcome         text        not null,
    error_kind      text,
    error           text,
    next_attempt_at timestamptz,
    finished_at     timestamptz not null
);
create index if not exists image_job_attempts_job on image_job_attempts (job_id, id);
alter table image_job_attempts enable row level security;

create or replace function imagematch_record_attempt() returns trigger language plpgsql as $$
begin
    insert into image_job_attempts (job_id, attempt, worker_id, outcome, error_kind, error,
                                    next_attempt_at, finished_at)
    values (new.id, old.attempts, old.worker_id, new.status, new.error_kind, new.last_error,
            new.next_attempt_at, new.updated_at);
    return null;
end $$;

drop trigger if exists image_jobs_attempt_ended on image_jobs;
create trigger image_jobs_attempt_ended
after update of status on image_jobs
for each row when (old.status = 'processing' and new.status <> 'processing')
execute function imagematch_record_attempt();
