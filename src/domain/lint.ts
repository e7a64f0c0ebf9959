import { GITHUB_ACTIONS_ISSUER, type Condition, type M2mConfigFields, type RoleMapping } from './m2m-config.js';
import { compileWholeValueSet } from './role-mapping.js';
import { grants, type Role } from './roles.js';

/** A risky but valid policy choice, with what to do instead. */
export interface LintWarning {
  /** The part of the config at fault: `audience`, `conditions`, `mappings[2]`, `conditions[0].valueExpression`. */
  readonly field: string;
  readonly message: string;
}

/**
 * Warnings about a valid config's policy: choices Add accepts but that trust
 * more than their author probably meant. Each names the field at fault and
 * what to write instead. The rules:
 *
 * 1. A GitHub issuer signs tokens for every repository it serves, so a
 *    GitHub config needs a condition that pins the owner, unless every
 *    mapping pins it itself.
 * 2. A role that can write access control (Access READ_WRITE) granted by a
 *    mapping on a claim that names no workload (`ref`, `environment`,
 *    `actor`, ...) or by an expression that matches any value (`.*`).
 *    Conditions on the owner do not silence it: within an organization,
 *    such a mapping still grants every workflow of every repository.
 * 3. On GitHub configs, names where GitHub also sends an immutable id
 *    (`repository`, `repository_owner`, `actor`): names can be renamed and
 *    then registered again by someone else.
 * 4. An empty audience on GitHub and Kubernetes configs, which accepts tokens
 *    minted for other services.
 * 5. On GitHub configs, a role that can write anything granted to
 *    `pull_request` runs (by `sub` or `event_name`): they run code nobody has
 *    reviewed yet.
 * 6. Expressions with a `^` that does not start the expression, an
 *    alternative or a group, or a `$` that does not end one: matching is
 *    whole-value, so they can never match there. Also empty alternatives
 *    (`a|`, `(|x)`, `a||b`), which match an empty value. An unescaped `.` is
 *    not flagged. (`a(^b)` is not caught: that needs a real parser.)
 *
 * Pure and cheap: expressions are only scanned and tried on a few sample
 * values, never run against real claims.
 *
 * @param config a config that passed parseM2mConfig
 * @param roles every role, to tell what a mapping's role may do
 */
export function lintConfig(config: M2mConfigFields, roles: readonly Role[]): LintWarning[] {
  const byName = new Map(roles.map((role) => [role.name, role]));
  const writesAccess = (name: string) => grants(listed(byName.get(name)), 'Access', 'READ_WRITE_ACCESS');
  const writesAnything = (name: string) =>
    Object.values(byName.get(name)?.permissions ?? {}).includes('READ_WRITE_ACCESS');
  return [
    ...ownerNotPinned(config),
    ...emptyAudience(config),
    ...broadPrivilegedMappings(config, writesAccess),
    ...pullRequestWrites(config, writesAnything),
    ...namesInsteadOfIds(config),
    ...unmatchableExpressions(config),
  ];
}

const listed = <T>(item: T | undefined): T[] => (item === undefined ? [] : [item]);

const isGitHub = (config: M2mConfigFields): boolean =>
  config.type === 'GITHUB_ACTIONS' ||
  config.issuer === GITHUB_ACTIONS_ISSUER ||
  config.issuer.startsWith(`${GITHUB_ACTIONS_ISSUER}/`);

const describeMapping = (mapping: RoleMapping, index: number): string =>
  `mappings[${index}] (${mapping.key} = ${JSON.stringify(mapping.valueExpression)} → ${mapping.role})`;

// Rule 1 ------------------------------------------------------------------

/**
 * Whether an expression on `key` admits tokens of one owner only: a literal
 * owner or repository id, or a literal prefix that ends the owner's name in
 * every top-level alternative (`acme/.*`, `repo:acme/.*`).
 */
