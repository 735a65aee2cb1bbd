-- Entities and their matches table (issue 16): a photo may belong to an entity (a ticket, a
-- listing); the entity's products are aggregated over its photos and re-matched from stored photo
-- vectors when the served index changes. Also: the quality tier's verdict on each prediction.
--
-- Row level security is enabled with no policies, like the ledger's other tables.

alter table image_prediction_log add column if not exists quality jsonb;
alter table image_prediction_log add column if not exists image_sha256 text; -- its stored vector's key

create table if not exists entities (
    entity_type    text        not null,
    entity_id      text        not null,
    photo_count    integer     not null default 0,
    index_version  text,                -- the served index version its matches were computed at
    matched_at     timestamptz,
    top_product_id text,
    floor_score    double precision,    -- lowest score in its matches: a product below it cannot enter
    match_count    integer     not null default 0,
    created_at     timestamptz not null,
    updated_at     timestamptz not null, -- its last photo
    primary key (entity_type, entity_id)
);
create index if not exists entities_updated on entities (updated_at);

create table if not exists entity_photos (
    entity_type  text        not null,
    entity_id    text        not null,
    job_id       bigint      not null, -- in image_jobs, or image_jobs_archive once archived
    image_sha256 text        not null, -- the stored photo vector's key (with embedder_id)
    embedder_id  text        not null,
    phash        text,
    low_quality  boolean     not null default false,
    created_at   timestamptz not null,
    primary key (entity_type, entity_id, job_id),
    foreign key (entity_type, entity_id) references entities (entity_type, entity_id) on delete cascade
);

create table if not exists matches (
    entity_type   text             not null,
    entity_id     text             not null,
    product_id    text             not null,
    name          text             not null default '',
    score         double precision not null, -- best over the entity's photos
    rank          integer          not null,
    photos        integer          not null, -- photos that have the product in their top-k
    evidence      jsonb            not null default '[]', -- [{job_id, score, rank}] per photo
    index_version text             not null,
    computed_at   timestamptz      not null,
    primary key (entity_type, entity_id, product_id),
    foreign key (entity_type, entity_id) references entities (entity_type, entity_id) on delete cascade
);
create index if not exists matches_product on matches (product_id);

alter table entities enable row level security;
alter table entity_photos enable row level security;
alter table matches enable row level security;

-- imagematch_finish of 20261123000000_ledger, now also storing the prediction's quality and digest.
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
            embedder_id, index_version, latency_ms, quality, image_sha256, created_at)
        values (p_id, p_prediction ->> 'source', p_prediction ->> 'ticket_id',
            p_prediction ->> 'comment_id', p_prediction ->> 'attachment_id',
            p_prediction ->> 'file_name', p_prediction ->> 'image_url', p_prediction -> 'matches',
            p_prediction ->> 'best_product_id', (p_prediction ->> 'best_score')::double precision,
            coalesce((p_prediction ->> 'no_confident_match')::boolean, false),
            p_prediction ->> 'embedder_id', p_prediction ->> 'index_version',
            (p_prediction ->> 'latency_ms')::double precision,
            nullif(p_prediction -> 'quality', 'null'::jsonb), p_prediction ->> 'image_sha256', p_now)
        on conflict (job_id) do update set
            matches = excluded.matches, best_product_id = excluded.best_product_id,
            best_score = excluded.best_score, no_confident_match = excluded.no_confident_match,
            embedder_id = excluded.embedder_id, index_version = excluded.index_version,
            latency_ms = excluded.latency_ms, quality = excluded.quality,
            image_sha256 = excluded.image_sha256, created_at = excluded.created_at;
    end if;
    return true;
end $$;

-- Record a photo of an entity (creating the entity); a job re-run replaces its row.
create or replace function imagematch_add_entity_photo(
    p_entity_type text, p_entity_id text, p_job_id bigint, p_image_sha256 text, p_embedder_id text,
    p_phash text, p_low_quality boolean, p_now timestamptz
) returns boolean language plpgsql as $$
begin
    insert into entities (entity_type, entity_id, created_at, updated_at)
    values (p_entity_type, p_entity_id, p_now, p_now)
    on conflict (entity_type, entity_id) do update set updated_at = excluded.updated_at;
    insert into entity_photos (entity_type, entity_id, job_id, image_sha256, embedder_id, phash,
                               low_quality, created_at)
    values (p_entity_type, p_entity_id, p_job_id, p_image_sha256, p_embedder_id, p_phash,
            p_low_quality, p_now)
    on conflict (entity_type, entity_id, job_id) do update set
        image_sha256 = excluded.image_sha256, embedder_id = excluded.embedder_id,
        phash = excluded.phash, low_quality = excluded.low_quality, created_at = excluded.created_at;
    update entities set photo_count = (
        select count(*) from entity_photos p
        where p.entity_type = p_entity_type and p.entity_id = p_entity_id
    )
    where entity_type = p_entity_type and entity_id = p_entity_id;
    return true;
