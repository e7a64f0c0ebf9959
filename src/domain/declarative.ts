import { createHash } from 'node:crypto';
import { LineCounter, isMap, isScalar, isSeq, parseAllDocuments, type Document } from 'yaml';
import { GatewayError, messageOf } from '../errors.js';
import { validateM2mConfig, isUuid } from './m2m-config-service.js';
import {
  configFields,
  issuerAndAudienceOf,
  type IssuerPolicy,
  type M2mConfig,
  type StoredM2mConfig,
} from './m2m-config.js';
import { isJsonObject, type JsonObject } from './problems.js';
import { isBuiltInRole, parseRole, type Role, type StoredRole } from './roles.js';

/**
 * Configuration as code (docs/reference.md §6.5): the documents of DECLARATIVE_CONFIG_DIR
 * read into configs and roles, checked by the same code as the API, and
 * compared with what is stored. Pure: the files come in as text, the stored
 * objects as values; the gateway's adapter (src/declarative/) and the CLI
 * (`m2m-gateway check`) do the reading and the writing.
 */

export const CONFIG_KIND = 'AuthMachineToMachineConfig';
export const ROLE_KIND = 'Role';

/** The file names that are read; anything else in the directory (ConfigMap `..data` links included) is not. */
export const DECLARATIVE_FILE = /^[^.].*\.(?:ya?ml|json)$/i;

/** A file larger than this is refused whole. */
export const MAX_DECLARATIVE_FILE_BYTES = 1024 * 1024;

/**
 * Configs without `id` are named by UUID v5 (RFC 9562 §5.5) in this
 * namespace, of `<issuer>` or `<issuer> <audience>`: an issuer holds no space,
 * so the name is unambiguous, and `uuidgen --sha1 --namespace <this> --name
 * <name>` gives the same id.
 */
export const DECLARATIVE_ID_NAMESPACE = '7a6ae0da-8162-4db7-874d-68577caa72d1';

const CONFIG_FIELDS = new Set([
  'kind',
  'id',
  'type',
  'tokenExpirationDuration',
  'mappings',
  'issuer',
  'audience',
  'conditions',
  'maxTokenAge',
  'singleUse',
  'tests',
]);
const ROLE_FIELDS = new Set(['kind', 'name', 'description', 'permissions']);

/** A file of the directory: its name (no directory) and its text, or why it could not be read. */
export type SourceFile =
  { readonly name: string; readonly text: string } | { readonly name: string; readonly unreadable: string };

/** One problem and the line it is about (1-based; the document's first line when nothing closer is known). */
export interface LocatedProblem {
  readonly line: number;
  readonly message: string;
}

/** Where a document is: its file, its number in the file (from 1) and the line it starts on. */
export interface DocumentRef {
  readonly file: string;
  readonly document: number;
  readonly line: number;
}

/**
 * A document that is not applied, with every problem. `file` and `document`
 * are null for a stored object that could not be deleted although its
 * document is gone.
 */
export interface DeclarativeError {
  readonly file: string | null;
  readonly document: number | null;
  readonly line: number | null;
  readonly problems: readonly LocatedProblem[];
}

export interface DeclaredConfig {
  readonly ref: DocumentRef;
  readonly config: M2mConfig;
  /** The line of a field of the document, such as `mappings[2]` or `conditions[0].valueExpression`. */
  readonly lineOf: (field: string) => number;
}

export interface DeclaredRole {
  readonly ref: DocumentRef;
  readonly role: Role;
}

/** What is stored now: every config and role, whatever its origin. */
export interface StoredObjects {
  readonly configs: readonly StoredM2mConfig[];
  readonly roles: readonly StoredRole[];
}

/** The writes that make the store match the files, in the order they must run. */
export interface DeclarativeChanges {
  /** New or changed roles first, so that configs can map them. */
  readonly saveRoles: readonly DeclaredRole[];
  /** Then declarative configs whose documents are gone (their issuer and audience become free)... */
  readonly removeConfigs: readonly StoredM2mConfig[];
  readonly saveConfigs: readonly DeclaredConfig[];
  /** ...and last the declarative roles whose documents are gone, once no config maps them. */
  readonly removeRoles: readonly StoredRole[];
}

