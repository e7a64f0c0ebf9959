// Builds the admin console (console/) into dist/console: one script and one style sheet, bundled with
// preact, so the gateway serves everything itself (docs/reference.md §6.6: no CDN, nothing fetched at run time).
import { copyFile, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export async function buildConsole(outDir = path.join(root, 'dist', 'console')) {
  await rm(outDir, { recursive: true, force: true });
  await mkdir(path.join(outDir, 'assets'), { recursive: true });
  await build({
    entryPoints: { console: path.join(root, 'console', 'src', 'main.tsx') },
    outdir: path.join(outDir, 'assets'),
    bundle: true,
    minify: true,
    format: 'esm',
    target: 'es2022',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    legalComments: 'linked',
    logLevel: 'warning',
  });
  await copyFile(path.join(root, 'console', 'index.html'), path.join(outDir, 'index.html'));
  return outDir;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildConsole();
