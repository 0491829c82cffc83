import { pipeline } from 'node:stream/promises';
import { to as copyTo } from 'pg-copy-streams';
import type { Pool } from '../db/connect.ts';
import { quoteIdent } from '../db/connect.ts';
import { UserError, messageOf, sqlState } from '../util/errors.ts';
import { BinaryCopyParser, type FieldKind } from './copy-binary.ts';
import type { Column, Table } from './columns.ts';

export interface LoadRequest {
  query: string;
  role: string; // the role that asked: the query runs with its privileges only
  statementTimeoutMs: number;
  exclude: string[]; // columns kept out of the features (ids)
  boolColumn?: string; // a boolean column loaded separately (k-means custom init)
  maxBytes?: number; // the sidecar's memory budget for one training set
  keep?: string[]; // columns read as text, untouched, to write back next to the labels (output_table)
  /**
   * Columns loaded next to the features but not as features (a supervised model's label, a
   * data split column): `choose` sees the column's type and says how to read it, or throws.
   */
  extras?: ExtraColumn[];
  /** Only the rows where this SQL condition (over the query's row `q`) holds, e.g. a non-NULL label. */
  where?: string;
  /** setseed() before reading, so that a `where` with random() draws the same sample again. */
  randomSeed?: number;
  /** The share of the query's rows that `where` keeps, when known (a random sample). */
  sampleShare?: number;
  /**
   * When every feature is numeric (and nothing else is read), load them as one row-major matrix
   * that transform() standardizes in place (k-means: half the memory, no second matrix).
   */
  rowMajor?: boolean;
  /**
   * Streaming: hand every `rows` rows to `onBatch` instead of keeping them (the result's table is
   * then empty; the memory budget does not apply, nothing accumulates).
   */
  batch?: { rows: number; onBatch: (table: Table) => void };
}

export interface ColumnType {
  name: string;
  type: string; // format_type(), e.g. "numeric(10,2)"
  typcategory: string; // pg_type.typcategory: N numeric, B boolean, S string, D date/time, E enum ...
  typname: string;
}

export interface ExtraColumn {
  name: string;
  key?: string; // the name it is returned under (default: name), to read one column two ways
  option: string; // the option that named it, for error messages
  choose: (col: ColumnType) => { sql: string; kind: 'float8' | 'text' };
}

export interface KeptColumn {
  name: string;
  type: string; // format_type(), e.g. "character varying(20)"
  values: (string | null)[];
}

export interface LoadedData {
  table: Table;
  /** Per row: the boolean column's value (1 true, 0 false/NULL), when requested. */
  flags?: Uint8Array;
  kept: KeptColumn[];
  /** The extra columns, by name, with their SQL types. */
  extras: Map<string, { column: Column; type: ColumnType }>;
  seconds: number;
}

interface Described extends ColumnType {
  typeOid: number;
}

/** Trailing semicolons would break the subquery we wrap the user's query in. */
export function stripQuery(query: string): string {
  return query.replace(/[\s;]+$/, '');
}

/**
 * Reads a training query's rows by binary COPY into typed columns. Runs inside a READ ONLY
 * transaction, under SET ROLE of the requester, with a statement timeout: the sidecar never
 * reads what the requester may not, and a data-modifying query cannot change anything.
 */
