import { dollarQuote, num } from '../compile.ts';
import { shiftOf, type BgNbd } from './bgnbd.ts';
import type { GammaGamma } from './gamma-gamma.ts';
import type { ParetoNbd } from './pareto-nbd.ts';
import { HYP2F1_MAX_TERMS } from './special.ts';

// A clv model as SQL, the same arithmetic as bgnbd.ts, pareto-nbd.ts and gamma-gamma.ts: per
// version the internal functions — P(alive) (Pareto/NBD: it needs the hypergeometric A0), the
// expected purchases, and the scores [p_alive, expected purchases, expected spend, clv] that
// ml_predict reads — and the public functions, thin wrappers over them. PostgreSQL raises on
// exp() underflow and ln(0), so every exponent is clamped and every log1p-like term guarded.

export type CompiledClv = {
  spend: GammaGamma | null;
  horizon: number;
  discountRate: number;
} & ({ model: 'bg_nbd' | 'mbg_nbd'; purchase: BgNbd } | { model: 'pareto_nbd'; purchase: ParetoNbd });

export interface ClvFunctionNames {
  alive: string; // internal (x, t_x, T) -> P(alive)
  purchases: string; // internal (x, t_x, T, t) -> expected purchases
  scores: string; // internal (x, t_x, T, m, horizon, discount) -> [p_alive, purchases, spend, clv]
}

/**
 * PL/pgSQL statements that set `target` to ln |2F1(a, b; c; z)| (and `<p>s` to its sign), the
 * Gauss series summed in log space as hyp2f1 does; a, b, c, z are SQL expressions, the locals
 * are prefixed by p (declared by hypergeometricLocals).
 */
function hypergeometricSql(p: string, a: string, b: string, c: string, z: string, target: string): string {
  return `${p}n := 0; ${p}lt := 0; ${p}ls := 0; ${p}ts := 1; ${p}s := 1;
  LOOP
    IF ${c} + ${p}n < 0 THEN ${p}ts := -${p}ts; END IF;
    ${p}st := ln(${a} + ${p}n) + ln(${b} + ${p}n) - ln(abs(${c} + ${p}n)) - ln(${p}n + 1) + ln(${z});
    ${p}lt := ${p}lt + ${p}st;
    ${p}d := abs(${p}ls - ${p}lt);
    IF ${p}ts = ${p}s THEN
      ${p}ls := greatest(${p}ls, ${p}lt) + CASE WHEN ${p}d > 40 THEN 0 ELSE ln(1 + exp(-${p}d)) END;
    ELSIF ${p}lt > ${p}ls THEN
      ${p}ls := ${p}lt + CASE WHEN ${p}d > 40 THEN 0 ELSE ln(greatest(1 - exp(-${p}d), 1e-300)) END;
      ${p}s := ${p}ts;
    ELSE
      ${p}ls := ${p}ls + CASE WHEN ${p}d > 40 THEN 0 ELSE ln(greatest(1 - exp(-${p}d), 1e-300)) END;
    END IF;
    EXIT WHEN (${p}st < 0 AND ${c} + ${p}n > 0 AND ${p}lt - ln(1 - ${z}) < ${p}ls - 37) OR ${p}n >= ${HYP2F1_MAX_TERMS - 1};
    ${p}n := ${p}n + 1;
  END LOOP;
  -- not converged (z within ~1e-5 of 1: a horizon ~100,000 times the customer's age): no value
  ${target} := CASE WHEN ${p}n >= ${HYP2F1_MAX_TERMS - 1} THEN NULL ELSE ${p}ls END;`;
}

function hypergeometricLocals(p: string): string {
  return `${p}n int; ${p}st float8; ${p}lt float8; ${p}ls float8; ${p}ts int; ${p}s int; ${p}d float8;`;
}

/** BG/NBD and MBG/NBD: ln P(dead)/P(alive) of (x = $1, t_x = $2, T = $3) (BG/NBD: x > 0 only). */
function bgDeadOdds(m: BgNbd): string {
  return `ln(${num(m.a)}) - ln(${num(m.b - 1 + shiftOf(m))} + $1) + (${num(m.r)} + $1) * (ln(${num(m.alpha)} + $3) - ln(${num(m.alpha)} + $2))`;
}

