import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';

export const BIN = join(import.meta.dirname, '..', 'bin', 'sqlml.mjs');

/** A sidecar (or any sqlml command) as a real child process, with its output collected. */
export class Child {
  readonly process: ChildProcess;
  output = '';
  constructor(args: string[], env: Record<string, string | undefined> = {}) {
    // with the V8 flag of the bin's shebang (and of npm start)
    this.process = spawn(process.execPath, ['--max-semi-space-size=2', BIN, ...args], {
      env: { ...process.env, SQLML_LOG_LEVEL: 'info', ...env } as NodeJS.ProcessEnv,
    });
    const collect = (b: Buffer) => (this.output += b.toString());
    this.process.stdout!.on('data', collect);
    this.process.stderr!.on('data', collect);
  }

  waitFor(pattern: RegExp, ms = 30_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (pattern.test(this.output)) {
          clearInterval(timer);
          clearTimeout(deadline);
          resolve(this.output);
        } else if (this.process.exitCode !== null) {
          clearInterval(timer);
          clearTimeout(deadline);
          reject(new Error(`exited with ${this.process.exitCode} before ${pattern}:\n${this.output}`));
        }
      };
      const timer = setInterval(check, 25);
      const deadline = setTimeout(() => {
        clearInterval(timer);
        reject(new Error(`timed out waiting for ${pattern}; output so far:\n${this.output}`));
      }, ms);
    });
  }

  exited(): Promise<number | null> {
    return new Promise((resolve) => {
      if (this.process.exitCode !== null || this.process.signalCode !== null) resolve(this.process.exitCode);
      else this.process.on('exit', (code) => resolve(code));
    });
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.process.exitCode === null && this.process.signalCode === null) this.process.kill(signal);
  }
}

/** Starts `sqlml worker` on a database (as the sidecar and reader roles) and waits until it serves. */
export async function sidecar(roles: { sidecarUrl: string; readerUrl: string }, ...args: string[]): Promise<Child> {
  const c = new Child(['worker', '--poll-interval', '500', ...args], { DATABASE_URL: roles.sidecarUrl, SQLML_READER_URL: roles.readerUrl });
  await c.waitFor(/sidecar started/);
  return c;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
    srv.on('error', reject);
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