export async function loadTrainingData(pool: Pool, req: LoadRequest): Promise<LoadedData> {
  const started = performance.now();
  const q = stripQuery(req.query);
  const client = await pool.connect();
  let parser: BinaryCopyParser | null = null;
  try {
    const estimatedRows = await beginAsRequester(client, req, q);
    if (req.randomSeed !== undefined) await client.query('SELECT setseed($1)', [req.randomSeed]);
    const described = await describe(client, q);
    const names = described.map((d) => d.name);
    for (const e of req.exclude) {
      if (!names.includes(e)) {
        throw new UserError(`column "${e}" listed in "exclude" is not in the training query (its columns: ${names.join(', ')})`);
      }
    }
    if (req.boolColumn !== undefined) {
      const col = described.find((d) => d.name === req.boolColumn);
      if (!col) throw new UserError(`column "${req.boolColumn}" named by "kmeans_init_col" is not in the training query`);
      if (col.typname !== 'bool') {
        throw new UserError(`column "${req.boolColumn}" named by "kmeans_init_col" must be boolean (it is ${col.typname})`);
      }
    }
    const extras = (req.extras ?? []).map((e) => {
      const col = described.find((d) => d.name === e.name);
      if (!col) throw new UserError(`column "${e.name}" named by "${e.option}" is not in the training query (its columns: ${names.join(', ')})`);
      return { ...e, col, ...e.choose(col) };
    });
    const extraNames = new Set(extras.map((e) => e.name));
    // (a column may be read twice as extras, e.g. a label both as a number and as text)
    const features = described.filter((d) => !req.exclude.includes(d.name) && d.name !== req.boolColumn && !extraNames.has(d.name));
    if (features.length === 0) {
      throw new UserError('no feature columns are left after "exclude": the training query must have at least one other column');
    }
    const kept = (req.keep ?? []).map((name) => described.find((d) => d.name === name)!).filter(Boolean);
    const kinds: FieldKind[] = features.map((d) => kindOf(d));
    const selectList = features.map((d, i) => `q.${quoteIdent(d.name)}::${kinds[i] === 'float8' ? 'float8' : 'text'}`);
    if (req.boolColumn !== undefined) selectList.push(`(q.${quoteIdent(req.boolColumn)} IS TRUE)::int::float8`);
    for (const k of kept) selectList.push(`q.${quoteIdent(k.name)}::text`);
    for (const e of extras) selectList.push(e.sql);
    const allKinds: FieldKind[] = [
      ...kinds,
      ...(req.boolColumn !== undefined ? (['float8'] as const) : []),
      ...kept.map(() => 'raw' as const),
      ...extras.map((e) => e.kind),
    ];
    parser = new BinaryCopyParser(
      [...features.map((d) => d.name), ...(req.boolColumn !== undefined ? [req.boolColumn] : []), ...kept.map((k) => k.name), ...extras.map((e) => e.name)],
      allKinds,
      req.maxBytes === undefined || req.batch ? undefined : { maxBytes: req.maxBytes, budgetLabel: `${Math.round(req.maxBytes / 2 ** 20)} MB` },
      req.batch && { rows: req.batch.rows, onBatch: (columns, rows) => req.batch!.onBatch({ rows, columns }) },
      // Column arrays sized from the planner's estimate (a filtered sample: its share of it):
      // memory is slow to touch the first time on these machines (~3 ms per MB), and doubling
      // as rows arrive touches twice the final size. Unused capacity is never touched.
      req.batch ? req.batch.rows : Math.ceil(estimatedRows * 1.1 * (req.sampleShare ?? 1)),
      req.rowMajor === true && req.boolColumn === undefined && kept.length === 0 && extras.length === 0,
    );
    const where = req.where ? ` WHERE ${req.where}` : '';
    const copySql = `COPY (SELECT ${selectList.join(', ')} FROM (${q}) q${where}) TO STDOUT (FORMAT binary)`;
    await pipeline(client.query(copyTo(copySql)), parser);
    await client.query('COMMIT');
    const columns = parser.columns();
    const rowCount = parser.rows;
    const extraColumns = new Map<string, { column: Column; type: ColumnType }>();
    for (const e of [...extras].reverse()) extraColumns.set(e.key ?? e.name, { column: columns.pop()!, type: e.col });
    let flags: Uint8Array | undefined;
    if (req.boolColumn !== undefined) {
      const flagCol = columns.pop()!;
      flags = flagCol.kind === 'numeric' ? Uint8Array.from(flagCol.values) : undefined;
    }
    const keptColumns = kept.map((k, i) => ({ name: k.name, type: k.type, values: parser!.rawColumn(features.length + (req.boolColumn !== undefined ? 1 : 0) + i) }));
    client.release();
    return { table: { rows: rowCount, columns }, flags, kept: keptColumns, extras: extraColumns, seconds: (performance.now() - started) / 1000 };
  } catch (err) {
    // An interrupted COPY leaves the connection in an unknown state: discard it.
    client.release(true);
    throw parser?.failure ?? explain(err);
  }
}