end $$;

-- Replace an entity's matches in one transaction; returns the entity as it stood before (null
-- when unknown: nothing written). The entity row is locked, so concurrent re-matches serialise.
create or replace function imagematch_replace_matches(
    p_entity_type text, p_entity_id text, p_index_version text, p_matches jsonb, p_now timestamptz
) returns jsonb language plpgsql as $$
declare
    v_before entities;
begin
    select * into v_before from entities
    where entity_type = p_entity_type and entity_id = p_entity_id
    for update;
    if not found then
        return null;
    end if;
    delete from matches where entity_type = p_entity_type and entity_id = p_entity_id;
    insert into matches (entity_type, entity_id, product_id, name, score, rank, photos, evidence,
                         index_version, computed_at)
    select p_entity_type, p_entity_id, m.product_id, coalesce(m.name, ''), m.score, m.rank,
           m.photos, coalesce(m.evidence, '[]'::jsonb), p_index_version, p_now
    from jsonb_to_recordset(p_matches) as m(product_id text, name text, score double precision,
                                            rank integer, photos integer, evidence jsonb);
    update entities
    set index_version = p_index_version, matched_at = p_now,
        top_product_id = (select product_id from matches
                          where entity_type = p_entity_type and entity_id = p_entity_id
                          order by rank limit 1),
        floor_score = (select min(score) from matches
                       where entity_type = p_entity_type and entity_id = p_entity_id),
        match_count = jsonb_array_length(p_matches)
    where entity_type = p_entity_type and entity_id = p_entity_id;
    return to_jsonb(v_before);
end $$;

-- Entities in (type, id) order after a key (paging); with p_since, those with a photo since then.
create or replace function imagematch_list_entities(
    p_after_type text, p_after_id text, p_since timestamptz, p_limit integer
) returns setof entities language sql stable as $$
    select * from entities
    where (p_after_type is null or (entity_type, entity_id) > (p_after_type, p_after_id))
      and (p_since is null or updated_at >= p_since)
    order by entity_type, entity_id
    limit p_limit;
$$;

-- A catalog change that cannot alter these entities' matches: restamp them with the new
-- version, except p_keep ([[type, id], …]: being re-matched). Returns how many.
create or replace function imagematch_advance_entities(
    p_from_version text, p_to_version text, p_keep jsonb
) returns integer language sql as $$
    with advanced as (
        update entities set index_version = p_to_version
        where index_version = p_from_version
          and not exists (
            select 1 from jsonb_array_elements(p_keep) k
            where k ->> 0 = entities.entity_type and k ->> 1 = entities.entity_id
          )
        returning 1
    )
    select count(*)::integer from advanced;
$$;

create or replace function imagematch_count_stale_entities(p_index_version text)
returns bigint language sql stable as $$
    select count(*) from entities
    where index_version is null or index_version <> p_index_version;
$$;

-- Like imagematch_archive_jobs: only the service role (and direct connections) may call these.
revoke execute on function imagematch_add_entity_photo(text, text, bigint, text, text, text, boolean, timestamptz) from public;
revoke execute on function imagematch_replace_matches(text, text, text, jsonb, timestamptz) from public;
revoke execute on function imagematch_list_entities(text, text, timestamptz, integer) from public;
revoke execute on function imagematch_advance_entities(text, text, jsonb) from public;
revoke execute on function imagematch_count_stale_entities(text) from public;
do $$ begin
    if exists (select 1 from pg_roles where rolname = 'service_role') then  -- Supabase's server key
        grant execute on function imagematch_add_entity_photo(text, text, bigint, text, text, text, boolean, timestamptz) to service_role;
        grant execute on function imagematch_replace_matches(text, text, text, jsonb, timestamptz) to service_role;
        grant execute on function imagematch_list_entities(text, text, timestamptz, integer) to service_role;
        grant execute on function imagematch_advance_entities(text, text, jsonb) to service_role;
        grant execute on function imagematch_count_stale_entities(text) to service_role;
    end if;
end $$;
