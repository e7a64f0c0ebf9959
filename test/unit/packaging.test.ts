import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { SPEC_VARIABLES } from '../fixtures/spec.js';

const read = (file: string) => readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');

describe('docker-compose.yml', () => {
  const compose = parse(read('docker-compose.yml')) as {
    services: Record<string, { environment?: Record<string, string>; depends_on?: unknown }>;
  };

  it('gives the gateway only variables that SPEC §4 defines', () => {
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
  const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };

  it('starts the image with the same command as npm start', () => {
    const cmd = /^CMD (\[.*\])$/m.exec(dockerfile)?.[1];
    expect((JSON.parse(cmd!) as string[]).join(' ')).toBe(pkg.scripts.start);
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

describe('src/config.ts', () => {
  it('reads exactly the SPEC §4 variables', () => {
    const source = read('src/config.ts');
    const names = new Set(
      [...source.matchAll(/\b(?:read|integer|oneOf|list|httpUrl|bool)\('([A-Z_]+)'/g)].map((m) => m[1]),
    );
    names.add('ADMIN_PASSWORD'); // read raw: a password may start or end with spaces
    expect([...names].sort()).toEqual([...SPEC_VARIABLES].sort());
  });
});