/** P(alive) of (x = $1, t_x = $2, T = $3) as an SQL expression. */
function pAliveSql(c: CompiledClv, names: ClvFunctionNames): string {
  if (c.model === 'pareto_nbd') return `${names.alive}($1, $2, $3)`;
  const alive = `1 / (1 + exp(least(700, ${bgDeadOdds(c.purchase)})))`;
  return shiftOf(c.purchase) ? alive : `CASE WHEN $1 > 0 THEN ${alive} ELSE 1 END`;
}

/** E[M | x, m] of frequency `x` and monetary value `m` (SQL expressions). */
function expectedSpendSql(g: GammaGamma | null, x: string, m: string): string {
  if (!g) return 'NULL::float8';
  return `CASE WHEN ${x} > 0 THEN ${num(g.p)} * (${num(g.gamma)} + ${x} * ${m}) / (${num(g.p)} * ${x} + ${num(g.q - 1)}) ELSE ${num((g.p * g.gamma) / (g.q - 1))} END`;
}

const plpgsql = (name: string, args: string, returns: string, body: string) => `CREATE OR REPLACE FUNCTION ${name}(${args}) RETURNS ${returns}
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS ${dollarQuote(body)}`;

/**
 * Pareto/NBD's P(alive) (x, t_x, T): 1 / (1 + s/(r+s+x) (α+T)^(r+x) (β+T)^s A0), with ln A0 the
 * log of the difference of the two hypergeometric terms (pareto-nbd.ts, logA0).
 */
export function aliveFunctionSql(c: CompiledClv, name: string): string | null {
  if (c.model !== 'pareto_nbd') return null;
  const { r, alpha, s, beta } = c.purchase;
  const big = Math.max(alpha, beta);
  const gap = Math.abs(alpha - beta);
  const b = alpha >= beta ? `${num(s + 1)}` : `${num(r)} + $1`;
  const body = `DECLARE
  cc float8 := ${num(r + s)} + $1;
  one float8;
  two float8;
  la0 float8;
  ${hypergeometricLocals('h')}
BEGIN
  IF $1 IS NULL OR $2 IS NULL OR $3 IS NULL THEN RETURN NULL; END IF;
  IF ${num(gap)} = 0 THEN one := 0; ELSE
  ${hypergeometricSql('h', 'cc', b, 'cc + 1', `${num(gap)} / (${num(big)} + $2)`, 'one')}
  END IF;
  one := one - cc * ln(${num(big)} + $2);
  IF ${num(gap)} = 0 THEN two := 0; ELSE
  ${hypergeometricSql('h', 'cc', b, 'cc + 1', `${num(gap)} / (${num(big)} + $3)`, 'two')}
  END IF;
  two := two - cc * ln(${num(big)} + $3);
  IF one IS NULL OR two IS NULL THEN RETURN NULL; END IF;  -- not converged (least() below would drop a NULL)
  IF NOT one > two THEN RETURN 1; END IF;  -- t_x = T: A0 = 0
  la0 := one + CASE WHEN two - one < -40 THEN 0 ELSE ln(greatest(1 - exp(two - one), 1e-300)) END;
  RETURN 1 / (1 + exp(least(700, ln(${num(s)}) - ln(cc) + (${num(r)} + $1) * ln(${num(alpha)} + $3) + ${num(s)} * ln(${num(beta)} + $3) + la0)));
END`;
  return plpgsql(name, 'float8, float8, float8', 'float8', body);
}