/** The number of rows of a training query, counted under the same role, read-only and timeout as loading. */
export async function countRows(pool: Pool, req: Pick<LoadRequest, 'query' | 'role' | 'statementTimeoutMs'>): Promise<number> {
  const q = stripQuery(req.query);
  const client = await pool.connect();
  try {
    await beginAsRequester(client, req, q);
    const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM (${q}) q`);
    await client.query('COMMIT');
    client.release();
    return Number(rows[0]!.n);
  } catch (err) {
    client.release(true);
    throw explain(err);
  }
}

/**
 * BEGIN READ ONLY under the requester's role with the statement timeout, and refuse a
 * data-modifying query; returns the planner's row estimate.
 */
async function beginAsRequester(client: import('pg').PoolClient, req: Pick<LoadRequest, 'role' | 'statementTimeoutMs'>, q: string): Promise<number> {
  await client.query('BEGIN TRANSACTION READ ONLY');
  await setRole(client, req.role);
  await client.query(`SET LOCAL statement_timeout = ${Math.max(1, Math.floor(req.statementTimeoutMs))}`);
  return checkReadOnly(client, q);
}

async function setRole(client: import('pg').PoolClient, role: string): Promise<void> {
  const { rows } = await client.query<{ me: string }>('SELECT session_user::text AS me');
  try {
    await client.query(`SET LOCAL ROLE ${quoteIdent(role)}`);
  } catch (err) {
    if (sqlState(err) !== '42501') throw err;
    throw new UserError(
      `the sidecar's role "${rows[0]?.me}" cannot act as role "${role}", who asked for this training; run GRANT ${quoteIdent(role)} TO ${quoteIdent(rows[0]?.me ?? 'sidecar')}`,
    );
  }
}

// EXPLAIN (not executed) reports errors against the user's own text, and tells a data-modifying
// statement apart before anything runs; the read-only transaction is the guarantee.
/** Refuses a data-modifying query; returns the planner's row estimate. */
async function checkReadOnly(client: import('pg').PoolClient, q: string): Promise<number> {
  const res = await client.query(`EXPLAIN (FORMAT JSON) ${q}`);
  if (JSON.stringify(res.rows).includes('"Node Type":"ModifyTable"')) {
    throw new UserError('training query must only read data: it contains INSERT, UPDATE, DELETE or MERGE; use a SELECT');
  }
  const rows = Number(res.rows[0]?.['QUERY PLAN']?.[0]?.Plan?.['Plan Rows']);
  return Number.isFinite(rows) && rows > 0 ? rows : 0;
}

async function describe(client: import('pg').PoolClient, q: string): Promise<Described[]> {
  const res = await client.query(`SELECT * FROM (${q}) q LIMIT 0`);
  const seen = new Set<string>();
  for (const f of res.fields) {
    if (seen.has(f.name)) {
      throw new UserError(`the training query has two columns named "${f.name}"; give them distinct names with AS`);
    }
    seen.add(f.name);
  }
  const oids = res.fields.map((f) => f.dataTypeID);
  const types = await client.query<{ oid: number; typcategory: string; typname: string; formatted: string }>(
    `SELECT m.oid::int AS oid, t.typcategory::text AS typcategory, t.typname::text AS typname, format_type(m.oid, m.typmod) AS formatted
       FROM unnest($1::oid[], $2::int[]) WITH ORDINALITY AS m(oid, typmod, i) LEFT JOIN pg_type t ON t.oid = m.oid
      ORDER BY m.i`,
    [oids, res.fields.map((f) => f.dataTypeModifier)],
  );
  return res.fields.map((f, i) => {
    const t = types.rows[i];
    return { name: f.name, typeOid: f.dataTypeID, typcategory: t?.typcategory ?? 'X', typname: t?.typname ?? 'unknown', type: t?.formatted ?? 'text' };
  });
}

// BigQuery ML's rule: numeric types are numeric features; text, boolean, enum (and other
// scalar types such as dates) are categorical, one-hot encoded. Arrays and composites are
// not supported yet.
function kindOf(d: Described): FieldKind {
  if (d.typcategory === 'N') return 'float8';
  if (d.typcategory === 'A' || d.typcategory === 'C' || d.typname === 'json' || d.typname === 'jsonb') {
    throw new UserError(
      `column "${d.name}" has type ${d.typname}, which sqlml cannot use as a feature yet; list it in "exclude" or cast it in the query`,
    );
  }
  return 'text';
}

// Turn PostgreSQL's errors about the user's query into sentences about the user's query;
// keep the SQLSTATE so the queue can tell transient from deterministic failures.
function explain(err: unknown): unknown {
  if (err instanceof UserError) return err;
  const code = sqlState(err);
  if (!code) return err;
  let message = `training query failed: ${messageOf(err)}`;
  if (code === '57014') message = `training query was cancelled by the statement timeout: ${messageOf(err)}`;
  if (code === '25006') message = `training query must only read data (it ran in a read-only transaction): ${messageOf(err)}`;
  const out = new Error(message) as Error & { code: string };
  out.code = code;
  return out;
}
