-- Calibrated confidence on each prediction (issue 24): the probability that the top-1 is right
-- (imagematch.calibration) and the band an agent reads (confident / check / no_match). Null on
-- predictions made before this migration; readers show nothing for them.

alter table image_prediction_log add column if not exists confidence double precision;
alter table image_prediction_log add column if not exists band text;

-- imagematch_finish of 20261201100000_entity_matches, now also storing confidence and band.
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
            embedder_id, index_version, latency_ms, quality, image_sha256, confidence, band,
            created_at)
        values (p_id, p_prediction ->> 'source', p_prediction ->> 'ticket_id',
            p_prediction ->> 'comment_id', p_prediction ->> 'attachment_id',
            p_prediction ->> 'file_name', p_prediction ->> 'image_url', p_prediction -> 'matches',
            p_prediction ->> 'best_product_id', (p_prediction ->> 'best_score')::double precision,
            coalesce((p_prediction ->> 'no_confident_match')::boolean, false),
            p_prediction ->> 'embedder_id', p_prediction ->> 'index_version',
            (p_prediction ->> 'latency_ms')::double precision,
            nullif(p_prediction -> 'quality', 'null'::jsonb), p_prediction ->> 'image_sha256',
            (p_prediction ->> 'confidence')::double precision, p_prediction ->> 'band', p_now)
        on conflict (job_id) do update set
            matches = excluded.matches, best_product_id = excluded.best_product_id,
            best_score = excluded.best_score, no_confident_match = excluded.no_confident_match,
            embedder_id = excluded.embedder_id, index_version = excluded.index_version,
            latency_ms = excluded.latency_ms, quality = excluded.quality,
            image_sha256 = excluded.image_sha256, confidence = excluded.confidence,
            band = excluded.band, created_at = excluded.created_at;
    end if;
    return true;
end $$;

-- create or replace drops the search_path the hardening migration set: set it again (and, as
-- there, only the owner and the service role may execute it).
do $$
declare
    v_fn regprocedure;
    v_role text;
begin
    for v_fn in
        select p.oid::regprocedure from pg_proc p
        where p.pronamespace = current_schema()::regnamespace and p.proname = 'imagematch_finish'
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