/** (frequency, recency, age, horizon) -> expected purchases in the horizon. */
export function purchasesFunctionSql(c: CompiledClv, names: ClvFunctionNames): string {
  if (c.model === 'pareto_nbd') {
    // P(alive) (r+x)(β+T)/(α+T) [1 - ((β+T)/(β+T+t))^(s-1)]/(s-1) (its limit at s = 1)
    const { r, alpha, s, beta } = c.purchase;
    const factor = Math.abs(s - 1) < 1e-9
      ? `ln((${num(beta)} + $3 + $4) / (${num(beta)} + $3))`
      : `(1 - exp(greatest(-700, ${num(s - 1)} * ln((${num(beta)} + $3) / (${num(beta)} + $3 + $4))))) / ${num(s - 1)}`;
    const body = `BEGIN
  IF $4 IS NULL OR $1 IS NULL OR $2 IS NULL OR $3 IS NULL THEN RETURN NULL; END IF;
  IF $4 <= 0 THEN RETURN 0; END IF;
  RETURN ${names.alive}($1, $2, $3) * (${num(r)} + $1) * (${num(beta)} + $3) / (${num(alpha)} + $3) * ${factor};
END`;
    return plpgsql(names.purchases, 'float8, float8, float8, float8', 'float8', body);
  }
  // BG/NBD (MBG/NBD: s = 1): (a+b+x-1+s)/(a-1) [1 - ((α+T)/(α+T+t))^(r+x) 2F1(r+x, b+x+s; a+b+x-1+s; t/(α+T+t))] P(alive)
  const { r, alpha, a, b } = c.purchase;
  const s = shiftOf(c.purchase);
  const body = `DECLARE
  a1 float8 := ${num(r)} + $1;
  c1 float8 := ${num(a + b - 1 + s)} + $1;
  lf float8;
  ${hypergeometricLocals('h')}
BEGIN
  IF $4 IS NULL OR $1 IS NULL OR $2 IS NULL OR $3 IS NULL THEN RETURN NULL; END IF;
  IF $4 <= 0 THEN RETURN 0; END IF;
  ${hypergeometricSql('h', 'a1', `${num(b + s)} + $1`, 'c1', `$4 / (${num(alpha)} + $3 + $4)`, 'lf')}
  IF lf IS NULL THEN RETURN NULL; END IF;  -- (greatest() below would drop a NULL)
  RETURN (c1 / ${num(a - 1)}) * (1 - hs * exp(greatest(-700, a1 * (ln(${num(alpha)} + $3) - ln(${num(alpha)} + $3 + $4)) + lf)))
         * (${pAliveSql(c, names)});
END`;
  return plpgsql(names.purchases, 'float8, float8, float8, float8', 'float8', body);
}

/**
 * (frequency, recency, age, monetary_value, horizon, discount_rate) -> [p_alive, expected
 * purchases, expected spend, clv]. Without discounting, clv = expected purchases x expected
 * spend; with a rate d per time unit, each time unit's expected purchases are discounted by
 * (1 + d)^i, as lifetimes' customer_lifetime_value does per period.
 */
export function scoresFunctionSql(c: CompiledClv, names: ClvFunctionNames): string {
  const body = `DECLARE
  e float8 := ${names.purchases}($1, $2, $3, $5);
  s float8 := ${expectedSpendSql(c.spend, '$1', '$4')};
  v float8 := 0;
  prev float8 := 0;
  cur float8;
  i int := 1;
BEGIN
  IF $6 IS NULL OR $6 = 0 THEN
    v := e * s;
  ELSE
    WHILE i < $5 + 1 LOOP
      cur := ${names.purchases}($1, $2, $3, least(i, $5));
      v := v + (cur - prev) * s / power(1 + $6, least(i, $5));
      prev := cur;
      i := i + 1;
    END LOOP;
  END IF;
  RETURN ARRAY[${pAliveSql(c, names)}, e, s, v];
END`;
  return plpgsql(names.scores, 'float8, float8, float8, float8, float8, float8', 'float8[]', body);
}

/** The public functions: named arguments, the model's horizon and discount rate as defaults. */
export function publicFunctionsSql(c: CompiledClv, names: { pAlive: string; purchases: string; spend: string; clv: string }, internal: ClvFunctionNames): { name: string; argumentTypes: string; create: string }[] {
  const h = num(c.horizon);
  const d = num(c.discountRate);
  const sql = (name: string, args: string, body: string) => `CREATE OR REPLACE FUNCTION ${name}(${args}) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS ${dollarQuote(`SELECT ${body}`)}`;
  return [
    { name: names.pAlive, argumentTypes: 'float8, float8, float8', create: sql(names.pAlive, 'frequency float8, recency float8, age float8', pAliveSql(c, internal)) },
    {
      name: names.purchases,
      argumentTypes: 'float8, float8, float8, float8',
      create: sql(names.purchases, `frequency float8, recency float8, age float8, horizon float8 DEFAULT ${h}`, `${internal.purchases}($1, $2, $3, $4)`),
    },
    { name: names.spend, argumentTypes: 'float8, float8', create: sql(names.spend, 'frequency float8, monetary_value float8', expectedSpendSql(c.spend, '$1', '$2')) },
    {
      name: names.clv,
      argumentTypes: 'float8, float8, float8, float8, float8, float8',
      create: sql(names.clv, `frequency float8, recency float8, age float8, monetary_value float8, horizon float8 DEFAULT ${h}, discount_rate float8 DEFAULT ${d}`, `(${internal.scores}($1, $2, $3, $4, $5, $6))[4]`),
    },
  ];
}
