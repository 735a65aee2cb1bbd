-- Hardening (issue 14):
-- 1. Idempotency keys are unique per job kind, not globally: an API caller could otherwise take
--    the key a future catalog event or Zendesk note will use, and that job would be dropped as a
--    "duplicate". imagematch_submit is redefined to conflict on (kind, idempotency_key).
-- 2. Every imagematch_* function runs with a fixed search_path (no shadowing through a schema
--    earlier on the caller's path) and is executable only by its owner and the service role:
--    EXECUTE is revoked from public, anon and authenticated.
-- 3. The migrations bookkeeping table gets row level security like every other table.

alter table image_jobs drop constraint if exists image_jobs_idempotency_key_key;
create unique index if not exists image_jobs_kind_key on image_jobs (kind, idempotency_key);

create or replace function imagematch_submit(
    p_kind text, p_source text, p_key text, p_payload jsonb, p_metadata jsonb, p_now timestamptz
) returns jsonb language plpgsql as $$
declare
    v_job image_jobs;
begin
    insert into image_jobs (kind, source, idempotency_key, payload, metadata, next_attempt_at,
                            created_at, updated_at)
    values (p_kind, p_source, p_key, p_payload, p_metadata, p_now, p_now, p_now)
    on conflict (kind, idempotency_key) do nothing
    returning * into v_job;
    if found then
        return jsonb_build_object('created', true, 'job', to_jsonb(v_job));
    end if;
    select * into v_job from image_jobs where kind = p_kind and idempotency_key = p_key;
    return jsonb_build_object('created', false, 'job', to_jsonb(v_job));
end $$;

do $$
declare
    v_fn regprocedure;
    v_role text;
begin
    for v_fn in
        select p.oid::regprocedure from pg_proc p
        where p.pronamespace = current_schema()::regnamespace and p.proname like 'imagematch\_%'
    loop
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

alter table if exists imagematch_migrations enable row level security;
