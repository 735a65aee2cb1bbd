-- Labels (issue 23): what a person said about an answer. One row per label given; a job's current
-- label is its row with ended_at null (at most one: labels_current). A later label ends the
-- current one in the same transaction, so the history is kept.
--
-- Row level security is enabled with no policies, like the ledger's other tables.

create table if not exists labels (
    id             bigserial        primary key,
    job_id         bigint           not null, -- in image_jobs, or image_jobs_archive once archived
    verdict        text             not null
        check (verdict in ('confirmed', 'corrected', 'not_in_catalog', 'unusable')),
    product_id     text,
    comment        text,
    given_by       text             not null,
    agent_name     text,
    agent_email    text,
    source         text             not null default '',
    image_sha256   text,             -- the photo's digest (its stored vector and blob)
    predicted_rank integer,          -- where product_id was in our answer (1 = top-1)
    top_score      double precision, -- our top-1 score for the photo
    category       text             not null default '',
    created_at     timestamptz      not null,
    ended_at       timestamptz,
    ended_by       text
);
create unique index if not exists labels_current on labels (job_id) where ended_at is null;
create index if not exists labels_created on labels (created_at);
create index if not exists labels_product on labels (product_id) where ended_at is null;
create index if not exists labels_sha on labels (image_sha256) where ended_at is null;

alter table labels enable row level security;

-- Make p_label the job's current label: the same verdict, product and comment as the current one
-- returns it ({created: false}); anything else ends the current one and inserts the new one.
create or replace function imagematch_put_label(p_label jsonb, p_now timestamptz)
returns jsonb language plpgsql as $$
declare
    v_job bigint := (p_label ->> 'job_id')::bigint;
    v_current labels;
    v_new labels;
begin
    perform pg_advisory_xact_lock(7411205, hashtext(v_job::text)); -- one label change per job at a time
    select * into v_current from labels where job_id = v_job and ended_at is null;
    if found and v_current.verdict = p_label ->> 'verdict'
       and v_current.product_id is not distinct from p_label ->> 'product_id'
       and nullif(v_current.comment, '') is not distinct from nullif(p_label ->> 'comment', '') then
        return jsonb_build_object('created', false, 'label', to_jsonb(v_current));
    end if;
    update labels set ended_at = p_now, ended_by = p_label ->> 'given_by'
    where job_id = v_job and ended_at is null;
    insert into labels (job_id, verdict, product_id, comment, given_by, agent_name, agent_email,
                        source, image_sha256, predicted_rank, top_score, category, created_at)
    values (v_job, p_label ->> 'verdict', p_label ->> 'product_id', p_label ->> 'comment',
            p_label ->> 'given_by', p_label ->> 'agent_name', p_label ->> 'agent_email',
            coalesce(p_label ->> 'source', ''), p_label ->> 'image_sha256',
            (p_label ->> 'predicted_rank')::integer, (p_label ->> 'top_score')::double precision,
            coalesce(p_label ->> 'category', ''), p_now)
    returning * into v_new;
    return jsonb_build_object('created', true, 'label', to_jsonb(v_new));
end $$;

-- End the job's current label; returns it as ended (null: there was none).
create or replace function imagematch_retract_label(p_job_id bigint, p_by text, p_now timestamptz)
returns jsonb language plpgsql as $$
declare
    v_label labels;
begin
    perform pg_advisory_xact_lock(7411205, hashtext(p_job_id::text));
    update labels set ended_at = p_now, ended_by = p_by
    where job_id = p_job_id and ended_at is null
    returning * into v_label;
    if not found then
        return null;
    end if;
    return to_jsonb(v_label);
end $$;

-- Labels oldest first, filtered (null: no filter), after an id (paging).
create or replace function imagematch_list_labels(
    p_since timestamptz, p_verdict text, p_job_id bigint, p_product_id text, p_image_sha256 text,
    p_current_only boolean, p_after_id bigint, p_limit integer
) returns setof labels language sql stable as $$
    select * from labels
    where (p_since is null or created_at >= p_since)
      and (p_verdict is null or verdict = p_verdict)
      and (p_job_id is null or job_id = p_job_id)
      and (p_product_id is null or product_id = p_product_id)
      and (p_image_sha256 is null or image_sha256 = p_image_sha256)
      and (not p_current_only or ended_at is null)
      and (p_after_id is null or id > p_after_id)
    order by id
    limit p_limit;
$$;

-- As the hardening migration does: a fixed search_path, and only the owner and the service role
-- may execute them.
do $$
declare
    v_fn regprocedure;
    v_role text;
begin
    for v_fn in
        select p.oid::regprocedure from pg_proc p
        where p.pronamespace = current_schema()::regnamespace
          and p.proname in ('imagematch_put_label', 'imagematch_retract_label', 'imagematch_list_labels')
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
