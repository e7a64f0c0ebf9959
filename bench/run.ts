/**
 * `npm run bench`: the gateway against three floors (bench/floor-server.ts:
 * Express + jose, node:http + jose, node:http + node:crypto), each in its own process, driven by autocannon from this one
 * with the same pool of distinct RS256 ID tokens. See docs/performance.md.
 *
 * Options: --duration <s> (10), --connections <n> (32), --replicas 2 (also
 * measure two gateway processes on one database), --quick (skip the 100 000
 * exchange memory run), --profile (write a CPU profile of the gateway and
 * each floor into bench/profiles/, and account for their main threads' time
 * per request: sign, verify, socket write, GC, the rest),
 * --only password-storm (only the exchanges-under-a-password-storm rows),
 * --only exchange (only the first table row, one config, with its floors),
 * --baseline <dir> (also measure the gateway built in another checkout, e.g.
 * of the commit before a change, alternated in the same rows).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createPublicKey, type JsonWebKeyInput } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { once } from 'node:events';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { SignJWT, generateKeyPair, importJWK, jwtVerify, type JWK, type JWTPayload } from 'jose';
import pg from 'pg';
import { pino } from 'pino';
import { buildAccessTokenClaims } from '../src/domain/access-token.js';
import { compileMappings, resolveRoles } from '../src/domain/role-mapping.js';
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.js';
import { jwsKey, parseCompactJws, verifiedClaims, verifyCompactJws } from '../src/keys/jws-node-crypto.js';
import { createKeyRing, type StoredSigningKey } from '../src/keys/signing-keys.js';
import { startFakeIssuer } from '../test/fixtures/fake-issuer.js';
import { createTestCa } from '../test/fixtures/test-ca.js';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    replicas: { type: 'string', default: '1' },
    quick: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    only: { type: 'string' },
    baseline: { type: 'string' },
  },
});
if (args.only !== undefined && !['password-storm', 'exchange'].includes(args.only)) {
  throw new Error('--only takes: password-storm, exchange');
}
const DURATION = Number(args.duration);
const CONNECTIONS = Number(args.connections);
const TOKENS = 2000;
const ADMIN = `Basic ${Buffer.from('admin:bench-password').toString('base64')}`;
const KEK = Buffer.alloc(32, 7).toString('base64');
const say = (line: string) => process.stdout.write(`${line}\n`);

const freePort = () =>
  new Promise<number>((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });

/** Spawns a server and resolves once `isReady` says so; its output is kept for the error if it dies. */
async function startProcess(
  command: string,
  argv: string[],
  env: Record<string, string>,
  isReady: () => Promise<boolean>,
) {
  const child = spawn(command, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  for (let attempt = 0; attempt < 300; attempt++) {
    if (child.exitCode !== null) break;
    if (await isReady()) return child;
    await sleep(100);
  }
  child.kill();
  throw new Error(`${command} ${argv.join(' ')} did not become ready:\n${output}`);
}

const answers = (url: string) => () =>
  fetch(url).then(
    () => true,
    () => false,
  );

interface Result {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
  /** CPU time of the server process (all its threads) per request, when known. */
  cpuMsPerRequest?: number;
}

interface Run {
  readonly requests: number;
  readonly errors: number;
  readonly latencies: number[];
}

/** utime + stime of a process, or of its main thread alone, in ms (Linux /proc; clock ticks of 10 ms). */
function cpuMs(pid: number | undefined, mainThread = false): number {
  try {
    const stat = mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`;
    const fields = readFileSync(stat, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}

async function drive(
  url: string,
  tokens: string[],
  options: { duration?: number; amount?: number; connections?: number; until?: Promise<unknown> } = {},
): Promise<Run> {
  let next = 0;
  const latencies: number[] = [];
  const load: autocannon.Options = {
    url: `${url}/v1/auth/m2m/exchange`,
    connections: options.connections ?? CONNECTIONS,
    // Under a password storm an exchange could take seconds; a timeout would drop it from the percentiles.
    timeout: 60,
    ...(options.amount ? { amount: options.amount } : { duration: options.duration ?? DURATION }),
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        setupRequest: (request: autocannon.Request) => ({
          ...request,
          body: JSON.stringify({ idToken: tokens[next++ % tokens.length] }),
        }),
      },
    ],
  };
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(load, (error, done) => (error ? reject(error) : resolve(done))).on(
      'response',
      (_client: unknown, _status: number, _bytes: number, ms: number) => latencies.push(ms),
    );
    const stop = () => instance.stop();
    options.until?.then(stop, stop);
  });
  return {
    requests: result.requests.total,
    errors: result.errors + result.timeouts + result.non2xx,
    latencies,
  };
}

const percentile = (sorted: readonly number[], p: number) =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

/** One or more server processes and how to load them for some seconds. */
interface Target {
  readonly pids: readonly (number | undefined)[];
  drive(seconds: number): Promise<Run>;
}

/** A measured load on one process: when (CLOCK_MONOTONIC, µs, the clock of V8's CPU profiles) and what it served. */
interface LoadWindow {
  readonly fromUs: number;
  readonly toUs: number;
  readonly requests: number;
  readonly mainThreadCpuMs: number;
}
/** Per server process, the rounds it was measured in: its CPU profile is read for those alone (--profile). */
const loadWindows = new Map<number, LoadWindow[]>();
const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);

const target = (server: ChildProcess, url: string, tokens: string[]): Target => ({
  pids: [server.pid],
  drive: async (seconds) => {
    const fromUs = monotonicUs();
    const cpuBefore = cpuMs(server.pid, true);
    const run = await drive(url, tokens, { duration: seconds });
    const window = {
      fromUs,
      toUs: monotonicUs(),
      requests: run.requests,
      mainThreadCpuMs: cpuMs(server.pid, true) - cpuBefore,
    };
    loadWindows.set(server.pid!, [...(loadWindows.get(server.pid!) ?? []), window]);
    return run;
  },
});

const sumCpuMs = (pids: Target['pids']) => pids.reduce<number>((sum, pid) => sum + cpuMs(pid), 0);

/**
 * Measures servers in alternating short rounds (A B, then B A, …) for
 * DURATION seconds each in all: this machine's speed drifts by tens of per
 * cent within a minute, and back-to-back runs would compare the drift.
 */
async function compare(servers: readonly Target[]): Promise<Result[]> {
  const roundSeconds = 2;
  const rounds = Math.max(1, Math.round(DURATION / roundSeconds));
  const totals = servers.map(() => ({ requests: 0, errors: 0, cpuMs: 0, latencies: [] as number[] }));
  for (let round = 0; round < rounds; round++) {
    const order = servers.map((_, i) => i);
    if (round % 2 === 1) order.reverse();
    for (const i of order) {
      const server = servers[i]!;
      const before = sumCpuMs(server.pids);
      const run = await server.drive(roundSeconds);
      const total = totals[i]!;
      total.cpuMs += sumCpuMs(server.pids) - before;
      total.requests += run.requests;
      total.errors += run.errors;
      for (const ms of run.latencies) total.latencies.push(ms);
    }
  }
  return totals.map((total) => {
    const sorted = total.latencies.sort((a, b) => a - b);
    return {
      rps: total.requests / (rounds * roundSeconds),
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      errors: total.errors,
      cpuMsPerRequest: total.cpuMs / total.requests,
    };
  });
}

const ms = (value: number) => `${value.toFixed(1)} ms`;
const ratio = (r: Result, floor: Result | undefined) =>
  floor ? `${(r.rps / floor.rps).toFixed(2)}× rps, p99 ×${(r.p99 / floor.p99).toFixed(2)}` : '—';
/** A table row; `floors` are the three floors measured beside it (Express + jose, node:http + jose, node:crypto). */
const row = (name: string, r: Result, floors: readonly (Result | undefined)[] = []) =>
  `| ${name} | ${r.rps.toFixed(0)} | ${ms(r.p50)} | ${ms(r.p99)} | ${r.errors} | ${r.cpuMsPerRequest?.toFixed(3) ?? '—'} ms | ${[0, 1, 2].map((i) => ratio(r, floors[i])).join(' | ')} |`;
const FLOORS = [
  { kind: 'jose', name: 'floor: Express, jose verify + sign' },
  { kind: 'http-jose', name: 'floor: node:http, jose verify + sign' },
  { kind: 'node-crypto', name: 'floor: node:http, node:crypto verify + sign' },
] as const;

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(' ').at(-1)) : NaN;
}

/**
 * What the database did: transactions, and every scan of the tables an
 * exchange would read if it did not hold them in memory. PostgreSQL publishes these counters with a delay of up to a second,
 * so callers wait before the second reading.
 */
async function databaseActivity(databaseUrl: string) {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const { rows } = await client.query<{ transactions: string; lookups: string }>(`
    SELECT (SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()) AS transactions,
           (SELECT sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0)) FROM pg_stat_user_tables
             WHERE relname IN ('m2m_configs', 'm2m_mappings', 'roles', 'signing_keys')) AS lookups`);
  await client.end();
  return { transactions: Number(rows[0]!.transactions), lookups: Number(rows[0]!.lookups) };
}

async function main(): Promise<void> {
  /** The gateway and the floors, for the CPU profile account. */
  const profiled: { name: string; pid: number }[] = [];
  await measureAll(profiled);
  if (args.profile) await printProfileAccount(profiled);
}

async function measureAll(profiled: { name: string; pid: number }[]): Promise<void> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'm2m-gateway-bench-'));
  const children: ChildProcess[] = [];
  const database = await startEmbeddedPostgres(dataDir, pino({ level: 'silent' }));
  const ca = await createTestCa();
  // RS256, as most issuers sign (GitHub Actions, Kubernetes).
  const issuer = await startFakeIssuer(ca, { algs: ['RS256'] });
  try {
    say(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model}, node ${process.version}`);
    const exp = Math.floor(Date.now() / 1000) + 3600;
    const tokens = await Promise.all(
      Array.from({ length: TOKENS }, (_, i) =>
        issuer.sign({
          sub: `repo:octo-org/app-${i}:ref:refs/heads/main`,
          repository: `octo-org/app-${i}`,
          repository_owner_id: '5',
          ref: 'refs/heads/main',
          run_id: String(i),
          exp,
        }),
      ),
    );

    const startFloor = async (kind: (typeof FLOORS)[number]['kind']) => {
      const port = await freePort();
      const floor = await startProcess(
        'node',
        [
          ...(args.profile ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve('bench/profiles')}`] : []),
          '--import',
          'tsx',
          'bench/floor-server.ts',
          kind,
          String(port),
          issuer.issuer,
          JSON.stringify(issuer.publicKeys()[0]),
        ],
        {},
        answers(`http://127.0.0.1:${port}/`),
      );
      children.push(floor);
      return { process: floor, url: `http://127.0.0.1:${port}` };
    };
    const floors: Awaited<ReturnType<typeof startFloor>>[] = [];
    for (const { kind } of FLOORS) floors.push(await startFloor(kind));

    const startGateway = async (main = 'dist/src/main.js') => {
      const port = await freePort();
      children.push(
        await startProcess(
          'node',
          [...(args.profile ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve('bench/profiles')}`] : []), main],
          {
            PORT: String(port),
            DATABASE_URL: database.url,
            KEY_ENCRYPTION_KEY: KEK,
            // The same for every gateway process, as replicas must have it.
            GATEWAY_ISSUER: 'http://localhost:8080',
            ADMIN_PASSWORD: 'bench-password',
            ISSUER_CA_FILE: ca.file,
            ISSUER_ALLOW_PRIVATE_NETWORKS: '127.0.0.1',
            // The most the limits take: both budgets (per address, per config) are spent on every exchange, as in
            // production, yet one address (the load generator's) is never refused.
            EXCHANGE_RATE_LIMIT: '1000000',
            LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
          },
          () =>
            fetch(`http://127.0.0.1:${port}/readyz`).then(
              (r) => r.ok,
              () => false,
            ),
        ),
      );
      return { url: `http://127.0.0.1:${port}`, process: children.at(-1)! };
    };
    const { url: gatewayUrl, process: gatewayProcess } = await startGateway();

    const configId = '00000000-0000-4000-8000-000000000001';
    const mapping = { key: 'repository', valueExpression: 'octo-org/app-\\d+', role: 'Analyst' };
    const put = await fetch(`${gatewayUrl}/v1/auth/m2m/${configId}`, {
      method: 'PUT',
      headers: { authorization: ADMIN, 'content-type': 'application/json' },
      body: JSON.stringify({
        config: { type: 'GITHUB_ACTIONS', issuer: issuer.issuer, tokenExpirationDuration: '15m', mappings: [mapping] },
      }),
    });
    if (!put.ok) {
      // GITHUB_ACTIONS needs the issuer in GITHUB_ACTIONS_ISSUERS; GENERIC costs the same.
      const generic = await fetch(`${gatewayUrl}/v1/auth/m2m/${configId}`, {
        method: 'PUT',
        headers: { authorization: ADMIN, 'content-type': 'application/json' },
        body: JSON.stringify({
          config: { type: 'GENERIC', issuer: issuer.issuer, tokenExpirationDuration: '15m', mappings: [mapping] },
        }),
      });
      if (!generic.ok) throw new Error(`config: ${await generic.text()}`);
    }
    const check = await fetch(`${gatewayUrl}/v1/auth/m2m/exchange`, {
      method: 'POST',
      body: JSON.stringify({ idToken: tokens[0] }),
    });
    if (!check.ok) throw new Error(`exchange: ${await check.text()}`);

    // Once the admin password is proven, a wrong one is refused by its SHA-256
    // without scrypt, so the storm needs a gateway that has not seen it yet.
    const passwordStorm = async () => {
      const { url } = await startGateway();
      say(`\nwarming up a fresh gateway (5 s)…`);
      await drive(url, tokens, { duration: 5 });
      await measurePasswordStorm(say, url, tokens);
    };
    if (args.only === 'password-storm') return await passwordStorm();

    say(`\nwarming up the floors and the gateway (5 s each)…`);
    for (const { url } of [...floors, { url: gatewayUrl }]) await drive(url, tokens, { duration: 5 });

    const floorTargets = floors.map((floor) => target(floor.process, floor.url, tokens));
    const gatewayTarget = target(gatewayProcess, gatewayUrl, tokens);
    profiled.push(
      { name: 'gateway', pid: gatewayProcess.pid! },
      ...FLOORS.map(({ name }, i) => ({ name: name.replace(/^floor: /, ''), pid: floors[i]!.process.pid! })),
    );
    const baseline =
      args.baseline === undefined ? undefined : await startGateway(path.resolve(args.baseline, 'dist/src/main.js'));
    if (baseline) await drive(baseline.url, tokens, { duration: 5 });
    const baselineTargets = baseline ? [target(baseline.process, baseline.url, tokens)] : [];
    /** The floors and the gateway (and the baseline), in alternating rounds; one table block. */
    const measure = async (name: string) => {
      const results = await compare([...floorTargets, gatewayTarget, ...baselineTargets]);
      const floorResults = results.slice(0, FLOORS.length);
      const [gateway, before] = results.slice(FLOORS.length);
      FLOORS.forEach((floor, i) => say(row(floor.name, floorResults[i]!)));
      say(row(name, gateway!, floorResults));
      if (before) {
        say(row(`baseline (${args.baseline}), ${name.replace(/^gateway, /, '')}`, before, floorResults));
        say(
          `| this gateway / baseline | ${(gateway!.rps / before.rps).toFixed(2)}× | | | | ${(gateway!.cpuMsPerRequest! / before.cpuMsPerRequest!).toFixed(2)}× | | | |`,
        );
      }
      return gateway!;
    };
    say(`\n${CONNECTIONS} connections, ${TOKENS} distinct RS256 ID tokens; each row ${DURATION} s in 2 s rounds,`);
    say('alternating with the three floor rows above it\n');
    say(
      '| server | requests/s | p50 | p99 | errors | CPU per request | / Express + jose floor | / node:http + jose floor | / node:crypto floor |',
    );
    say('|---|---|---|---|---|---|---|---|---|');
    const jwksBefore = issuer.requests.filter((p) => p === '/jwks').length;
    const batchesBefore = await metric(gatewayUrl, 'm2m_audit_batches_written_total');
    const dbBefore = await databaseActivity(database.url);
    const gateway = await measure('gateway, 1 config');
    if (args.only === 'exchange') return;
    await sleep(1500);
    const dbAfter = await databaseActivity(database.url);
    const batchesAfter = await metric(gatewayUrl, 'm2m_audit_batches_written_total');

    // 10 000 more configs, and 100 mappings on the matched one (the matching one last).
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    await client.query(`
      INSERT INTO m2m_configs (id, type, token_expiration_duration, issuer)
        SELECT gen_random_uuid(), 'GENERIC', '1h', 'https://issuer-' || n || '.example.com' FROM generate_series(1, 10000) n;
      INSERT INTO m2m_mappings (config_id, position, key, value_expression, role_name)
        SELECT id, 0, 'sub', 'nobody', 'None' FROM m2m_configs WHERE issuer LIKE 'https://issuer-%';
      DELETE FROM m2m_mappings WHERE config_id = '${configId}';
      INSERT INTO m2m_mappings (config_id, position, key, value_expression, role_name)
        SELECT '${configId}', n, 'repository', 'other-org/app-' || n, 'Admin' FROM generate_series(0, 98) n;
      INSERT INTO m2m_mappings (config_id, position, key, value_expression, role_name)
        VALUES ('${configId}', 99, 'repository', 'octo-org/app-\\d+', 'Analyst');`);
    await client.end();
    for (let i = 0; i < 100 && (await metric(gatewayUrl, 'm2m_configs')) !== 10001; i++) {
      await sleep(100);
    }
    await drive(gatewayUrl, tokens, { duration: 2 });
    const many = await measure('gateway, 10 001 configs, 100 mappings');
    // The same, with the conditions a careful GitHub config has (AND-ed before the mappings).
    const conditions = [
      { key: 'repository_owner_id', valueExpression: '5' },
      { key: 'ref', valueExpression: 'refs/heads/main' },
    ];
    const withConditions = new pg.Client({ connectionString: database.url });
    await withConditions.connect();
    await withConditions.query(`UPDATE m2m_configs SET conditions = $1 WHERE id = $2`, [
      JSON.stringify(conditions),
      configId,
    ]);
    await withConditions.end();
    await sleep(1500);
    await drive(gatewayUrl, tokens, { duration: 2 });
    await measure('gateway, 10 001 configs, 100 mappings, 2 conditions');
    say(
      `\n10 001 configs and 100 mappings / 1 config: ${((100 * many.cpuMsPerRequest!) / gateway.cpuMsPerRequest!).toFixed(1)} % of the CPU per request`,
    );

    say(`\nwhile the first gateway row was measured (${Math.round(gateway.rps * DURATION)} exchanges):`);
    say(
      `  database: ${dbAfter.lookups - dbBefore.lookups} reads of the config, mapping, role and key tables; ` +
        `${dbAfter.transactions - dbBefore.transactions} transactions for ${batchesAfter - batchesBefore} audit batches`,
    );
    say(
      `  JWKS fetches: ${issuer.requests.filter((p) => p === '/jwks').length - jwksBefore} (since start: ${issuer.requests.filter((p) => p === '/jwks').length})`,
    );

    if (!args.quick) {
      const before = await metric(gatewayUrl, 'process_resident_memory_bytes');
      const long = await drive(gatewayUrl, tokens, { amount: 100_000 });
      const after = await metric(gatewayUrl, 'process_resident_memory_bytes');
      say(
        `\nresident memory: ${(before / 2 ** 20).toFixed(1)} MiB before, ${(after / 2 ** 20).toFixed(1)} MiB after 100 000 exchanges (${((after - before) / 2 ** 20).toFixed(1)} MiB growth, ${long.errors} errors)`,
      );
    }

    await measureSigning(say);
    await measureVerification(say, tokens, issuer.publicKeys()[0]!, issuer.issuer);
    measureMappings(say, gateway);
    await passwordStorm();

    if (Number(args.replicas) === 2) {
      const { url: secondUrl, process: secondProcess } = await startGateway();
      await drive(secondUrl, tokens, { duration: 2 });
      const half = Math.max(1, Math.floor(CONNECTIONS / 2));
      const pair: Target = {
        pids: [gatewayProcess.pid, secondProcess.pid],
        async drive(seconds) {
          const runs = await Promise.all(
            [gatewayUrl, secondUrl].map((url) => drive(url, tokens, { duration: seconds, connections: half })),
          );
          return {
            requests: runs[0]!.requests + runs[1]!.requests,
            errors: runs[0]!.errors + runs[1]!.errors,
            latencies: [...runs[0]!.latencies, ...runs[1]!.latencies],
          };
        },
      };
      const [one, two] = await compare([gatewayTarget, pair]);
      say('\n| gateway processes, one database | requests/s | p50 | p99 | errors | CPU per request | scaling |');
      say('|---|---|---|---|---|---|---|');
      const scaling = (name: string, r: Result, scale: string) =>
        row(name, r).replace(/\| — \| — \| — \|$/, `| ${scale} |`);
      say(scaling('one', one!, '—'));
      say(scaling('two, half the connections each', two!, `${((100 * two!.rps) / one!.rps).toFixed(1)} % of one`));
    }
  } finally {
    for (const child of children) child.kill('SIGTERM');
    // Each writes its CPU profile (--profile) as it exits.
    const running = children.filter((child) => child.exitCode === null && child.signalCode === null);
    await Promise.all(running.map((child) => once(child, 'exit')));
    await issuer.close();
    await sleep(500);
    await database.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

const STORM_ADDRESSES = 10;
const GUESSES_PER_ADDRESS = 10;
const STORM_ROUNDS = 2;
const REST_SECONDS = 5;
/** A storm row stops when its last guess is answered, or after this long. */
const STORM_MAX_SECONDS = 30;

/** GET `path` with `headers` from a chosen loopback address; resolves to the status. */
const statusFrom = (localAddress: string, url: string, path: string, headers: Record<string, string>) =>
  new Promise<number>((resolve, reject) => {
    http
      .get(new URL(path, url), { headers, localAddress, agent: false }, (response) => {
        response.resume().on('end', () => resolve(response.statusCode ?? 0));
      })
      .on('error', reject);
  });

/**
 * 100 wrong admin passwords from 10 loopback addresses (127.0.0.x; the
 * gateway budgets guesses per address, so each is a real client to it):
 * each address sends its 10 one after another, so 10 are in flight at a time.
 *
 * @returns how many guesses got each HTTP status
 */
async function passwordStorm(url: string, firstAddress: number): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  await Promise.all(
    Array.from({ length: STORM_ADDRESSES }, async (_, a) => {
      const address = firstAddress + a;
      for (let i = 0; i < GUESSES_PER_ADDRESS; i++) {
        const authorization = `Basic ${Buffer.from(`admin:wrong-${address}-${i}`).toString('base64')}`;
        const status = await statusFrom(`127.0.0.${address}`, url, '/v1/roles', { authorization });
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
      }
    }),
  );
  return statuses;
}

