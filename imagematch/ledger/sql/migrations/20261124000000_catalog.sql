-- Catalog sync: a products table the index can be built from (`--catalog postgresql://…` or
-- `supabase:`), and job counts per kind (`GET /v1/stats` reports pending catalog events).
--
-- The tables are prefixed `catalog_` on purpose: a shop's Supabase project often has its own
-- `products` table, and this migration must neither skip creating ours nor enable RLS on theirs.
-- To build from a table or view of your own instead, set IMAGEMATCH_CATALOG_TABLE and
-- IMAGEMATCH_CATALOG_IMAGES_TABLE to names that yield these same columns.
--
-- Row level security is enabled with no policies, like the ledger: only the service role and
-- direct database connections read or write.

create table if not exists catalog_products (
    id          text        primary key check (id <> ''),
    name        text        not null default '',
    category    text        not null default '',
    description text        not null default '',
    metadata    jsonb       not null default '{}',
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    deleted_at  timestamptz  -- soft delete: set it and the product leaves the next index build
);
create index if not exists catalog_products_updated on catalog_products (updated_at);

create table if not exists catalog_product_images (
    product_id text    not null references catalog_products (id) on delete cascade,
    position   integer not null default 0,  -- order of the product's images (first = main image)
    url        text    not null,            -- http(s):// (or file:// for local trials)
    primary key (product_id, position)
);

create or replace function imagematch_touch_updated_at() returns trigger language plpgsql as $$
begin
    new.updated_at := now();
    return new;
end $$;

drop trigger if exists catalog_products_touch on catalog_products;
create trigger catalog_products_touch before update on catalog_products
    for each row execute function imagematch_touch_updated_at();

alter table catalog_products enable row level security;
alter table catalog_product_images enable row level security;

-- Job counts by status, optionally of one kind. Dropped first: a second signature beside the
-- old one would make calls without arguments ambiguous.
drop function if exists imagematch_count_by_status();
create or replace function imagematch_count_by_status(p_kind text default null)
returns table (status text, n bigint) language sql stable as $$
    select status, count(*) from image_jobs where p_kind is null or kind = p_kind group by status;
$$;
