-- Observability (issue 29).
-- 1. Each job keeps the request that caused it (X-Request-ID, or an id the service generated):
--    image_jobs.request_id, written by imagematch_submit (a new optional argument) and
--    imagematch_submit_many (an optional "request_id" in each item). Logs join up by it.
-- 2. Counters of how job attempts ended, by kind, source, outcome and error kind, kept by a
--    trigger on image_job_attempts. /metrics reads them as Prometheus counters: they only grow,
--    also when finished jobs are archived (which deletes their attempt rows), so rate() is right.
-- 3. imagematch_job_figures(p_now): those counters and when the oldest pending job became
--    pending, in one call (the Supabase backend cannot aggregate through PostgREST reads).

alter table image_jobs add column if not exists request_id text;
alter table image_jobs_archive add column if not exists request_id text;

drop function if exists imagematch_submit(text, text, text, jsonb, jsonb, timestamptz);
create or replace function imagematch_submit(
    p_kind text, p_source text, p_key text, p_payload jsonb, p_metadata jsonb, p_now timestamptz,
    p_request_id text default null
) returns jsonb language plpgsql as $$
declare
    v_job image_jobs;
begin
    insert into image_jobs (kind, source, idempotency_key, payload, metadata, next_attempt_at,
                            created_at, updated_at, request_id)
    values (p_kind, p_source, p_key, p_payload, p_metadata, p_now, p_now, p_now, p_request_id)
    on conflict (kind, idempotency_key) do nothing
    returning * into v_job;
    if found then
        return jsonb_build_object('created', true, 'job', to_jsonb(v_job));
    end if;
    select * into v_job from image_jobs where kind = p_kind and idempotency_key = p_key;
    return jsonb_build_object('created', false, 'job', to_jsonb(v_job));
end $$;

create or replace function imagematch_submit_many(p_items jsonb) returns jsonb language plpgsql as $$
declare
    v_created bigint[];
begin
    with items as (
        select i.ord, i.e ->> 'kind' as kind, i.e ->> 'key' as key, i.e
        from jsonb_array_elements(p_items) with ordinality as i (e, ord)
    ), firsts as (
        select distinct on (kind, key) * from items order by kind, key, ord
    ), inserted as (
        insert into image_jobs (kind, source, idempotency_key, payload, metadata, next_attempt_at,
                                created_at, updated_at, request_id)
        select kind, e ->> 'source', key, nullif(e -> 'payload', 'null'),
               nullif(e -> 'metadata', 'null'), (e ->> 'now')::timestamptz,
               (e ->> 'now')::timestamptz, (e ->> 'now')::timestamptz, e ->> 'request_id'
        from firsts
        order by kind, key
        on conflict (kind, idempotency_key) do nothing
        returning id
    )
    select coalesce(array_agg(id), '{}') into v_created from inserted;
    -- A new statement, so a new snapshot: it sees the rows inserted above and any row of the same
    -- key that a concurrent transaction committed while the insert waited on it (as the second
    -- statement of imagematch_submit does).
    return (
        select coalesce(jsonb_agg(
            jsonb_build_object(
                'created', coalesce(j.id = any (v_created) and it.ord = it.first, false),
                'job', to_jsonb(j))
            order by it.ord), '[]')
        from (
            select ord, kind, key, min(ord) over (partition by kind, key) as first
            from (
                select i.ord, i.e ->> 'kind' as kind, i.e ->> 'key' as key
                from jsonb_array_elements(p_items) with ordinality as i (e, ord)
            ) parsed
        ) it
        left join image_jobs j on j.kind = it.kind and j.idempotency_key = it.key
    );
end $$;

-- error_kind is '' (not null) for outcomes without one, so the primary key covers every row.
create table if not exists image_job_outcomes (
    kind       text   not null,
    source     text   not null,
    outcome    text   not null,
    error_kind text   not null default '',
    n          bigint not null default 0,
    primary key (kind, source, outcome, error_kind)
);
alter table image_job_outcomes enable row level security;

insert into image_job_outcomes (kind, source, outcome, error_kind, n)
select j.kind, j.source, a.outcome, coalesce(a.error_kind, ''), count(*)
from image_job_attempts a join image_jobs j on j.id = a.job_id
group by 1, 2, 3, 4
on conflict do nothing;

-- One row per (kind, source, outcome, error kind): a finishing job updates one small row in its
-- own transaction (held until it commits, milliseconds; workers number in the tens).
create or replace function imagematch_count_outcome() returns trigger language plpgsql as $$
begin
    insert into image_job_outcomes as o (kind, source, outcome, error_kind, n)
    select j.kind, j.source, new.outcome, coalesce(new.error_kind, ''), 1
    from image_jobs j where j.id = new.job_id
    on conflict (kind, source, outcome, error_kind) do update set n = o.n + 1;
    return null;
