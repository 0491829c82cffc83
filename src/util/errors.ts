// A UserError is deterministic: the same request fails the same way, so the job fails at once
// with this sentence (no retry). Anything else may be transient; see isTransient().
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

/** Thrown at an iteration boundary when the job was cancelled from SQL (ml_cancel). */
export class JobCancelled extends Error {
  constructor() {
    super('cancelled');
    this.name = 'JobCancelled';
  }
}

/** Thrown at an iteration boundary when the sidecar is shutting down: the job is released. */
export class WorkerStopping extends Error {
  constructor() {
    super('sidecar stopping');
    this.name = 'WorkerStopping';
  }
}

/** Thrown when the job's lease was lost (another sidecar took it over, or it was dropped). */
export class LeaseLost extends Error {
  constructor(jobId: string) {
    super(`lost the lease on job ${jobId}`);
    this.name = 'LeaseLost';
  }
}

// SQLSTATE classes worth another attempt: connection exceptions, serialization failures and
// deadlocks, operator intervention (server shutting down), insufficient resources.
const TRANSIENT = [/^08/, /^40001$/, /^40P01$/, /^57P0[1-3]$/, /^53/];

export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

export function isTransient(err: unknown): boolean {
  if (err instanceof UserError) return false;
  const code = sqlState(err);
  if (code) return TRANSIENT.some((re) => re.test(code));
  const msg = err instanceof Error ? err.message : String(err);
  return /ECONNRESET|ECONNREFUSED|Connection terminated|connection.*(lost|closed)|ETIMEDOUT|EPIPE/i.test(msg);
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
