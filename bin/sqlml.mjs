#!/usr/bin/env -S node --max-semi-space-size=2
// (a 2 MB young generation: the sidecar's peak memory ~45 MB lower, no slower; docs/performance.md)
// Runs the TypeScript sources through tsx, so `npx sqlml` works right after `npm ci` (no build step).
import { register } from 'tsx/esm/api';

register();
await import('../src/cli.ts');