function pinsOwner({ key, valueExpression }: Condition): boolean {
  const prefixes = branches(tokenize(valueExpression)).map(literalPrefix);
  switch (key) {
    case 'repository_owner':
    case 'repository_owner_id':
    case 'repository_id':
      return prefixes.every((prefix) => prefix.whole && prefix.text !== '');
    case 'repository':
    case 'workflow_ref':
      return prefixes.every((prefix) => /^[^/]+\//.test(prefix.text));
    case 'sub':
      return prefixes.every((prefix) => /^repo:[^/:]+\//.test(prefix.text));
    default:
      return false;
  }
}

function ownerNotPinned(config: M2mConfigFields): LintWarning[] {
  if (!isGitHub(config) || config.conditions.some(pinsOwner)) return [];
  const open = config.mappings.flatMap((mapping, index) => (pinsOwner(mapping) ? [] : [{ mapping, index }]));
  if (open.length === 0) return [];
  const who =
    config.issuer === GITHUB_ACTIONS_ISSUER
      ? 'any repository on GitHub'
      : 'any repository of any organization this issuer serves';
  const roles = [...new Set(open.map(({ mapping }) => mapping.role))].join(', ');
  return [
    {
      field: 'conditions',
      message:
        `no condition pins the repository owner, and ${open.map(({ mapping, index }) => describeMapping(mapping, index)).join(', ')} ` +
        `${open.length === 1 ? 'does' : 'do'} not pin it either: this issuer signs tokens for ${who}, and each of them would get ${roles}. ` +
        "Add a condition on repository_owner_id, your organization's numeric id (gh api users/<owner> --jq .id), " +
        'e.g. {"key": "repository_owner_id", "valueExpression": "12345678"}.',
    },
  ];
}

// Rule 2 ------------------------------------------------------------------

/** Claims whose values every repository shares: they say when or how a workflow runs, not which one. */
const BROAD_CLAIMS = new Set([
  'actor',
  'actor_id',
  'base_ref',
  'environment',
  'event_name',
  'head_ref',
  'ref',
  'ref_protected',
  'ref_type',
  'repository_visibility',
  'runner_environment',
  'workflow',
]);

/** Values unrelated to each other: an expression that matches all of them matches about anything. */
const SAMPLE_VALUES = [
  'x',
  '0',
  'true',
  '987654321',
  'refs/heads/evil',
  'evil-org/evil-repo',
  'repo:evil-org/x:pull_request',
];

const matchesAnything = (expression: string): boolean => {
  const matches = wholeValueMatcher(expression);
  return SAMPLE_VALUES.every(matches);
};

function broadPrivilegedMappings(config: M2mConfigFields, writesAccess: (role: string) => boolean): LintWarning[] {
  return config.mappings.flatMap((mapping, index) => {
    if (!writesAccess(mapping.role)) return [];
    const { key, valueExpression, role } = mapping;
    const grant = `mappings[${index}] gives ${role}, which can change access control,`;
    const instead = `Give ${role} by an immutable id of the workload (repository_id, or job_workflow_ref for a reusable workflow)`;
    if (matchesAnything(valueExpression)) {
      return [
        {
          field: `mappings[${index}]`,
          message: `${grant} to every token with a ${key} claim: ${JSON.stringify(valueExpression)} matches any value. ${instead}, matching one exact value.`,
        },
      ];
    }
    if (!BROAD_CLAIMS.has(key)) return [];
    return [
      {
        field: `mappings[${index}]`,
        message:
          `${grant} to every token whose ${key} matches ${JSON.stringify(valueExpression)}, but ${key} names no workload: ` +
          `every repository can have that ${key}, even when conditions pin the owner. ${instead}, and make ${key} a condition.`,
      },
    ];
  });
}

// Rule 3 ------------------------------------------------------------------

/** GitHub claims that are names, the immutable id GitHub sends beside each, and how to look it up. */
const IMMUTABLE_IDS: Readonly<Record<string, { id: string; lookUp: string }>> = {
  repository: { id: 'repository_id', lookUp: 'gh api repos/<owner>/<repo> --jq .id' },
  repository_owner: { id: 'repository_owner_id', lookUp: 'gh api users/<owner> --jq .id' },
  actor: { id: 'actor_id', lookUp: 'gh api users/<login> --jq .id' },
};

function namesInsteadOfIds(config: M2mConfigFields): LintWarning[] {
  if (!isGitHub(config)) return [];
  return entries(config).flatMap(({ where, key }) => {
    const immutable = IMMUTABLE_IDS[key];
    if (!immutable) return [];
    return [
      {
        field: `${where}.key`,
        message:
          `${key} is a name: it can be renamed, and the old name then registered by someone else, whose tokens would match. ` +
          `Match ${immutable.id} instead, GitHub's immutable numeric id (${immutable.lookUp}).`,
      },
    ];
  });
}

// Rule 4 ------------------------------------------------------------------

function emptyAudience(config: M2mConfigFields): LintWarning[] {
  if (config.audience !== '') return [];
  if (config.type === 'GITHUB_ACTIONS') {
    return [
      {
        field: 'audience',
        message:
          'audience is empty, so a token your workflows obtained for another service (e.g. sts.amazonaws.com) is accepted here too, ' +
          'and that service could replay it. Set audience to the one your workflows request: https://github.com/<owner> ' +
          "(GitHub's default, which stackrox/central-login uses), or your own with core.getIDToken(audience).",
      },
    ];
  }
  if (config.type === 'KUBE_SERVICE_ACCOUNT') {
    return [
      {
        field: 'audience',
        message:
          'audience is empty, so any token of the issuer is accepted, including the default token every pod mounts (audience: the API server), ' +
          'which every service a pod talks to may receive. Set audience (e.g. "m2m-gateway") and have workloads mount a projected ' +
          'service-account token requested for it (serviceAccountToken.audience).',
      },
    ];
  }
  return [];
}

// Rule 5 ------------------------------------------------------------------

/** What follows a subject's literal prefix in GitHub's `repo:<owner>/<repo>:pull_request` subjects. */
const PULL_REQUEST_TAILS = ['pull_request', 'x:pull_request', 'x/x:pull_request'];

/** Whether a `sub` expression admits `pull_request` subjects: named, or left open after its literal prefix (`repo:acme/app:.*`). */
function admitsPullRequestSubject(expression: string): boolean {
  if (expression.includes('pull_request')) return true;
  const matches = wholeValueMatcher(expression);
  return branches(tokenize(expression)).some((branch) => {
    const { text } = literalPrefix(branch);
    return PULL_REQUEST_TAILS.some((tail) => matches(text + tail));
  });
}

function admitsPullRequests({ key, valueExpression }: RoleMapping): string | undefined {
  if (key === 'sub') return admitsPullRequestSubject(valueExpression) ? 'pull_request subjects' : undefined;
  if (key !== 'event_name') return undefined;
  const matches = wholeValueMatcher(valueExpression);
  return ['pull_request', 'pull_request_target'].find(matches);
}

function pullRequestWrites(config: M2mConfigFields, writesAnything: (role: string) => boolean): LintWarning[] {
  if (!isGitHub(config)) return [];
  return config.mappings.flatMap((mapping, index) => {
    const what = writesAnything(mapping.role) ? admitsPullRequests(mapping) : undefined;
    if (!what) return [];
    return [
      {
        field: `mappings[${index}]`,
        message:
          `mappings[${index}] gives ${mapping.role}, which can write, to ${what} (${mapping.key} = ${JSON.stringify(mapping.valueExpression)}): ` +
          'a pull request runs code nobody has reviewed yet. Grant write roles to reviewed code only: match a protected ref or ' +
          'environment (e.g. sub = repo:acme/app:ref:refs/heads/main), and give pull requests a read-only role if any.',
      },
    ];
  });
}

// Rule 6 ------------------------------------------------------------------

function unmatchableExpressions(config: M2mConfigFields): LintWarning[] {
  return entries(config).flatMap(({ where, valueExpression }) =>
    expressionMistakes(valueExpression).map((mistake) => ({
      field: `${where}.valueExpression`,
      message: `${JSON.stringify(valueExpression)} ${mistake}`,
    })),
  );
}

/** What is wrong with an expression that compiles, each mistake once. */
function expressionMistakes(expression: string): string[] {
  const tokens = tokenize(expression);
  // With (?m), ^ and $ also match at line breaks inside a value.
  const multiLine = tokens.some((token) => token.kind !== 'literal' && /^\(\?[a-z]*m/.test(token.text));
  const mistakes = new Set<string>();
  tokens.forEach((token, index) => {
    const before = tokens[index - 1]?.kind;
    const after = tokens[index + 1]?.kind;
    if (token.kind === 'caret' && !multiLine && !['open', 'flags', 'bar', 'caret', undefined].includes(before)) {
      mistakes.add(
        'has a ^ after the start, where it can never match: expressions match whole values already, so drop it (or write \\^ for a literal caret).',
      );
    }
    if (token.kind === 'dollar' && !multiLine && !['close', 'bar', 'dollar', undefined].includes(after)) {
      mistakes.add(
        'has a $ before the end, where it can never match: expressions match whole values already, so drop it (or write \\$ for a literal dollar).',
      );
    }
    if (
      token.kind === 'bar' &&
      (['open', 'flags', 'bar', undefined].includes(before) || ['close', 'bar', undefined].includes(after))
    ) {
      mistakes.add(
        'has an empty alternative (a | at the start or end, or ||), which also matches an empty value: remove the stray |, or write (?:x)? if x is meant to be optional.',
      );
    }
  });
  return [...mistakes];
}

// Shared helpers --------------------------------------------------------------

/** Conditions then mappings, with where each is in the config. */
const entries = (config: M2mConfigFields) => [
  ...config.conditions.map((condition, index) => ({ ...condition, where: `conditions[${index}]` })),
  ...config.mappings.map((mapping, index) => ({ ...mapping, where: `mappings[${index}]` })),
];

/** Whole-value matching, as exchanges match (the expressions passed validation, so they compile). */
function wholeValueMatcher(expression: string): (value: string) => boolean {
  const set = compileWholeValueSet([expression]);
  return (value) => set.test(value);
}

/**
 * Just enough of an RE2 expression's structure for these rules: escapes and
 * character classes are single atoms, so `\^`, `\|`, `[^a]` and `[|]` are
 * never taken for anchors or alternation.
 */
interface Token {
  readonly kind: 'literal' | 'atom' | 'quantifier' | 'open' | 'close' | 'flags' | 'bar' | 'caret' | 'dollar';
  /** The source text; for a literal, the one character it matches. */
  readonly text: string;
}

const SINGLE: Readonly<Record<string, Token['kind']>> = {
  ')': 'close',
  '|': 'bar',
  '^': 'caret',
  $: 'dollar',
  '*': 'quantifier',
  '+': 'quantifier',
  '?': 'quantifier',
  '.': 'atom',
};

/** The longest source text at `rest`'s start that is one token, and its kind. */
function nextToken(rest: string): { kind: Token['kind']; source: string; text?: string } {
  const first = rest[0]!;
  if (first === '\\') {
    const quoted = /^\\Q([\s\S]*?)(?:\\E|$)/.exec(rest);
    if (quoted) return { kind: 'atom', source: quoted[0] };
    const escaped = rest[1] ?? '';
    // Escaped punctuation matches itself; letters and digits are classes, anchors or code points.
    if (/[^\p{L}\p{N}]/u.test(escaped)) return { kind: 'literal', source: rest.slice(0, 2), text: escaped };
    return { kind: 'atom', source: /^\\(?:[pP](?:\{[^}]*\}|.)|x(?:\{[^}]*\}|[0-9A-Fa-f]{2})|.)/su.exec(rest)![0] };
  }
  if (first === '[') return { kind: 'atom', source: characterClass(rest) };
  if (first === '(') {
    const flags = /^\(\?[a-zA-Z-]*\)/.exec(rest);
    if (flags) return { kind: 'flags', source: flags[0] };
    return { kind: 'open', source: /^\((?:\?(?:P?<[^>]*>|[a-zA-Z-]*:))?/.exec(rest)![0] };
  }
  const repeat = /^\{\d+(?:,\d*)?\}/.exec(rest);
  if (repeat) return { kind: 'quantifier', source: repeat[0] };
  const character = String.fromCodePoint(rest.codePointAt(0)!);
  return { kind: SINGLE[character] ?? 'literal', source: character, text: character };
}

/** `[...]` at the start of `rest`, skipping escapes, a leading `]` or `^]`, and `[:alpha:]`. */
function characterClass(rest: string): string {
  let end = rest.startsWith('[^') ? 2 : 1;
  if (rest[end] === ']') end += 1;
  while (end < rest.length && rest[end] !== ']') {
    if (rest[end] === '\\') end += 2;
    else if (rest.startsWith('[:', end) && rest.indexOf(':]', end + 2) > 0) end = rest.indexOf(':]', end + 2) + 2;
    else end += 1;
  }
  return rest.slice(0, end + 1);
}

function tokenize(expression: string): Token[] {
  const tokens: Token[] = [];
  for (let at = 0; at < expression.length;) {
    const { kind, source, text } = nextToken(expression.slice(at));
    tokens.push({ kind, text: text ?? source });
    at += source.length;
  }
  return tokens;
}

/** The top-level alternatives of an expression. */
function branches(tokens: readonly Token[]): Token[][] {
  const result: Token[][] = [[]];
  let depth = 0;
  for (const token of tokens) {
    if (token.kind === 'open') depth += 1;
    if (token.kind === 'close') depth -= 1;
    if (token.kind === 'bar' && depth === 0) result.push([]);
    else result.at(-1)!.push(token);
  }
  return result;
}

/**
 * The text every value a branch matches starts with, and whether that text
 * is the whole branch (a literal). Leading `^` and flags are skipped; a
 * character followed by a quantifier ends the prefix.
 */
function literalPrefix(branch: readonly Token[]): { text: string; whole: boolean } {
  let index = 0;
  while (branch[index]?.kind === 'caret' || branch[index]?.kind === 'flags') index += 1;
  let text = '';
  for (; index < branch.length; index += 1) {
    const token = branch[index]!;
    if (token.kind !== 'literal' || branch[index + 1]?.kind === 'quantifier') break;
    text += token.text;
  }
  const rest = branch.slice(index);
  return { text, whole: rest.every((token) => token.kind === 'dollar') };
}
