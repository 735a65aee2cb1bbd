-- imagematch ledger for Postgres / Supabase: jobs, the prediction log, and every state transition
-- as a SQL function. The psycopg backend and the Supabase backend (PostgREST RPC) call the same
-- functions, so both behave identically. Every function takes p_now so tests can inject a clock.
--
-- Row level security is enabled with no policies: only the service role (which bypasses RLS) and
-- direct database connections can read or write. Never expose these tables to the anon key.

create table if not exists image_jobs (
    id              bigint generated always as identity primary key,
    kind            text        not null,
    source          text        not null,
    idempotency_key text        not null unique,
    status          text        not null default 'pending'
        check (status in ('pending', 'processing', 'complete', 'failed', 'skipped')),
    payload         jsonb       not null default '{}',
    metadata        jsonb       not null default '{}',
    attempts        integer     not null default 0,
    error_kind      text        check (error_kind in ('transient', 'permanent')),
    last_error      text,
    next_attempt_at timestamptz,
    locked_until    timestamptz,
    worker_id       text,
    created_at      timestamptz not null,
    updated_at      timestamptz not null,
    finished_at     timestamptz
);
create index if not exists image_jobs_due on image_jobs (status, next_attempt_at);
create index if not exists image_jobs_source on image_jobs (source, id);

create table if not exists image_prediction_log (
    id                 bigint generated always as identity primary key,
    job_id             bigint      not null unique references image_jobs (id) on delete cascade,
    source             text        not null,
    ticket_id          text,
    comment_id         text,
    attachment_id      text,
    file_name          text,
    image_url          text,
    matches            jsonb       not null,
    best_product_id    text,
    best_score         double precision,
    no_confident_match boolean     not null default false,
    embedder_id        text        not null,
    index_version      text        not null,
    latency_ms         double precision not null,
    created_at         timestamptz not null
);
create index if not exists image_prediction_log_ticket on image_prediction_log (ticket_id, id);

alter table image_jobs enable row level security;
alter table image_prediction_log enable row level security;

-- Insert a job unless its idempotency key exists; returns {"created": bool, "job": row}.
create or replace function imagematch_submit(
    p_kind text, p_source text, p_key text, p_payload jsonb, p_metadata jsonb, p_now timestamptz
) returns jsonb language plpgsql as $$
declare
    v_job image_jobs;
begin
    insert into image_jobs (kind, source, idempotency_key, payload, metadata, next_attempt_at,
                            created_at, updated_at)
    values (p_kind, p_source, p_key, p_payload, p_metadata, p_now, p_now, p_now)
    on conflict (idempotency_key) do nothing
    returning * into v_job;
    if found then
        return jsonb_build_object('created', true, 'job', to_jsonb(v_job));
    end if;
    select * into v_job from image_jobs where idempotency_key = p_key;
    return jsonb_build_object('created', false, 'job', to_jsonb(v_job));
end $$;

-- Claim up to p_limit due pending jobs; SKIP LOCKED makes concurrent claimers take disjoint sets.
create or replace function imagematch_claim(
    p_worker text, p_limit integer, p_lease_seconds double precision, p_now timestamptz
) returns setof image_jobs language sql as $$
    update image_jobs
    set status = 'processing', attempts = attempts + 1, worker_id = p_worker,
        locked_until = p_now + make_interval(secs => p_lease_seconds), updated_at = p_now
    where id in (
        select id from image_jobs
        where status = 'pending' and next_attempt_at <= p_now
        order by next_attempt_at, id
        limit p_limit
        for update skip locked
    )
    returning *;
$$;

-- Claim one dispatched job if it is still pending and due.
create or replace function imagematch_claim_job(
    p_id bigint, p_worker text, p_lease_seconds double precision, p_now timestamptz
) returns setof image_jobs language sql as $$
    update image_jobs
    set status = 'processing', attempts = attempts + 1, worker_id = p_worker,
        locked_until = p_now + make_interval(secs => p_lease_seconds), updated_at = p_now
    where id = (
        select id from image_jobs
        where id = p_id and status = 'pending' and next_attempt_at <= p_now
        for update skip locked
    )
    returning *;
$$;

create or replace function imagematch_heartbeat(
    p_id bigint, p_worker text, p_lease_seconds double precision, p_now timestamptz
) returns boolean language sql as $$
    with renewed as (
        update image_jobs
        set locked_until = p_now + make_interval(secs => p_lease_seconds), updated_at = p_now
        where id = p_id and status = 'processing' and worker_id = p_worker
        returning 1
    )
    select exists (select 1 from renewed);
$$;

