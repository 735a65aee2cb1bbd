-- A batch of submits in one statement (issue 15): the Postgres backend group-commits a burst of
-- webhook submits, and calling imagematch_submit once per job cost one round trip each.
--
-- imagematch_submit_many(p_items) takes a JSON array of {kind, source, key, payload, metadata, now}
-- and returns a JSON array, in the same order, of what imagematch_submit(kind, source, key, payload,
-- metadata, now) would have returned for each item called one after the other: {"created": bool,
-- "job": row}. Within the batch the first item of a (kind, key) creates the job (unless it exists)
-- and later ones get created = false and that job. The batch either succeeds as a whole or raises
-- (a null kind or key, say): the caller then submits its items one by one.
--
-- Rows are inserted in (kind, key) order, not the array's: two batches that share keys then take
-- their row locks in the same order and cannot deadlock each other.
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
                                created_at, updated_at)
        select kind, e ->> 'source', key, nullif(e -> 'payload', 'null'),
               nullif(e -> 'metadata', 'null'), (e ->> 'now')::timestamptz,
               (e ->> 'now')::timestamptz, (e ->> 'now')::timestamptz
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

-- As the hardening migration does for the functions before it: a fixed search_path, and only the
-- owner and the service role may execute it.
do $$
declare
    v_role text;
begin
    execute format('alter function imagematch_submit_many(jsonb) set search_path = %I, pg_temp',
                   current_schema());
    revoke execute on function imagematch_submit_many(jsonb) from public;
    foreach v_role in array array['anon', 'authenticated'] loop
        if exists (select 1 from pg_roles where rolname = v_role) then
            execute format('revoke execute on function imagematch_submit_many(jsonb) from %I', v_role);
        end if;
    end loop;
    if exists (select 1 from pg_roles where rolname = 'service_role') then
        grant execute on function imagematch_submit_many(jsonb) to service_role;
    end if;
end $$;