/**
 * Exchange latency at rest against exchange latency while a password storm
 * is answered, in alternating rows (rest, storm, storm, rest). Each storm
 * comes from 10 fresh addresses, so no earlier storm's budget refuses it.
 * Password hashing is deliberately slow (docs/security.md); it must not
 * slow down exchanges.
 */
async function measurePasswordStorm(print: (line: string) => void, url: string, tokens: string[]): Promise<void> {
  const rest: Run[] = [];
  const storm: Run[] = [];
  const statuses = new Map<number, number>();
  let stormSeconds = 0;
  let nextAddress = 2;
  for (let round = 0; round < STORM_ROUNDS; round++) {
    for (const kind of round % 2 === 0 ? ['rest', 'storm'] : ['storm', 'rest']) {
      if (kind === 'rest') {
        rest.push(await drive(url, tokens, { duration: REST_SECONDS }));
        continue;
      }
      const started = performance.now();
      const guesses = passwordStorm(url, nextAddress);
      nextAddress += STORM_ADDRESSES;
      storm.push(await drive(url, tokens, { duration: STORM_MAX_SECONDS, until: guesses }));
      stormSeconds += (performance.now() - started) / 1000;
      // A storm cut off at STORM_MAX_SECONDS finishes before the next row.
      for (const [status, count] of await guesses) statuses.set(status, (statuses.get(status) ?? 0) + count);
    }
  }
  const summary = (runs: Run[]) => {
    const sorted = runs.flatMap((run) => run.latencies).sort((a, b) => a - b);
    return {
      requests: sorted.length,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      errors: runs.reduce((sum, run) => sum + run.errors, 0),
    };
  };
  const atRest = summary(rest);
  const underStorm = summary(storm);
  print(
    `\nexchanges (${CONNECTIONS} connections) at rest (${STORM_ROUNDS} × ${REST_SECONDS} s) and while ` +
      `${STORM_ADDRESSES * GUESSES_PER_ADDRESS} wrong admin passwords arrive from ${STORM_ADDRESSES} addresses ` +
      `(${STORM_ROUNDS} storms, ${stormSeconds.toFixed(1)} s in all), alternating\n`,
  );
  print('| exchanges | requests | p50 | p99 | errors |');
  print('|---|---|---|---|---|');
  for (const [name, r] of [
    ['at rest', atRest],
    ['during the password storm', underStorm],
  ] as const) {
    print(`| ${name} | ${r.requests} | ${ms(r.p50)} | ${ms(r.p99)} | ${r.errors} |`);
  }
  const answers = [...statuses].sort(([a], [b]) => a - b).map(([status, count]) => `${count} × ${status}`);
  print(
    `\npassword storm: p99 during / at rest ×${(underStorm.p99 / atRest.p99).toFixed(2)} (target ≤ ×2); ` +
      `the wrong passwords were answered ${answers.join(', ')}`,
  );
}