-- End a processing job held by p_worker; with a prediction (complete) it is logged in the same
-- transaction: one row per job (a deliberately reprocessed job's new answer replaces the old).
create or replace function imagematch_finish(
    p_id bigint, p_worker text, p_status text, p_error_kind text, p_error text,
    p_retry_at timestamptz, p_prediction jsonb, p_now timestamptz
) returns boolean language plpgsql as $$
begin
    update image_jobs
    set status = p_status, error_kind = p_error_kind, last_error = p_error,
        next_attempt_at = p_retry_at, locked_until = null, updated_at = p_now,
        finished_at = case when p_retry_at is null then p_now end
    where id = p_id and status = 'processing' and worker_id = p_worker;
    if not found then
        return false;
    end if;
    if p_prediction is not null then
        insert into image_prediction_log (job_id, source, ticket_id, comment_id, attachment_id,
            file_name, image_url, matches, best_product_id, best_score, no_confident_match,
            embedder_id, index_version, latency_ms, created_at)
        values (p_id, p_prediction ->> 'source', p_prediction ->> 'ticket_id',
            p_prediction ->> 'comment_id', p_prediction ->> 'attachment_id',
            p_prediction ->> 'file_name', p_prediction ->> 'image_url', p_prediction -> 'matches',
            p_prediction ->> 'best_product_id', (p_prediction ->> 'best_score')::double precision,
            coalesce((p_prediction ->> 'no_confident_match')::boolean, false),
            p_prediction ->> 'embedder_id', p_prediction ->> 'index_version',
            (p_prediction ->> 'latency_ms')::double precision, p_now)
        on conflict (job_id) do update set
            matches = excluded.matches, best_product_id = excluded.best_product_id,
            best_score = excluded.best_score, no_confident_match = excluded.no_confident_match,
            embedder_id = excluded.embedder_id, index_version = excluded.index_version,
            latency_ms = excluded.latency_ms, created_at = excluded.created_at;
    end if;
    return true;
end $$;

-- Manual retry of one job (failed, skipped or complete); returns the job as it now stands.
create or replace function imagematch_requeue(p_id bigint, p_now timestamptz)
returns setof image_jobs language plpgsql as $$
begin
    update image_jobs
    set status = 'pending', attempts = 0, next_attempt_at = p_now, locked_until = null,
        worker_id = null, finished_at = null, updated_at = p_now
    where id = p_id and status in ('failed', 'skipped', 'complete');
    return query select * from image_jobs where id = p_id;
end $$;

create or replace function imagematch_requeue_failed(p_source text, p_now timestamptz)
returns integer language sql as $$
    with requeued as (
        update image_jobs
        set status = 'pending', attempts = 0, next_attempt_at = p_now, locked_until = null,
            worker_id = null, finished_at = null, updated_at = p_now
        where status = 'failed' and (p_source is null or source = p_source)
        returning 1
    )
    select count(*)::integer from requeued;
$$;

-- Re-queue due retries and expired leases (failing those out of attempts); list pending jobs
-- waiting longer than the grace period. Safe to run concurrently (row locks, idempotent updates).
create or replace function imagematch_sweep(
    p_max_attempts integer, p_grace_seconds double precision, p_now timestamptz
) returns jsonb language plpgsql as $$
declare
    v_retries integer;
    v_gave_up integer;
    v_expired integer;
    v_pending jsonb;
begin
    update image_jobs set status = 'pending', worker_id = null, updated_at = p_now
    where status = 'failed' and next_attempt_at is not null and next_attempt_at <= p_now;
    get diagnostics v_retries = row_count;

    update image_jobs
    set status = 'failed', error_kind = 'transient', next_attempt_at = null, locked_until = null,
        last_error = 'lease expired: worker ' || coalesce(worker_id, '?') || ' stopped responding',
        finished_at = p_now, updated_at = p_now
    where status = 'processing' and locked_until < p_now and attempts >= p_max_attempts;
    get diagnostics v_gave_up = row_count;

    update image_jobs
    set status = 'pending', next_attempt_at = p_now, locked_until = null,
        last_error = 'lease expired: worker ' || coalesce(worker_id, '?') || ' stopped responding',
        worker_id = null, updated_at = p_now
    where status = 'processing' and locked_until < p_now;
    get diagnostics v_expired = row_count;

    select coalesce(jsonb_agg(id order by id), '[]'::jsonb) into v_pending from image_jobs
    where status = 'pending' and next_attempt_at <= p_now
      and updated_at <= p_now - make_interval(secs => p_grace_seconds);

    return jsonb_build_object('retries_due', v_retries, 'leases_expired', v_expired,
                              'gave_up', v_gave_up, 'due_pending', v_pending);
end $$;

create or replace function imagematch_count_by_status()
returns table (status text, n bigint) language sql stable as $$
    select status, count(*) from image_jobs group by status;
$$;
