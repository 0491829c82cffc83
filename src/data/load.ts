import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import type { Pool } from '../db/connect.ts';
import { PINNED_SEARCH_PATH, quoteIdent } from '../db/connect.ts';
import { UserError, messageOf, sqlState } from '../util/errors.ts';
import { BinaryCopyParser, type FieldKind } from './copy-binary.ts';
import type { CategoryType, Column, Table } from './columns.ts';

/**
 * Where a job's rows come from: the function that ml_create_model made of the training query
 * (SECURITY DEFINER, owned by the requester, over a view of the query), called over a fresh
 * connection of the reader role (see docs/security.md).
 */
export interface TrainingSource {
  main: Pool; // the sidecar's own connections: it registers the reader session here
  readerUrl: string;
  fn: string; // pg_proc oid of the training function
  token: string; // its guard's argument
  estimatedRows: number; // the planner's estimate when the job was enqueued
  /** work_mem of the reader session (MB): the function's rows wait in a tuplestore there until COPY sends them. */
  workMemMb: number;
  role: string; // the requester, who must still own the view
  /** Called while a reader session runs, with a function that cancels its query (ml_cancel). */
  onReading?: (cancel: () => Promise<void>) => () => void;
}

export interface LoadRequest {
  source: TrainingSource;
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
  /** Told the number of rows read so far, every half second while rows arrive. */
  onRows?: (rows: number) => void;
  /**
   * Keep the server's work_mem: for a training function that aggregates (a clv model's RFM
   * summary), whose hash aggregates ran 1.5x slower with the reader's large work_mem (measured:
   * 10.5 s at 4 MB, 11.9 s at 64 MB, 13-16 s at 256 MB on 10M transactions).
   */
  serverWorkMem?: boolean;
}

export interface ColumnType {
  name: string;
  type: string; // format_type(), e.g. "numeric(10,2)"
  typcategory: string; // pg_type.typcategory: N numeric, B boolean, S string, D date/time, E enum ...
  typname: string;
  /** A base type of the catalog (not a domain, enum or composite a user made): safe to name in generated SQL. */
  builtin: boolean;
  /** A type of the catalog: its casts are the catalog's (a user's type may have casts its owner wrote). */
  catalog: boolean;
}

/**
 * A column as text, running no user's code: a catalog type by its cast (as users see it, e.g.
 * true -> 'true'), any other type by its output function (format('%s') consults no cast).
 */
export function textSql(col: Pick<ColumnType, 'catalog'>, expr: string): string {
  return col.catalog ? `${expr}::text` : `pg_catalog.format('%s', ${expr})`;
}

/** boolean and date features keep their type in generated functions (m_predict(true, current_date)). */
function categoryType(d: Pick<ColumnType, 'catalog' | 'typname'>): CategoryType | undefined {
  if (!d.catalog) return undefined;
  return d.typname === 'bool' ? 'boolean' : d.typname === 'date' ? 'date' : undefined;
}

/**
 * A categorical feature's text. Dates in ISO form whatever the session's DateStyle, so that a
 * generated function compares them as date literals in any caller's session.
 */
function categoryTextSql(d: Pick<ColumnType, 'catalog' | 'typname'>, expr: string): string {
  if (categoryType(d) !== 'date') return textSql(d, expr);
  return `CASE WHEN ${expr} BETWEEN '0001-01-01'::date AND '9999-12-31'::date THEN pg_catalog.to_char(${expr}, 'YYYY-MM-DD') ELSE ${expr}::text END`;
}

export interface ExtraColumn {
  name: string;
  key?: string; // the name it is returned under (default: name), to read one column two ways
  option: string; // the option that named it, for error messages
  choose: (col: ColumnType) => { sql: string; kind: 'float8' | 'text' };
}

