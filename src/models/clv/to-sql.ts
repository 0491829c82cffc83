import { dollarQuote, num } from '../compile.ts';
import { shiftOf, type BgNbd } from './bgnbd.ts';
import type { GammaGamma } from './gamma-gamma.ts';
import { HYP2F1_MAX_TERMS } from './special.ts';

// A clv model as SQL, the same arithmetic as bgnbd.ts and gamma-gamma.ts: per version two
// internal functions — the expected purchases (the Gauss series in log space, as hyp2f1) and
// the scores [p_alive, expected purchases, expected spend, clv] that ml_predict reads — and the
// public functions, thin wrappers over them. PostgreSQL raises on exp() underflow and ln(0),
// so every exponent is clamped and every log1p-like term guarded.

export interface CompiledClv {
  purchase: BgNbd;
  spend: GammaGamma | null;
  horizon: number;
  discountRate: number;
}

/** ln P(dead)/P(alive) of (x = $1, t_x = $2, T = $3) (BG/NBD: for x > 0). */
function logDeadOdds(m: BgNbd): string {
  return `ln(${num(m.a)}) - ln(${num(m.b - 1 + shiftOf(m))} + $1) + (${num(m.r)} + $1) * (ln(${num(m.alpha)} + $3) - ln(${num(m.alpha)} + $2))`;
}

export function pAliveSql(m: BgNbd): string {
  const alive = `1 / (1 + exp(least(700, ${logDeadOdds(m)})))`;
  return shiftOf(m) ? alive : `CASE WHEN $1 > 0 THEN ${alive} ELSE 1 END`;
}

/** E[M | x, m] of frequency `x` and monetary value `m` (SQL expressions). */
export function expectedSpendSql(g: GammaGamma | null, x: string, m: string): string {
  if (!g) return 'NULL::float8';
  return `CASE WHEN ${x} > 0 THEN ${num(g.p)} * (${num(g.gamma)} + ${x} * ${m}) / (${num(g.p)} * ${x} + ${num(g.q - 1)}) ELSE ${num((g.p * g.gamma) / (g.q - 1))} END`;
}

/** (frequency, recency, age, horizon) -> expected purchases in the horizon (equation 10). */
export function purchasesFunctionSql(c: CompiledClv, name: string): string {
  const { r, alpha, a, b } = c.purchase;
  const s = shiftOf(c.purchase);
  const body = `DECLARE
  z float8;
  a1 float8 := ${num(r)} + $1;
  b1 float8 := ${num(b + s)} + $1;
  c1 float8 := ${num(a + b - 1 + s)} + $1;
  n int := 0;
  st float8;
  lt float8 := 0;   -- log |term|
  ls float8 := 0;   -- log |sum|
  ts int := 1;      -- sign of the term
  ss int := 1;      -- sign of the sum
  d float8;
BEGIN
  IF $4 IS NULL OR $1 IS NULL OR $2 IS NULL OR $3 IS NULL THEN RETURN NULL; END IF;
  IF $4 <= 0 THEN RETURN 0; END IF;
  z := $4 / (${num(alpha)} + $3 + $4);
  LOOP
    IF c1 + n < 0 THEN ts := -ts; END IF;
    st := ln(a1 + n) + ln(b1 + n) - ln(abs(c1 + n)) - ln(n + 1) + ln(z);
    lt := lt + st;
    d := abs(ls - lt);
    IF ts = ss THEN
      ls := greatest(ls, lt) + CASE WHEN d > 40 THEN 0 ELSE ln(1 + exp(-d)) END;
    ELSIF lt > ls THEN
      ls := lt + CASE WHEN d > 40 THEN 0 ELSE ln(greatest(1 - exp(-d), 1e-300)) END;
      ss := ts;
    ELSE
      ls := ls + CASE WHEN d > 40 THEN 0 ELSE ln(greatest(1 - exp(-d), 1e-300)) END;
    END IF;
    EXIT WHEN (st < 0 AND c1 + n > 0 AND lt - ln(1 - z) < ls - 37) OR n >= ${HYP2F1_MAX_TERMS - 1};
    n := n + 1;
  END LOOP;
  RETURN (c1 / ${num(a - 1)}) * (1 - ss * exp(greatest(-700, a1 * (ln(${num(alpha)} + $3) - ln(${num(alpha)} + $3 + $4)) + ls)))
         * (${pAliveSql(c.purchase)});
END`;
  return `CREATE OR REPLACE FUNCTION ${name}(float8, float8, float8, float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS ${dollarQuote(body)}`;
}

/**
 * (frequency, recency, age, monetary_value, horizon, discount_rate) -> [p_alive, expected
 * purchases, expected spend, clv]. Without discounting, clv = expected purchases x expected
 * spend; with a rate d per time unit, each time unit's expected purchases are discounted by
 * (1 + d)^i, as lifetimes' customer_lifetime_value does per period.
 */
export function scoresFunctionSql(c: CompiledClv, name: string, purchases: string): string {
  const body = `DECLARE
  e float8 := ${purchases}($1, $2, $3, $5);
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
      cur := ${purchases}($1, $2, $3, least(i, $5));
      v := v + (cur - prev) * s / power(1 + $6, least(i, $5));
      prev := cur;
      i := i + 1;
    END LOOP;
  END IF;
  RETURN ARRAY[${pAliveSql(c.purchase)}, e, s, v];
END`;
  return `CREATE OR REPLACE FUNCTION ${name}(float8, float8, float8, float8, float8, float8) RETURNS float8[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS ${dollarQuote(body)}`;
}

/** The public functions: named arguments, the model's horizon and discount rate as defaults. */
export function publicFunctionsSql(c: CompiledClv, names: { pAlive: string; purchases: string; spend: string; clv: string }, internal: { purchases: string; scores: string }): { name: string; argumentTypes: string; create: string }[] {
  const h = num(c.horizon);
  const d = num(c.discountRate);
  return [
    {
      name: names.pAlive,
      argumentTypes: 'float8, float8, float8',
      create: `CREATE OR REPLACE FUNCTION ${names.pAlive}(frequency float8, recency float8, age float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS ${dollarQuote(`SELECT ${pAliveSql(c.purchase)}`)}`,
    },
    {
      name: names.purchases,
      argumentTypes: 'float8, float8, float8, float8',
      create: `CREATE OR REPLACE FUNCTION ${names.purchases}(frequency float8, recency float8, age float8, horizon float8 DEFAULT ${h}) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS ${dollarQuote(`SELECT ${internal.purchases}($1, $2, $3, $4)`)}`,
    },
    {
      name: names.spend,
      argumentTypes: 'float8, float8',
      create: `CREATE OR REPLACE FUNCTION ${names.spend}(frequency float8, monetary_value float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS ${dollarQuote(`SELECT ${expectedSpendSql(c.spend, '$1', '$2')}`)}`,
    },
    {
      name: names.clv,
      argumentTypes: 'float8, float8, float8, float8, float8, float8',
      create: `CREATE OR REPLACE FUNCTION ${names.clv}(frequency float8, recency float8, age float8, monetary_value float8, horizon float8 DEFAULT ${h}, discount_rate float8 DEFAULT ${d}) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS ${dollarQuote(`SELECT (${internal.scores}($1, $2, $3, $4, $5, $6))[4]`)}`,
    },
  ];
}