end $$;

drop trigger if exists image_job_attempts_counted on image_job_attempts;
create trigger image_job_attempts_counted
after insert on image_job_attempts
for each row execute function imagematch_count_outcome();

create or replace function imagematch_job_figures(p_now timestamptz) returns jsonb
language sql stable as $$
    select jsonb_build_object(
        'outcomes', coalesce((
            select jsonb_agg(jsonb_build_object('kind', kind, 'source', source, 'outcome', outcome,
                                                'error_kind', nullif(error_kind, ''), 'count', n))
            from image_job_outcomes), '[]'),
        'oldest_pending_since', (select min(updated_at) from image_jobs where status = 'pending'));
$$;

-- As the hardening migration does: a fixed search_path, and only the owner and the service role
-- may execute these functions.
do $$
declare
    v_fn text;
    v_role text;
begin
    foreach v_fn in array array[
        'imagematch_submit(text, text, text, jsonb, jsonb, timestamptz, text)',
        'imagematch_submit_many(jsonb)',
        'imagematch_count_outcome()',
        'imagematch_job_figures(timestamptz)'
    ] loop
        execute format('alter function %s set search_path = %I, pg_temp', v_fn, current_schema());
        execute format('revoke execute on function %s from public', v_fn);
        foreach v_role in array array['anon', 'authenticated'] loop
            if exists (select 1 from pg_roles where rolname = v_role) then
                execute format('revoke execute on function %s from %I', v_fn, v_role);
            end if;
        end loop;
        if exists (select 1 from pg_roles where rolname = 'service_role') then
            execute format('grant execute on function %s to service_role', v_fn);
        end if;
    end loop;
end $$;

-- 4. Process metrics summarized into the ledger (README "Metrics on Modal"): each container
--    upserts its own prometheus-client samples (JSON object: sample key -> value) every few
--    seconds; /metrics serves their sum. Rows of containers gone for a day are folded into the
--    'retired' row, so sums never go down and the table stays small.
create table if not exists imagematch_process_metrics (
    process_id text        primary key,
    samples    jsonb       not null,
    updated_at timestamptz not null
);
alter table imagematch_process_metrics enable row level security;

create or replace function imagematch_put_process_metrics(p_process text, p_samples jsonb, p_now timestamptz)
returns void language sql as $$
    insert into imagematch_process_metrics (process_id, samples, updated_at)
    values (p_process, p_samples, p_now)
    on conflict (process_id) do update set samples = excluded.samples, updated_at = excluded.updated_at;
$$;

create or replace function imagematch_process_metrics_total(p_now timestamptz) returns jsonb
language sql stable as $$
    select coalesce(jsonb_object_agg(key, total), '{}')
    from (
        select s.key, sum(s.value::float8) as total
        from imagematch_process_metrics m, jsonb_each_text(m.samples) s
        group by s.key
    ) t;
$$;

create or replace function imagematch_retire_process_metrics(p_before timestamptz, p_now timestamptz)
returns integer language plpgsql as $$
declare
    v_moved integer;
begin
    perform pg_advisory_xact_lock(7411205);  -- one fold at a time: each reads the 'retired' row
    with old as (
        delete from imagematch_process_metrics
        where updated_at < p_before and process_id <> 'retired'
        returning samples
    ), everything as (
        select samples from old
        union all
        select samples from imagematch_process_metrics where process_id = 'retired'
    ), folded as (
        select s.key, sum(s.value::float8) as total
        from everything e, jsonb_each_text(e.samples) s
        group by s.key
    ), written as (
        insert into imagematch_process_metrics (process_id, samples, updated_at)
        select 'retired', coalesce(jsonb_object_agg(key, total), '{}'), p_now from folded
        where (select count(*) from old) > 0
        on conflict (process_id) do update set samples = excluded.samples, updated_at = excluded.updated_at
    )
    select count(*)::integer into v_moved from old;
    return v_moved;
end $$;

do $$
declare
    v_fn text;
    v_role text;
begin
    foreach v_fn in array array[
        'imagematch_put_process_metrics(text, jsonb, timestamptz)',
        'imagematch_process_metrics_total(timestamptz)',
        'imagematch_retire_process_metrics(timestamptz, timestamptz)'
    ] loop
        execute format('alter function %s set search_path = %I, pg_temp', v_fn, current_schema());
        execute format('revoke execute on function %s from public', v_fn);
        foreach v_role in array array['anon', 'authenticated'] loop
            if exists (select 1 from pg_roles where rolname = v_role) then
                execute format('revoke execute on function %s from %I', v_fn, v_role);
            end if;
        end loop;
        if exists (select 1 from pg_roles where rolname = 'service_role') then
            execute format('grant execute on function %s to service_role', v_fn);
        end if;
    end loop;
end $$;
