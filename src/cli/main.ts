import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { readSourceFiles } from '../declarative/source-files.js';
import type { SourceFile } from '../domain/declarative.js';
import { issuerUrlProblem, type IssuerPolicy } from '../domain/m2m-config.js';
import { messageOf } from '../errors.js';
import { discoverIssuer } from '../oidc/discovery.js';
import { createHttpsJsonClient } from '../oidc/https-client.js';
import { checkFiles, formatCheck } from './check.js';
import { InputError, explainOffline, formatExplanation } from './explain.js';

/** Exit codes, as documented in the usage and docs/operator-guide.md. */
export const EXIT = { OK: 0, PROBLEMS: 1, USAGE: 2 } as const;

export const USAGE = `Usage:
  m2m-gateway check DIR [--discover] [--json] [OPTIONS]
      Validates the declarative files of DIR (*.yaml, *.yml, *.json; or one such file) offline, as the
      gateway would apply them on an empty database: every problem, every failing test, lint warnings.
      --discover          also fetch each issuer's discovery document (network)
      --ca-file FILE      extra PEM CAs for --discover (as ISSUER_CA_FILE)
  m2m-gateway explain --config FILE|DIR (--claims FILE | --token FILE) [--id ID] [--json] [OPTIONS]
      Explains offline what the config would make of an ID token's claims. A token is decoded, not
      verified: its signature, times and audience are not checked.
      --id ID             the config to use when the files declare several (default: chosen by iss and aud)
      --gateway-issuer U  iss of the access token shown (default http://localhost:8080)
OPTIONS:
  --github-actions-issuers LIST   as GITHUB_ACTIONS_ISSUERS (comma list)
  --kube-issuer URL               the cluster's service-account issuer, for KUBE_SERVICE_ACCOUNT configs
                                  without issuer (the gateway reads it from its own token)
  --json                          machine-readable output on standard output
Exit codes: 0 no problem (explain: GRANTED), 1 problems (explain: REFUSED, or unusable input), 2 usage.
`;

class UsageError extends Error {}

interface Io {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

const COMMON = {
  json: { type: 'boolean' },
  'github-actions-issuers': { type: 'string' },
  'kube-issuer': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function issuerPolicy(values: { 'github-actions-issuers'?: string; 'kube-issuer'?: string }): IssuerPolicy {
  const githubActionsIssuers = (values['github-actions-issuers'] ?? '')
    .split(',')
    .map((issuer) => issuer.trim())
    .filter((issuer) => issuer !== '');
  for (const issuer of [...githubActionsIssuers, ...(values['kube-issuer'] ? [values['kube-issuer']] : [])]) {
    const problem = issuerUrlProblem(issuer);
    if (problem) throw new UsageError(problem);
  }
  const kube = values['kube-issuer'];
  return { githubActionsIssuers, kubeServiceAccountIssuer: () => kube };
}

/** A directory's declarative files, or one file. */
async function readConfigFiles(target: string): Promise<SourceFile[]> {
  let info;
  try {
    info = await stat(target);
  } catch (error) {
    throw new UsageError(`${target} cannot be read (${(error as { code?: string }).code ?? messageOf(error)})`);
  }
  if (info.isDirectory()) return readSourceFiles(target);
  return [{ name: path.basename(target), text: await readFile(target, 'utf8') }];
}

async function readText(file: string, option: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`${option} ${file} cannot be read (${(error as { code?: string }).code ?? messageOf(error)})`);
  }
}

async function check(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...COMMON, discover: { type: 'boolean' }, 'ca-file': { type: 'string' } },
  });
  if (values.help) {
    io.out(USAGE);
    return EXIT.OK;
  }
  if (positionals.length !== 1) throw new UsageError('check takes one directory');
  const policy = issuerPolicy(values);
  const files = await readConfigFiles(positionals[0]!);
  const ca = values['ca-file'] === undefined ? [] : [await readText(values['ca-file'], '--ca-file')];
  const http = values.discover ? createHttpsJsonClient(ca) : undefined;
  try {
    const result = await checkFiles(files, {
      policy,
      discover: http && (async (issuer) => void (await discoverIssuer(http, issuer))),
    });
    if (values.json) io.out(JSON.stringify(result, null, 2));
    else formatCheck(result).forEach((line) => io.out(line));
    return result.problems.length > 0 ? EXIT.PROBLEMS : EXIT.OK;
  } finally {
    http?.close();
  }
}

async function explain(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...COMMON,
      config: { type: 'string' },
      claims: { type: 'string' },
      token: { type: 'string' },
      id: { type: 'string' },
      'gateway-issuer': { type: 'string' },
    },
  });
  if (values.help) {
    io.out(USAGE);
    return EXIT.OK;
  }
  if (positionals.length > 0) throw new UsageError(`explain takes no ${positionals[0]}`);
  if (values.config === undefined) throw new UsageError('explain needs --config FILE');
  if ((values.claims === undefined) === (values.token === undefined)) {
    throw new UsageError('explain needs one of --claims FILE and --token FILE');
  }
  const policy = issuerPolicy(values);
  const files = await readConfigFiles(values.config);
  try {
    const explanation = await explainOffline({
      files,
      claims: values.claims === undefined ? undefined : await readText(values.claims, '--claims'),
      token: values.token === undefined ? undefined : await readText(values.token, '--token'),
      id: values.id,
      policy,
      gatewayIssuer: values['gateway-issuer'] ?? 'http://localhost:8080',
      now: new Date(),
    });
    if (values.json) io.out(JSON.stringify(explanation, null, 2));
    else formatExplanation(explanation).forEach((line) => io.out(line));
    return explanation.decision === 'GRANTED' ? EXIT.OK : EXIT.PROBLEMS;
  } catch (error) {
    if (!(error instanceof InputError)) throw error;
    if (values.json) io.out(JSON.stringify({ error: error.message }, null, 2));
    else io.out(error.message);
    return EXIT.PROBLEMS;
  }
}

/** Runs one command; resolves to its exit code. */
export async function runCli(argv: readonly string[], io: Io): Promise<number> {
  const [command, ...args] = argv;
  try {
    switch (command) {
      case 'check':
        return await check(args, io);
      case 'explain':
        return await explain(args, io);
      case 'help':
      case '--help':
      case '-h':
        io.out(USAGE);
        return EXIT.OK;
      default:
        throw new UsageError(command === undefined ? 'no command given' : `unknown command ${command}`);
    }
  } catch (error) {
    // parseArgs throws TypeErrors with a code for unknown or malformed options.
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`m2m-gateway: ${messageOf(error)}\n\n${USAGE}`);
      return EXIT.USAGE;
    }
    throw error;
  }
}