export interface DeclarativePlan {
  /** Documents read (empty ones are not counted). */
  readonly documents: number;
  /** Every valid document, applied or already in place. */
  readonly configs: readonly DeclaredConfig[];
  readonly roles: readonly DeclaredRole[];
  /** Every document that is not applied: the stored version, if any, stays. */
  readonly errors: readonly DeclarativeError[];
  readonly changes: DeclarativeChanges;
}

/**
 * The id of a config declared without one: stable for its (issuer, audience),
 * so that re-reading the files finds the same config.
 */
export function declarativeConfigId(issuer: string, audience: string): string {
  const namespace = Buffer.from(DECLARATIVE_ID_NAMESPACE.replaceAll('-', ''), 'hex');
  const name = audience === '' ? issuer : `${issuer} ${audience}`;
  const hash = createHash('sha1').update(namespace).update(name, 'utf8').digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** One non-empty document as parsed, before it is checked. */
interface RawDocument {
  readonly ref: DocumentRef;
  readonly body: JsonObject;
  readonly lineOf: (field: string) => number;
}

interface ReadDocuments {
  readonly documents: RawDocument[];
  readonly errors: DeclarativeError[];
  /** A config or role document whose identity is unknown: what is stored might be it, so nothing of it is deleted. */
  readonly unidentified: { configs: boolean; roles: boolean };
  count: number;
}

const at = (ref: DocumentRef, messages: readonly string[], lineOf?: (message: string) => number): DeclarativeError => ({
  file: ref.file,
  document: ref.document,
  line: ref.line,
  problems: messages.map((message) => ({ line: lineOf?.(message) ?? ref.line, message })),
});

/** `mappings[2].role` → ['mappings', 2, 'role']; `permissions.Image` → ['permissions', 'Image']. */
function fieldPath(field: string): (string | number)[] {
  const path: (string | number)[] = [];
  for (const [, key, index] of field.matchAll(/\.?([A-Za-z_][\w-]*)|\[(\d+)\]/g)) {
    path.push(index === undefined ? key! : Number(index));
  }
  return path;
}

/** The line of the deepest part of `field` that the document has (a member's key, a list's item), or its first line. */
function fieldLine(doc: Document, lines: LineCounter, start: number, field: string): number {
  let line = start;
  let node: unknown = doc.contents;
  for (const segment of fieldPath(field)) {
    let found: unknown;
    let at: { range?: [number, number, number] | null } | undefined;
    if (isMap(node)) {
      const pair = node.items.find((item) => isScalar(item.key) && item.key.value === segment);
      [found, at] = [pair?.value, pair?.key as typeof at];
    } else if (isSeq(node) && typeof segment === 'number') {
      found = node.items[segment];
      at = found as typeof at;
    }
    if (!at?.range) break;
    line = lines.linePos(at.range[0]).line;
    node = found;
  }
  return line;
}

/** The field a problem message starts with (`mappings[0].role "X" does not exist`), or a named test. */
function problemField(body: JsonObject, message: string): string {
  const test = /^test ("(?:[^"\\]|\\.)*")/.exec(message);
  if (test) {
    const name: unknown = JSON.parse(test[1]!);
    const tests = Array.isArray(body.tests) ? body.tests : [];
    const index = tests.findIndex((candidate) => isJsonObject(candidate) && candidate.name === name);
    return index < 0 ? 'tests' : `tests[${index}]`;
  }
  const unknown = /^unknown field "((?:[^"\\]|\\.)*)"/.exec(message);
  if (unknown) return unknown[1]!;
  return /^[A-Za-z_][\w-]*(?:\[\d+\]|\.[A-Za-z_][\w-]*)*/.exec(message)?.[0] ?? '';
}

/** PostgreSQL text holds neither NUL nor unpaired surrogates (the API refuses them too). */
function hasUnstorableString(value: unknown): boolean {
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const item = pending.pop();
    if (typeof item === 'string') {
      if (item.includes('\0') || !item.isWellFormed()) return true;
    } else if (Array.isArray(item)) {
      pending.push(...item);
    } else if (isJsonObject(item)) {
      for (const [key, member] of Object.entries(item)) pending.push(key, member);
    }
  }
  return false;
}

