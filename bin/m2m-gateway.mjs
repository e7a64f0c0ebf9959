#!/usr/bin/env node
// The m2m-gateway CLI. It runs the compiled dist/ (`npm run build`; `prepare` builds it on npm ci and npm install)
// unless that is missing or older than the TypeScript sources of a checkout: then the sources run through tsx
// (a dev dependency), so that a checkout never runs a stale build.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = new URL('../dist/src/cli/m2m-gateway.js', import.meta.url);
const sources = new URL('../src/', import.meta.url);

/** The newest modification time of the files under `dir`. */
function newest(dir) {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = `${dir}/${entry.name}`;
    latest = Math.max(latest, entry.isDirectory() ? newest(file) : statSync(file).mtimeMs);
  }
  return latest;
}

const built = existsSync(compiled) ? statSync(compiled).mtimeMs : undefined;
const stale = built === undefined || (existsSync(sources) && newest(fileURLToPath(sources)) > built);
let tsx;
if (stale) tsx = await import('tsx/esm/api').catch(() => undefined);
if (tsx) {
  tsx.register();
  await import(new URL('cli/m2m-gateway.ts', sources).href);
} else if (built !== undefined) {
  await import(compiled.href);
} else {
  process.stderr.write('m2m-gateway: dist/ is missing; run npm run build\n');
  process.exitCode = 1;
}
