-- Jobs in batches (issue 28): a worker claims the dispatched jobs of a batch, and records the
-- outcomes of a batch, in one round trip each instead of one per job.
--
-- imagematch_claim_jobs(p_ids) claims those of the ids (a JSON array) that are pending and due, as
-- imagematch_claim_job would one by one; the others (done, another worker's, not due, unknown)
-- are left alone. Rows are locked in id order, so two batches sharing ids cannot deadlock.
create or replace function imagematch_claim_jobs(
    p_ids jsonb, p_worker text, p_lease_seconds double precision, p_now timestamptz
) returns setof image_jobs language sql as $$
    update image_jobs
    set status = 'processing', attempts = attempts + 1, worker_id = p_worker,
        locked_until = p_now + make_interval(secs => p_lease_seconds), updated_at = p_now
    where id in (
        select id from image_jobs
        where id in (select (jsonb_array_elements_text(p_ids))::bigint)
          and status = 'pending' and next_attempt_at <= p_now
        order by id
        for update skip locked
    )
    returning *;
$$;

-- imagematch_finish_many(p_worker, p_items) records each item of a JSON array of {id, status,
-- error_kind, error, retry_at, prediction} as imagematch_finish(id, p_worker, status, error_kind,
-- error, retry_at, prediction, p_now) does, each independently of the others; returns
-- {"finished": [the ids it recorded]} (an id the worker no longer holds is left out; an object,
-- not a bare array, so PostgREST answers it as a scalar). Items are taken in id order, so
-- concurrent batches lock rows in the same order.
create or replace function imagematch_finish_many(
    p_worker text, p_items jsonb, p_now timestamptz
) returns jsonb language plpgsql as $$
declare
    v_item jsonb;
    v_done jsonb := '[]'::jsonb;
begin
    for v_item in
        select e from jsonb_array_elements(p_items) as e order by (e ->> 'id')::bigint
    loop
        if imagematch_finish((v_item ->> 'id')::bigint, p_worker, v_item ->> 'status',
                             v_item ->> 'error_kind', v_item ->> 'error',
                             (v_item ->> 'retry_at')::timestamptz,
                             nullif(v_item -> 'prediction', 'null'::jsonb), p_now) then
            v_done := v_done || to_jsonb((v_item ->> 'id')::bigint);
        end if;
    end loop;
    return jsonb_build_object('finished', v_done);
end $$;

-- As the hardening migration does for the functions before it: a fixed search_path, and only the
-- owner and the service role may execute them.
do $$
declare
    v_fn text;
    v_role text;
begin
    foreach v_fn in array array['imagematch_claim_jobs(jsonb, text, double precision, timestamptz)',
                                'imagematch_finish_many(text, jsonb, timestamptz)'] loop
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
