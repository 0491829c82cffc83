#!/usr/bin/env node
// Runs the TypeScript sources through tsx, so `npx sqlml` works right after `npm ci` (no build step).
import { register } from 'tsx/esm/api';

register();
await import('../src/cli.ts');