/** Parses every file into documents; syntax errors and unreadable files become errors. */
function readDocuments(files: readonly SourceFile[]): ReadDocuments {
  const result: ReadDocuments = { documents: [], errors: [], unidentified: { configs: false, roles: false }, count: 0 };
  const unknownIdentity = () => {
    result.unidentified.configs = true;
    result.unidentified.roles = true;
  };
  for (const file of [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if ('unreadable' in file) {
      result.errors.push(at({ file: file.name, document: 1, line: 1 }, [file.unreadable]));
      result.count += 1;
      unknownIdentity();
      continue;
    }
    const lines = new LineCounter();
    const docs = parseAllDocuments(file.text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
    docs.forEach((doc, index) => {
      const start = lines.linePos(doc.contents?.range[0] ?? doc.range[0]).line;
      const ref = { file: file.name, document: index + 1, line: start };
      if (doc.errors.length > 0) {
        result.count += 1;
        unknownIdentity();
        result.errors.push({
          ...ref,
          problems: doc.errors.map((error) => ({
            line: lines.linePos(error.pos[0]).line,
            message: `not valid YAML: ${error.message.split('\n')[0]}`,
          })),
        });
        return;
      }
      let body: unknown;
      try {
        body = doc.toJS({ maxAliasCount: 100 });
      } catch (error) {
        body = new Error(messageOf(error));
      }
      if (body === null || body === undefined) return;
      result.count += 1;
      if (body instanceof Error || !isJsonObject(body)) {
        unknownIdentity();
        const why = body instanceof Error ? `cannot be read: ${body.message}` : 'must be a mapping';
        result.errors.push(at(ref, [`the document ${why} (with kind ${CONFIG_KIND} or ${ROLE_KIND})`]));
        return;
      }
      result.documents.push({ ref, body, lineOf: (field) => fieldLine(doc, lines, start, field) });
    });
  }
  return result;
}

/** Problems of the document's own shape: its kind's fields only (a misspelt `conditions` must not vanish), storable. */
function shapeProblems(body: JsonObject, fields: ReadonlySet<string>): string[] {
  const problems = Object.keys(body)
    .filter((field) => !fields.has(field))
    .map(
      (field) => `unknown field ${quoted(field)} (the fields of ${String(body.kind)} are ${[...fields].join(', ')})`,
    );
  if (hasUnstorableString(body)) problems.push('a string holds a NUL character or an unpaired surrogate');
  return problems;
}

const problemsOf = (error: unknown): readonly string[] => {
  if (error instanceof GatewayError) return error.problems;
  throw error;
};

const withoutKindAndId = ({ kind: _kind, id: _id, ...rest }: JsonObject): JsonObject => rest;

/** JSON with object members in key order: jsonb does not keep the order a file wrote them in. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (isJsonObject(value)) {
    const keys = Object.keys(value)
      .filter((key) => value[key] !== undefined)
      .sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonical(value[key])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

const configContent = (config: M2mConfig): string => canonical(configFields(config));

const roleContent = (role: Role): string =>
  canonical({ name: role.name, description: role.description, permissions: role.permissions });

const where = (ref: DocumentRef) => `${ref.file} document ${ref.document}`;
const quoted = JSON.stringify;

/**
 * Reads the files' documents, checks each as the API checks its input
 * (validateM2mConfig, parseRole), and compares the valid ones with what is
 * stored. A document that is not valid — problems, failing `tests`, an
 * (issuer, audience) or id or name that an imperative object holds, a role
 * that will not exist — is listed in `errors`, and what is stored for it
 * stays. A declarative object without a document is deleted, unless some
 * document could not be told apart (a syntax error, no name, no issuer): it
 * might be that one, and nothing is lost because a file broke.
 *
 * @param stored every config and role now stored; `{configs: [], roles: BUILT_IN_ROLES…}` offline
 */
export function planDeclarative(
  files: readonly SourceFile[],
  stored: StoredObjects,
  policy: IssuerPolicy,
): DeclarativePlan {
  const read = readDocuments(files);
  const errors = [...read.errors];
  const configDocs = read.documents.filter(({ body }) => body.kind === CONFIG_KIND);
  const roleDocs = read.documents.filter(({ body }) => body.kind === ROLE_KIND);
  for (const { ref, body } of read.documents) {
    if (body.kind === CONFIG_KIND || body.kind === ROLE_KIND) continue;
    read.unidentified.configs = true;
    read.unidentified.roles = true;
    errors.push(at(ref, [`kind must be ${CONFIG_KIND} or ${ROLE_KIND}, got ${quoted(body.kind ?? null)}`]));
  }

  // Roles first: which exist after this apply decides which mappings are valid.
  const storedRoles = new Map(stored.roles.map((role) => [role.name, role]));
  const declaredRoles: DeclaredRole[] = [];
  const roleNames = new Map<string, DocumentRef>();
  for (const { ref, body, lineOf } of roleDocs) {
    const name = body.name;
    if (typeof name !== 'string' || name === '') {
      read.unidentified.roles = true;
      errors.push(at(ref, ['name must be a non-empty string'], () => lineOf('name')));
      continue;
    }
    const problems = shapeProblems(body, ROLE_FIELDS);
    const earlier = roleNames.get(name);
    if (earlier) problems.push(`name: role ${quoted(name)} is declared in ${where(earlier)} already`);
    else roleNames.set(name, ref);
    if (isBuiltInRole(name)) problems.push(`name: role ${quoted(name)} is built in and cannot be declared`);
    else if (storedRoles.get(name)?.origin === 'IMPERATIVE') {
      problems.push(`name: role ${quoted(name)} was made through the API; delete it there to declare it here`);
    }
    let role: Role | undefined;
    try {
      role = parseRole(name, body);
    } catch (error) {
      problems.push(...problemsOf(error).map((problem) => problem.replace(/^invalid role: /, '')));
    }
    if (problems.length > 0 || !role) errors.push(at(ref, problems, (message) => lineOf(problemField(body, message))));
    else declaredRoles.push({ ref, role });
  }
  const roleGone = (role: StoredRole) =>
    role.origin === 'DECLARATIVE' && !read.unidentified.roles && !roleNames.has(role.name);
  const rolesAfter = new Set([
    ...stored.roles.filter((role) => !roleGone(role)).map((role) => role.name),
    ...declaredRoles.map(({ role }) => role.name),
  ]);

  // Configs: each named by its id or by its (issuer, audience), then validated as Add validates.
  const storedConfigs = new Map(stored.configs.map((config) => [config.id, config]));
  const configIds = new Map<string, DocumentRef>();
  const checked: { doc: RawDocument; id: string; config?: M2mConfig; problems: string[] }[] = [];
  for (const doc of configDocs) {
    const { ref, body, lineOf } = doc;
    const problems = shapeProblems(body, CONFIG_FIELDS);
    let id: string | undefined;
    if (body.id !== undefined && body.id !== '') {
      if (typeof body.id === 'string' && isUuid(body.id)) id = body.id.toLowerCase();
      else problems.push(`id ${quoted(body.id)} is not a UUID`);
    } else {
      const key = issuerAndAudienceOf(body, policy);
      if (key) id = declarativeConfigId(key.issuer, key.audience);
    }
    let config: M2mConfig | undefined;
    try {
      config = { ...validateM2mConfig(withoutKindAndId(body), policy, (name) => rolesAfter.has(name)), id: id ?? '' };
    } catch (error) {
      problems.push(...problemsOf(error));
    }
    if (id === undefined) {
      read.unidentified.configs = true;
      errors.push(at(ref, problems, (message) => lineOf(problemField(body, message))));
      continue;
    }
    const earlier = configIds.get(id);
    if (earlier) problems.push(`id: config ${id} is declared in ${where(earlier)} already`);
    else configIds.set(id, ref);
    if (storedConfigs.get(id)?.origin === 'IMPERATIVE') {
      problems.push(`id: config ${id} was made through the API; delete it there to declare it here`);
    }
    checked.push({ doc, id, config, problems });
  }
  const configGone = (config: StoredM2mConfig) =>
    config.origin === 'DECLARATIVE' && !read.unidentified.configs && !configIds.has(config.id);

  // An (issuer, audience) is free unless a config that stays as it is holds it under another id.
  const pairs = new Map<string, string>();
  const pairOf = (config: M2mConfig) => `${config.issuer} ${config.audience}`;
  const redeclared = new Set(
    checked.filter(({ config, problems }) => config && problems.length === 0).map(({ id }) => id),
  );
  for (const config of stored.configs) {
    if (!configGone(config) && !redeclared.has(config.id)) pairs.set(pairOf(config), config.id);
  }
  const declaredConfigs: DeclaredConfig[] = [];
  const declaredPairs = new Map<string, DocumentRef>();
  for (const { doc, id, config, problems } of checked) {
    if (config) {
      const pair = pairOf(config);
      const holder = storedConfigs.get(pairs.get(pair) ?? '');
      const earlier = declaredPairs.get(pair);
      const taken = `issuer ${quoted(config.issuer)}${config.audience === '' ? ' (no audience)' : ` and audience ${quoted(config.audience)}`}`;
      if (earlier) problems.push(`${taken}: declared in ${where(earlier)} already`);
      else if (holder && holder.id !== id) {
        problems.push(
          holder.origin === 'IMPERATIVE'
            ? `${taken}: config ${holder.id}, made through the API, has them`
            : `${taken}: declarative config ${holder.id} has them, and its document is not valid`,
        );
      }
      declaredPairs.set(pair, doc.ref);
    }
    if (problems.length > 0 || !config) {
      errors.push(at(doc.ref, problems, (message) => doc.lineOf(problemField(doc.body, message))));
    } else {
      declaredConfigs.push({ ref: doc.ref, config, lineOf: doc.lineOf });
    }
  }

  // Updates before creations: a config that moves to another issuer frees its pair for a new one.
  const saveConfigs = declaredConfigs
    .filter(({ config }) => {
      const before = storedConfigs.get(config.id);
      return !before || configContent(before) !== configContent(config);
    })
    .sort((a, b) => Number(storedConfigs.has(b.config.id)) - Number(storedConfigs.has(a.config.id)));
  const removeConfigs = stored.configs.filter(configGone);

  // A role whose document is gone stays while a config that stays names it in a mapping (the database would refuse
  // to delete it) or a test (which could then never pass again).
  const used = new Map<string, string>();
  const use = (config: M2mConfig) => {
    for (const { role } of config.mappings) used.set(role, config.id);
    for (const test of config.tests) for (const role of test.roles) used.set(role, config.id);
  };
  const saved = new Map(saveConfigs.map(({ config }) => [config.id, config]));
  for (const config of stored.configs) if (!configGone(config)) use(saved.get(config.id) ?? config);
  saveConfigs.forEach(({ config }) => use(config));
  const removeRoles: StoredRole[] = [];
  for (const role of stored.roles.filter(roleGone)) {
    const user = used.get(role.name);
    if (user === undefined) {
      removeRoles.push(role);
      continue;
    }
    errors.push({
      file: null,
      document: null,
      line: null,
      problems: [
        {
          line: 0,
          message: `role ${quoted(role.name)} is no longer declared, but config ${user} still uses it, so it stays`,
        },
      ],
    });
  }

  const order = (error: DeclarativeError) =>
    [error.file === null ? 1 : 0, error.file ?? '', error.document ?? 0] as const;
  errors.sort((a, b) => {
    const [x, y] = [order(a), order(b)];
    return x[0] - y[0] || (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0) || x[2] - y[2];
  });
  return {
    documents: read.count,
    configs: declaredConfigs,
    roles: declaredRoles,
    errors,
    changes: {
      saveRoles: declaredRoles.filter(({ role }) => {
        const before = storedRoles.get(role.name);
        return !before || roleContent(before) !== roleContent(role);
      }),
      removeConfigs,
      saveConfigs,
      removeRoles,
    },
  };
}

/** `file:line: problem`, one line per problem, as compilers print them; errors without a file name the object. */
export function formatDeclarativeErrors(errors: readonly DeclarativeError[]): string[] {
  return errors.flatMap((error) =>
    error.problems.map((problem) =>
      error.file === null ? problem.message : `${error.file}:${problem.line}: ${problem.message}`,
    ),
  );
}