/**
 * Role mapping alone, in this process: a row's CPU per request is too noisy
 * here to show a few microseconds, so the mapping cost is also timed directly.
 */
function measureMappings(print: (line: string) => void, gateway: Result): void {
  const claims = new Map([
    ['sub', ['repo:octo-org/app-7:ref:refs/heads/main']],
    ['repository', ['octo-org/app-7']],
  ]);
  const analyst = { key: 'repository', valueExpression: 'octo-org/app-\\d+', role: 'Analyst' };
  const others = Array.from({ length: 99 }, (_, n) => ({
    key: 'repository',
    valueExpression: `other-org/app-${n}`,
    role: 'Admin',
  }));
  const microseconds = (mappings: ReturnType<typeof compileMappings>) => {
    const N = 200_000;
    for (let i = 0; i < N / 10; i++) resolveRoles(mappings, claims);
    const started = performance.now();
    for (let i = 0; i < N; i++) resolveRoles(mappings, claims);
    return ((performance.now() - started) * 1000) / N;
  };
  const one = microseconds(compileMappings([analyst]));
  const hundred = microseconds(compileMappings([...others, analyst]));
  print(
    `\nrole mapping alone: ${one.toFixed(2)} µs with 1 mapping, ${hundred.toFixed(2)} µs with 100 ` +
      `(${((100 * (hundred - one)) / (1000 * gateway.cpuMsPerRequest!)).toFixed(2)} % of the gateway's CPU per request)`,
  );
}

