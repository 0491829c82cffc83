import { DummyDriver, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler, type Compilable } from 'kysely';
import type pg from 'pg';
import type { MlSchema } from './schema.ts';

/**
 * The ml schema's query builder: kysely compiles the store's and queue's queries (typed by
 * src/store/schema.ts, generated from the schema, so a renamed column breaks the build) and
 * they run on our own connections and transactions. Kysely never connects (DummyDriver).
 */
export const ml = new Kysely<MlSchema>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (db) => new PostgresIntrospector(db),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
});

/** Runs a compiled query on a connection (or the pool) and returns its rows. */
export async function run<R>(db: pg.Pool | pg.PoolClient, query: Compilable<R>): Promise<R[]> {
  const c = query.compile();
  return (await db.query(c.sql, c.parameters as unknown[])).rows as R[];
}
