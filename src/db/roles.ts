import pg from 'pg';
import { PINNED_SEARCH_PATH, quoteIdent, quoteLiteral } from './connect.ts';

// The roles of docs/security.md: the sidecar (owns the ml schema, runs no user SQL) and the
// reader (a login that is a member of no role and owns nothing; training views are read there).

export const DEFAULT_SIDECAR_ROLE = 'ml_sidecar';
export const DEFAULT_READER_ROLE = 'ml_reader';

export interface RoleUrls {
  sidecarUrl: string;
  readerUrl: string;
}

/** `url` with another user and password. */
export function withUser(url: string, user: string, password: string): string {
  const u = new URL(url);
  u.username = encodeURIComponent(user);
  u.password = encodeURIComponent(password);
  return u.toString();
}

/** The statements a DBA runs once per database (docs/security.md prints the same). */
export function setupStatements(o: { database: string; apiSchema: string; sidecar: string; reader: string; sidecarPassword: string; readerPassword: string }): string[] {
  const role = (name: string, password: string, extra: string) =>
    `DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ${quoteLiteral(name)}) THEN CREATE ROLE ${quoteIdent(name)} LOGIN; END IF; END $$`
    + `; ALTER ROLE ${quoteIdent(name)} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS${extra} PASSWORD ${quoteLiteral(password)}`;
  return [
    role(o.sidecar, o.sidecarPassword, ''),
    role(o.reader, o.readerPassword, ' NOINHERIT'),
    `GRANT CREATE ON DATABASE ${quoteIdent(o.database)} TO ${quoteIdent(o.sidecar)}`,
    `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(o.apiSchema)}`,
    `GRANT USAGE, CREATE ON SCHEMA ${quoteIdent(o.apiSchema)} TO ${quoteIdent(o.sidecar)}`,
  ];
}

/**
 * With an administrator's connection: creates (or resets the passwords of) the sidecar and
 * reader roles and grants the sidecar what it needs in this database. Used by `sqlml start`,
 * `sqlml setup-roles` and the tests.
 */
export async function provisionRoles(
  adminUrl: string,
  o: { sidecar?: string; reader?: string; sidecarPassword: string; readerPassword: string; apiSchema?: string },
): Promise<RoleUrls> {
  const sidecar = o.sidecar ?? DEFAULT_SIDECAR_ROLE;
  const reader = o.reader ?? DEFAULT_READER_ROLE;
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    const { rows } = await c.query<{ db: string }>('SELECT current_database() AS db');
    // Roles are cluster-wide: concurrent set-ups (test files) take turns.
    await c.query('SELECT pg_advisory_lock(7346102)');
    try {
      for (const s of setupStatements({ database: rows[0]!.db, apiSchema: o.apiSchema ?? 'public', sidecar, reader, sidecarPassword: o.sidecarPassword, readerPassword: o.readerPassword })) {
        await c.query(s);
      }
    } finally {
      await c.query('SELECT pg_advisory_unlock(7346102)');
    }
  } finally {
    await c.end();
  }
  return { sidecarUrl: withUser(adminUrl, sidecar, o.sidecarPassword), readerUrl: withUser(adminUrl, reader, o.readerPassword) };
}