/**
 * As many calls in flight as the bench has connections: one at a time would
 * time the hand-off to a crypto thread and back, not what a busy gateway does.
 */
const IN_FLIGHT = 32;

/** `count` calls of `work`, IN_FLIGHT at a time: calls per second. */
async function callsPerSecond(count: number, work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  for (let done = 0; done < count; done += IN_FLIGHT) await Promise.all(Array.from({ length: IN_FLIGHT }, work));
  return (count / (performance.now() - started)) * 1000;
}

/** The minted-token path alone (claims + sign with the key ring) against raw jose signing. */
async function measureSigning(print: (line: string) => void): Promise<void> {
  const rows: StoredSigningKey[] = [];
  const keyRing = createKeyRing({
    store: {
      list: async () => rows,
      update: async (change) => {
        const { add } = await change(rows);
        if (add) rows.push(add);
      },
    },
    keyEncryptionKey: Buffer.alloc(32, 1),
    alg: 'ES256',
    now: () => new Date(),
    clockSkewSeconds: 30,
  });
  await keyRing.ensureActiveKey();
  const { privateKey } = await generateKeyPair('ES256');
  const claims = new Map([
    ['sub', ['repo:octo-org/app:ref:refs/heads/main']],
    ['repository', ['octo-org/app']],
  ]);
  const N = 20_000;
  const time = (work: () => Promise<unknown>) => callsPerSecond(N, work);
  const mint = () =>
    keyRing.signer.sign(
      buildAccessTokenClaims({
        issuer: 'http://localhost:8080',
        configId: '00000000-0000-4000-8000-000000000001',
        configIncarnation: '00000000-0000-4000-8000-000000000002',
        identity: { userId: '12|octocat', friendlyName: 'octocat' },
        claims,
        roles: ['Analyst'],
        lifetimeSeconds: 900,
        jti: crypto.randomUUID(),
        now: new Date(),
      }),
    );
  const raw = () =>
    new SignJWT({ sub: 'sso:x:12|octocat', roles: ['Analyst'] } as JWTPayload)
      .setProtectedHeader({ alg: 'ES256', kid: 'k' })
      .sign(privateKey);
  await time(mint);
  await time(raw);
  const gatewaySigns = await time(mint);
  const joseSigns = await time(raw);
  print(
    `\nsigning alone (${N} tokens, ${IN_FLIGHT} at a time): gateway mint ${gatewaySigns.toFixed(0)}/s, raw jose ${joseSigns.toFixed(0)}/s (${((100 * gatewaySigns) / joseSigns).toFixed(1)} %)`,
  );
}

