import { spawnSync } from 'node:child_process';
import { describe, expect, it } from '@jest/globals';

describe('npm run demo', () => {
  it('runs the tour end to end: config, GitHub-shaped token, exchange, keys, status, audit', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], {
      cwd: new URL('../..', import.meta.url),
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, DATABASE_URL: '' },
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('"roles": [\n    "Continuous Integration",\n    "Analyst"\n  ]');
    expect(run.stdout).toMatch(/"sub": "sso:[0-9a-f-]{36}:12\|octocat"/);
    expect(run.stdout).toContain('"outcome":"refused","reason":"condition repository_owner_id');
    expect(run.stdout).toContain('{"code":16,"message":"no valid role: no mapping of the config matches the ID token"');
    expect(run.stdout).toContain('decision: REFUSED');
    expect(run.stdout).toMatch(
      /FAIL {2}conditions {2}condition repository_owner_id: value \["666"\] does not match "5"/,
    );
    expect(run.stdout).toContain('Done.');
  });
});