export interface KeptColumn {
  name: string;
  type: string; // format_type() of a built-in type, e.g. "character varying(20)"; text for any other
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

/**
 * Reads a training function's rows by binary COPY into typed columns, in a READ ONLY
 * transaction of a reader session with a statement timeout: the query inside runs as the
 * requester (who owns the function) and cannot switch roles; what the sidecar adds around it
 * (casts, sampling) runs as the reader role, which may do nothing.
 */
export async function loadTrainingData(req: LoadRequest): Promise<LoadedData> {
  const started = performance.now();
  const reader = await openReader(req.source, req.statementTimeoutMs, req.serverWorkMem);
  const { client, from: q } = reader;
  const estimatedRows = req.source.estimatedRows;
  let parser: BinaryCopyParser | null = null;
  try {
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
    const kept = (req.keep ?? []).map((name) => described.find((d) => d.name === name)!).filter(Boolean).map((d) => ({ ...d, type: d.builtin ? d.type : 'text' }));
    const kinds: FieldKind[] = features.map((d) => kindOf(d));
    const selectList = features.map((d, i) => (kinds[i] === 'float8' ? `q.${quoteIdent(d.name)}::float8` : categoryTextSql(d, `q.${quoteIdent(d.name)}`)));
    if (req.boolColumn !== undefined) selectList.push(`(q.${quoteIdent(req.boolColumn)} IS TRUE)::int::float8`);
    for (const k of kept) selectList.push(textSql(k, `q.${quoteIdent(k.name)}`));
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
    const copySql = `COPY (SELECT ${selectList.join(', ')} FROM ${q} q${where}) TO STDOUT (FORMAT binary)`;
    const counted = parser;
    const ticker = req.onRows && setInterval(() => req.onRows!(counted.rows), 500);
    try {
      await pipeline(client.query(copyTo(copySql)), parser);
    } finally {
      if (ticker) clearInterval(ticker);
    }
    await client.query('COMMIT');
    const columns = parser.columns();
    features.forEach((d, i) => {
      const col = columns[i]!;
      const type = categoryType(d);
      if (col.kind === 'categorical' && type) col.sqlType = type;
    });
    const rowCount = parser.rows;
    const extraColumns = new Map<string, { column: Column; type: ColumnType }>();
    for (const e of [...extras].reverse()) extraColumns.set(e.key ?? e.name, { column: columns.pop()!, type: e.col });
    let flags: Uint8Array | undefined;
    if (req.boolColumn !== undefined) {
      const flagCol = columns.pop()!;
      flags = flagCol.kind === 'numeric' ? Uint8Array.from(flagCol.values) : undefined;
    }
    const keptColumns = kept.map((k, i) => ({ name: k.name, type: k.type, values: parser!.rawColumn(features.length + (req.boolColumn !== undefined ? 1 : 0) + i) }));
    return { table: { rows: rowCount, columns }, flags, kept: keptColumns, extras: extraColumns, seconds: (performance.now() - started) / 1000 };
  } catch (err) {
    throw parser?.failure ?? explain(err);
  } finally {
    await reader.close();
  }
}

/** The number of rows of a training view, counted as loading reads them. */
export async function countRows(req: Pick<LoadRequest, 'source' | 'statementTimeoutMs'>): Promise<number> {
  const reader = await openReader(req.source, req.statementTimeoutMs);
  try {
    const { rows } = await reader.client.query<{ n: string }>(reader.count);
    await reader.client.query('COMMIT');
    return Number(rows[0]!.n);
  } catch (err) {
    throw explain(err);
  } finally {
    await reader.close();
  }
}

interface Reader {
  client: pg.Client;
  from: string; // the training function's call, qualified and quoted
  count: string; // the query that counts its rows
  close(): Promise<void>;
}

/**
 * A fresh reader session for one read of a training function, never reused (user code ran in
 * it): registered in ml.readers with a secret given at connection start-up, so that the
 * function's guard lets this session, and no other, see the rows. BEGIN READ ONLY with the
 * statement timeout.
 */
export async function openReader(src: TrainingSource, statementTimeoutMs: number, serverWorkMem = false): Promise<Reader> {
  if (!src.fn || !src.token) {
    throw new UserError('this job was queued by an earlier sqlml, before training queries became functions of their requester; enqueue it again with ml_create_model');
  }
  // The function must still be the one ml_create_model made for the requester.
  const { rows } = await src.main.query<{ call: string; count: string | null; owner: string; intact: boolean }>(
    `SELECT format('%I.%I()', n.nspname, p.proname) AS call, format('%I.%I()', n.nspname, k.proname) AS count,
            pg_get_userbyid(p.proowner)::text AS owner,
            p.prosecdef AND p.prosrc = ml.reader_function_body(j.query_sql, $2)
              AND (k.oid IS NULL OR (k.prosecdef AND k.proowner = p.proowner AND k.prosrc = ml.count_function_body(j.query_sql, $2))) AS intact
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
       JOIN ml.jobs j ON j.query_function = p.oid AND j.kind = 'train'
       LEFT JOIN pg_proc k ON k.pronamespace = p.pronamespace AND k.proname = 'k_' || $2 AND k.pronargs = 0
      WHERE p.oid = $1::oid`,
    [src.fn, src.token],
  );
  const found = rows[0];
  if (!found) throw new UserError('the function of this training query no longer exists (it was dropped); train again with ml_create_model');
  if (found.owner !== src.role || !found.intact) {
    throw new UserError(`the function of this training query (${found.call}) was changed after ml_create_model made it; train again with ml_create_model`);
  }
  const secret = randomBytes(24).toString('hex');
  await src.main.query('INSERT INTO ml.readers (token, secret) VALUES ($1, $2)', [src.token, secret]);
  const client = new pg.Client({
    connectionString: src.readerUrl,
    application_name: 'sqlml reader',
    options: `${PINNED_SEARCH_PATH} -c sqlml.reader_secret=${secret}`,
  });
  client.on('error', () => undefined);
  const forget = () => src.main.query('DELETE FROM ml.readers WHERE token = $1 AND secret = $2', [src.token, secret]).catch(() => undefined);
  try {
    await client.connect();
  } catch (err) {
    await forget();
    throw new Error(`the sidecar cannot connect as its reader role: ${messageOf(err)}; check --reader-url (see docs/security.md)`);
  }
  const pid = (client as unknown as { processID: number | null }).processID;
  const stopWatching = src.onReading?.(() => cancelBackend(src.readerUrl, pid)) ?? (() => undefined);
  const close = async () => {
    stopWatching();
    await client.end().catch(() => undefined);
    await forget();
  };
  try {
    await client.query('BEGIN TRANSACTION READ ONLY');
    await client.query(`SET LOCAL statement_timeout = ${Math.max(1, Math.floor(statementTimeoutMs))}`);
    if (!serverWorkMem) await client.query(`SET LOCAL work_mem = '${Math.max(1, Math.floor(src.workMemMb))}MB'`);
  } catch (err) {
    await close();
    throw err;
  }
  return { client, from: found.call, count: found.count ? `SELECT ${found.count} AS n` : `SELECT count(*) AS n FROM ${found.call} q`, close };
}

/** Cancels a reader session's query (ml_cancel during a load): the reader role may signal its own sessions. */
async function cancelBackend(readerUrl: string, pid: number | null): Promise<void> {
  if (!pid) return;
  const c = new pg.Client({ connectionString: readerUrl, application_name: 'sqlml reader (cancel)' });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.query('SELECT pg_cancel_backend($1)', [pid]);
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function describe(client: pg.Client, from: string): Promise<Described[]> {
  const res = await client.query(`SELECT * FROM ${from} q LIMIT 0`);
  const seen = new Set<string>();
  for (const f of res.fields) {
    if (seen.has(f.name)) {
      throw new UserError(`the training query has two columns named "${f.name}"; give them distinct names with AS`);
    }
    seen.add(f.name);
  }
  const oids = res.fields.map((f) => f.dataTypeID);
  const types = await client.query<{ oid: number; typcategory: string; typname: string; formatted: string; builtin: boolean; catalog: boolean }>(
    `SELECT m.oid::int AS oid, t.typcategory::text AS typcategory, t.typname::text AS typname, format_type(m.oid, m.typmod) AS formatted,
            coalesce(t.typnamespace = 'pg_catalog'::regnamespace AND t.typtype = 'b', false) AS builtin,
            coalesce(t.typnamespace = 'pg_catalog'::regnamespace, false) AS catalog
       FROM unnest($1::oid[], $2::int[]) WITH ORDINALITY AS m(oid, typmod, i) LEFT JOIN pg_type t ON t.oid = m.oid
      ORDER BY m.i`,
    [oids, res.fields.map((f) => f.dataTypeModifier)],
  );
  return res.fields.map((f, i) => {
    const t = types.rows[i];
    return { name: f.name, typeOid: f.dataTypeID, typcategory: t?.typcategory ?? 'X', typname: t?.typname ?? 'unknown', type: t?.formatted ?? 'text', builtin: t?.builtin ?? false, catalog: t?.catalog ?? false };
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
export function explain(err: unknown): unknown {
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