/** ID token verification alone: jose's jwtVerify against the node:crypto adapter the gateway uses, same key and checks. */
async function measureVerification(
  print: (line: string) => void,
  tokens: readonly string[],
  jwk: JWK,
  issuer: string,
): Promise<void> {
  const alg = jwk.alg!;
  const joseKey = await importJWK(jwk, alg);
  const nodeKey = jwsKey(createPublicKey({ key: jwk as JsonWebKeyInput['key'], format: 'jwk' }), alg, 'public');
  const options = { issuer, clockTolerance: 30, requiredClaims: ['exp'] };
  const N = 20_000;
  let next = 0;
  const time = async (verify: (token: string) => unknown) =>
    1e6 / (await callsPerSecond(N, async () => verify(tokens[next++ % tokens.length]!)));
  const withJose = (token: string) => jwtVerify(token, joseKey, { ...options, algorithms: [alg] });
  const withNode = async (token: string) => {
    const jws = parseCompactJws(token, [alg]);
    await verifyCompactJws(jws, nodeKey);
    return verifiedClaims(jws, options);
  };
  await time(withJose);
  await time(withNode);
  const jose = await time(withJose);
  const node = await time(withNode);
  print(
    `\nverifying alone (${N} ${alg} tokens, ${IN_FLIGHT} at a time): jose jwtVerify ${jose.toFixed(1)} µs, node:crypto adapter ${node.toFixed(1)} µs per token`,
  );
}