/** The sidecar refuses a reader connection that is not the installed reader role, or has rights. */
export async function checkReader(sidecar: pg.Pool, readerUrl: string): Promise<void> {
  const c = new pg.Client({ connectionString: readerUrl, options: PINNED_SEARCH_PATH, application_name: 'sqlml reader (check)' });
  try {
    await c.connect();
  } catch (err) {
    throw new Error(`cannot connect with the reader URL: ${(err as Error).message}; see docs/security.md for the reader role`);
  }
  try {
    const { rows } = await c.query<{ me: string }>('SELECT current_user::text AS me');
    const me = rows[0]!.me;
    const { rows: s } = await sidecar.query<{ reader: string | null }>(`SELECT value AS reader FROM ml.settings WHERE key = 'reader_role'`);
    const expected = s[0]?.reader ?? DEFAULT_READER_ROLE;
    if (me !== expected) throw new Error(`the reader URL logs in as role "${me}", but sqlml was installed with reader role "${expected}" (sqlml install --reader-role)`);
    const problems = await readerProblems(sidecar, me);
    if (problems.length) throw new Error(`the reader role "${me}" must have no rights: ${problems.join('; ')}`);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** What makes a reader role unsafe: attributes, memberships, ownership. */
export async function readerProblems(pool: pg.Pool | pg.Client, reader: string): Promise<string[]> {
  const { rows } = await pool.query<{ exists: boolean; super: boolean; attrs: string[]; member_of: string[]; owns: number }>(
    `SELECT r.oid IS NOT NULL AS exists, coalesce(r.rolsuper, false) AS super,
            array_remove(ARRAY[CASE WHEN r.rolcreaterole THEN 'CREATEROLE' END, CASE WHEN r.rolcreatedb THEN 'CREATEDB' END,
                               CASE WHEN r.rolbypassrls THEN 'BYPASSRLS' END, CASE WHEN r.rolreplication THEN 'REPLICATION' END], NULL) AS attrs,
            ARRAY(SELECT g.rolname::text FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid ORDER BY 1) AS member_of,
            (SELECT count(*) FROM pg_class WHERE relowner = r.oid)::int + (SELECT count(*) FROM pg_proc WHERE proowner = r.oid)::int
              + (SELECT count(*) FROM pg_namespace WHERE nspowner = r.oid)::int AS owns
       FROM (SELECT $1::name AS name) x LEFT JOIN pg_roles r ON r.rolname = x.name`,
    [reader],
  );
  const r = rows[0]!;
  if (!r.exists) return [`role "${reader}" does not exist`];
  const out: string[] = [];
  if (r.super) out.push('it is a superuser');
  if (r.attrs.length) out.push(`it has ${r.attrs.join(', ')}`);
  if (r.member_of.length) out.push(`it is a member of ${r.member_of.join(', ')}`);
  if (r.owns > 0) out.push(`it owns ${r.owns} objects in this database`);
  return out;
}

export interface Finding {
  level: 'ok' | 'warn' | 'fail';
  what: string;
}

/** `sqlml doctor`: what the current set-up exposes, one finding per property of docs/security.md. */
export async function doctor(sidecar: pg.Pool, readerUrl?: string): Promise<Finding[]> {
  const out: Finding[] = [];
  const q = async <T>(sql: string, params: unknown[] = []) => (await sidecar.query(sql, params)).rows as T[];
  const [me] = await q<{ me: string; super: boolean; member_of: string[]; owner: string | null; api: string | null; reader: string | null }>(
    `SELECT current_user::text AS me, r.rolsuper AS super,
            ARRAY(SELECT g.rolname::text FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid ORDER BY 1) AS member_of,
            (SELECT pg_get_userbyid(nspowner)::text FROM pg_namespace WHERE nspname = 'ml') AS owner,
            (SELECT value FROM ml.settings WHERE key = 'api_schema') AS api,
            (SELECT value FROM ml.settings WHERE key = 'reader_role') AS reader
       FROM pg_roles r WHERE r.rolname = current_user`,
  );
  const m = me!;
  out.push(m.owner === m.me ? { level: 'ok', what: `the sidecar's role "${m.me}" owns schema ml` } : { level: 'fail', what: `schema ml belongs to "${m.owner}", not to the sidecar's role "${m.me}": run the sidecar as the role that installed sqlml` });
  out.push(m.super ? { level: 'warn', what: `the sidecar's role "${m.me}" is a superuser; it needs no more than docs/security.md lists` } : { level: 'ok', what: `the sidecar's role "${m.me}" is not a superuser` });
  out.push(m.member_of.length
    ? { level: 'warn', what: `the sidecar's role is a member of ${m.member_of.join(', ')}; sqlml no longer needs that (REVOKE ... FROM ${quoteIdent(m.me)})` }
    : { level: 'ok', what: 'the sidecar\'s role is a member of no role' });
  const reader = m.reader ?? DEFAULT_READER_ROLE;
  const problems = await readerProblems(sidecar, reader);
  out.push(problems.length ? { level: 'fail', what: `reader role "${reader}": ${problems.join('; ')}` } : { level: 'ok', what: `reader role "${reader}" exists, is a member of no role and owns nothing` });
  const [grants] = await q<{ n: number; list: string | null }>(
    `SELECT count(*)::int AS n, string_agg(DISTINCT table_schema || '.' || table_name, ', ') AS list FROM information_schema.role_table_grants
      WHERE grantee = $1 AND table_schema NOT LIKE 'ml\\_q\\_%'`, [reader]);
  out.push(grants!.n ? { level: 'warn', what: `reader role "${reader}" was granted privileges on ${grants!.list}: functions in every training query could use them` } : { level: 'ok', what: `reader role "${reader}" holds no table privileges of its own` });
  if (readerUrl) {
    try {
      await checkReader(sidecar, readerUrl);
      out.push({ level: 'ok', what: 'the reader URL logs in as the reader role' });
    } catch (err) {
      out.push({ level: 'fail', what: (err as Error).message });
    }
  }
  const [writes] = await q<{ list: string | null }>(
    `SELECT string_agg(DISTINCT table_name || ' (' || privilege_type || ')', ', ') AS list FROM information_schema.role_table_grants
      WHERE table_schema = 'ml' AND grantee = 'PUBLIC' AND privilege_type <> 'SELECT'`);
  out.push(writes!.list ? { level: 'fail', what: `PUBLIC may write ml tables: ${writes!.list}` } : { level: 'ok', what: 'no role but the sidecar writes ml.* (the API goes through checked functions)' });
  // A role that may create objects where everyone's names resolve can plant better matches for
  // the built-ins that sqlml's API functions and generated functions call (docs/security.md).
  for (const schema of ['ml', m.api ?? 'public']) {
    const [c] = await q<{ roles: string | null }>(
      `SELECT string_agg(rolname, ', ' ORDER BY rolname) AS roles FROM pg_roles
        WHERE rolname !~ '^pg_' AND NOT rolsuper AND rolname <> current_user
          AND has_schema_privilege(oid, to_regnamespace(quote_ident($1)), 'CREATE')`,
      [schema],
    );
    if (c?.roles) {
      out.push({ level: 'fail', what: `roles other than the sidecar's may CREATE in schema "${schema}": ${c.roles}; a function or operator they create there could capture calls of every role (REVOKE CREATE ON SCHEMA ${quoteIdent(schema)} FROM ...)` });
    } else out.push({ level: 'ok', what: `no role but the sidecar's (and superusers) may create objects in schema "${schema}"` });
  }
  const [unpinned] = await q<{ list: string | null }>(
    `SELECT string_agg(p.oid::regprocedure::text, ', ') AS list FROM pg_proc p
      WHERE p.prosecdef AND p.pronamespace IN (to_regnamespace('ml'), to_regnamespace(quote_ident($1)))
        AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search\\_path=pg\\_catalog,%' AND c LIKE '%, pg\\_temp')`, [m.api ?? 'public']);
  out.push(unpinned!.list
    ? { level: 'fail', what: `SECURITY DEFINER functions whose search_path is not pinned to the catalog first and pg_temp last: ${unpinned!.list}` }
    : { level: 'ok', what: 'every SECURITY DEFINER function pins its search_path (catalog first, pg_temp last)' });
  const [foreign] = await q<{ list: string | null }>(
    `SELECT string_agg(p.oid::regprocedure::text || ' (owner ' || pg_get_userbyid(p.proowner) || ')', ', ') AS list FROM pg_proc p
      WHERE p.pronamespace = to_regnamespace('ml') AND p.proowner <> (SELECT nspowner FROM pg_namespace WHERE nspname = 'ml')`);
  out.push(foreign!.list ? { level: 'fail', what: `functions in schema ml not owned by its owner: ${foreign!.list}` } : { level: 'ok', what: 'every function in schema ml belongs to its owner' });
  return out;
}
