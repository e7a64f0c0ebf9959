import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { SPEC_VARIABLES } from '../fixtures/spec.js';

const read = (file: string) => readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');

describe('docker-compose.yml', () => {
  const compose = parse(read('docker-compose.yml')) as {
    services: Record<string, { environment?: Record<string, string>; depends_on?: unknown }>;
  };

  it('gives the gateway only variables that docs/reference.md §4 defines', () => {
    const names = Object.keys(compose.services.gateway!.environment ?? {});
    expect(names.filter((name) => !SPEC_VARIABLES.includes(name))).toEqual([]);
    expect(names).toEqual(expect.arrayContaining(['DATABASE_URL', 'KEY_ENCRYPTION_KEY', 'ADMIN_PASSWORD']));
  });

  it('points the gateway at the compose PostgreSQL', () => {
    expect(compose.services.gateway!.environment!.DATABASE_URL).toMatch(/@postgres:5432\//);
    expect(compose.services.gateway!.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string>; engines: { node: string } };

  it('starts the image with the same command as npm start', () => {
    const cmd = /^CMD (\[.*\])$/m.exec(dockerfile)?.[1];
    expect(`exec ${(JSON.parse(cmd!) as string[]).join(' ')}`).toBe(pkg.scripts.start);
  });

  it('builds and runs on the same supported Node LTS, one that package.json engines admits', () => {
    const bases = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((match) => match[1]);
    expect(bases).toHaveLength(2);
    expect(new Set(bases).size).toBe(1);
    const major = Number(/^node:(\d+)-/.exec(bases[0]!)?.[1]);
    expect([22, 24]).toContain(major);
    const minimum = Number(/^>=\s*(\d+)\./.exec(pkg.engines.node)?.[1]);
    expect(minimum).toBeLessThanOrEqual(20);
  });

  it('runs as a non-root user with production dependencies only', () => {
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toContain('npm prune --omit=dev');
    expect(dockerfile).toMatch(/^HEALTHCHECK .*\n.*\/healthz/m);
  });

  it("lets that user write the embedded database's default DATA_DIR", () => {
    expect(dockerfile).toMatch(/^RUN mkdir \/app\/\.data && chown node:node \/app\/\.data$/m);
    expect(dockerfile.indexOf('chown node:node /app/.data')).toBeLessThan(dockerfile.indexOf('USER node'));
  });
});

describe('package.json scripts', () => {
  const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
  const build = JSON.parse(read('tsconfig.build.json')) as { include: string[] };

  it('lets npm start exec node, so that the SIGTERM or SIGINT npm forwards reaches the gateway', () => {
    // Without exec, npm signals the shell that runs the script, which dies and leaves node running.
    expect(pkg.scripts.start).toMatch(/^exec node /);
  });

  it('runs backup and restore from dist/, which the image has (tsx is a dev dependency)', () => {
    expect(pkg.scripts.backup).toBe('node dist/scripts/backup.js');
    expect(pkg.scripts.restore).toBe('node dist/scripts/restore.js');
    expect(build.include).toEqual(expect.arrayContaining(['src', 'scripts/backup.ts', 'scripts/restore.ts']));
  });
});

describe('src/config.ts', () => {
  it('reads exactly the docs/reference.md §4 variables', () => {
    const source = read('src/config.ts');
    const names = new Set(
      [...source.matchAll(/\b(?:read|integer|oneOf|list|httpUrl|bool|duration)\('([A-Z_]+)'/g)].map((m) => m[1]),
    );
    names.add('ADMIN_PASSWORD'); // read raw: a password may start or end with spaces
    expect([...names].sort()).toEqual([...SPEC_VARIABLES].sort());
  });
});