interface CpuProfile {
  readonly nodes: readonly {
    readonly id: number;
    readonly callFrame: { readonly functionName: string; readonly url: string };
  }[];
  /** CLOCK_MONOTONIC, µs. */
  readonly startTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** The calls every server makes, by the function the profile charges them to; the rest is what each adds. */
const PROFILE_PARTS: readonly (readonly [string, (frame: CpuProfile['nodes'][number]['callFrame']) => boolean])[] = [
  ['ES256 sign', (frame) => frame.functionName === 'signOneShot'],
  ['RS256 verify', (frame) => frame.functionName === 'verifyOneShot'],
  [
    'socket write of the answer',
    (frame) => frame.url === '' && /^write(v|Buffer|Utf8String|Latin1String)$/.test(frame.functionName),
  ],
  ['garbage collection', (frame) => frame.functionName === '(garbage collector)'],
];
const REST = 'everything else';
/**
 * The main thread's CPU time by the kernel's count. A profile samples wall
 * time: a call the thread was preempted in is charged the wait, so its parts
 * can add up to more than this.
 */
const MAIN_THREAD_CPU = 'main thread CPU (/proc)';

/**
 * µs of the main thread per request served, from the process's CPU profile:
 * only the samples taken in the rounds it was measured in, idle left out.
 */
async function profileAccount(pid: number): Promise<Map<string, number> | undefined> {
  const directory = path.resolve('bench/profiles');
  const file = (await readdir(directory)).find((name) => name.includes(`.${pid}.0.`) && name.endsWith('.cpuprofile'));
  const windows = loadWindows.get(pid);
  if (!file || !windows) return undefined;
  const profile = JSON.parse(await readFile(path.join(directory, file), 'utf8')) as CpuProfile;
  const partOf = new Map(
    profile.nodes.map(({ id, callFrame }) => [
      id,
      callFrame.functionName === '(idle)'
        ? undefined
        : (PROFILE_PARTS.find(([, matches]) => matches(callFrame))?.[0] ?? REST),
    ]),
  );
  const selfUs = new Map<string, number>();
  let at = profile.startTime;
  profile.samples.forEach((sample, i) => {
    at += profile.timeDeltas[i]!;
    const part = partOf.get(sample);
    if (part && windows.some(({ fromUs, toUs }) => at >= fromUs && at <= toUs)) {
      selfUs.set(part, (selfUs.get(part) ?? 0) + profile.timeDeltas[i]!);
    }
  });
  const requests = windows.reduce((sum, window) => sum + window.requests, 0);
  const cpuUs = windows.reduce((sum, window) => sum + window.mainThreadCpuMs * 1000, 0);
  selfUs.set(MAIN_THREAD_CPU, cpuUs);
  return new Map(
    [...PROFILE_PARTS.map(([part]) => part), REST, MAIN_THREAD_CPU].map((part) => [
      part,
      (selfUs.get(part) ?? 0) / requests,
    ]),
  );
}

/** The gateway's main thread against the floors', per request: where the difference is spent. */
async function printProfileAccount(profiled: readonly { name: string; pid: number }[]): Promise<void> {
  const accounts = await Promise.all(profiled.map(({ pid }) => profileAccount(pid)));
  if (accounts.some((account) => account === undefined)) {
    say('\nno CPU profile to account for');
    return;
  }
  const cell = (us: number) => us.toFixed(1);
  say('\nmain thread, µs per request in the measured rounds (CPU profiles, idle left out):\n');
  say(`| | ${profiled.map(({ name }) => name).join(' | ')} |`);
  say(`|---|${profiled.map(() => '---|').join('')}`);
  for (const part of [...PROFILE_PARTS.map(([name]) => name), REST]) {
    say(`| ${part} | ${accounts.map((account) => cell(account!.get(part)!)).join(' | ')} |`);
  }
  const all = accounts.map((account) =>
    [...account!].reduce((sum, [part, us]) => (part === MAIN_THREAD_CPU ? sum : sum + us), 0),
  );
  say(`| all | ${all.map(cell).join(' | ')} |`);
  say(`| ${MAIN_THREAD_CPU} | ${accounts.map((account) => cell(account!.get(MAIN_THREAD_CPU)!)).join(' | ')} |`);
}

await main();
