-- Catalog tables (Postgres): the products table and the images table are configurable, so
-- {products} and {images} are filled in with psycopg.sql.Identifier (quoted, never raw text).

-- name: live_products
select p.id, p.name, p.category, p.description, p.metadata,
       array(select i.url from {images} i where i.product_id = p.id order by i.position) as images
from {products} p
where p.deleted_at is null
order by p.id;
