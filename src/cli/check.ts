import { planDeclarative, type DeclarativePlan, type SourceFile } from '../domain/declarative.js';
import { lintConfig } from '../domain/lint.js';
import type { IssuerPolicy } from '../domain/m2m-config.js';
import { BUILT_IN_ROLES, type StoredRole } from '../domain/roles.js';
import { messageOf } from '../errors.js';

/** What a gateway starting on an empty database holds: the built-in roles. */
export const OFFLINE_STORE = {
  configs: [],
  roles: BUILT_IN_ROLES.map((role): StoredRole => ({ ...role, origin: 'IMPERATIVE' })),
};

export interface CheckOptions {
  readonly policy: IssuerPolicy;
  /** `--discover`: fetches each valid config's discovery document; rejects with the reason when it fails. */
  readonly discover?: (issuer: string, type: string) => Promise<void>;
}

export interface Located {
  readonly file: string | null;
  readonly document: number | null;
  readonly line: number | null;
  readonly message: string;
}

export interface CheckResult {
  readonly files: number;
  readonly documents: number;
  readonly configs: readonly {
    file: string;
    document: number;
    line: number;
    id: string;
    issuer: string;
    audience: string;
  }[];
  readonly roles: readonly { file: string; document: number; line: number; name: string }[];
  readonly problems: readonly Located[];
  readonly warnings: readonly (Located & { readonly field: string })[];
}

/**
 * `m2m-gateway check`: what the gateway would make of these files on an
 * empty database (docs/reference.md §6.5), offline: the same planDeclarative, the same
 * validation and stored `tests`, plus lint warnings.
 */
export async function checkFiles(files: readonly SourceFile[], options: CheckOptions): Promise<CheckResult> {
  const plan: DeclarativePlan = planDeclarative(files, OFFLINE_STORE, options.policy);
  const problems: Located[] = plan.errors.flatMap((error) =>
    error.problems.map((problem) => ({
      file: error.file,
      document: error.document,
      line: error.file === null ? null : problem.line,
      message: problem.message,
    })),
  );
  const roles = [...OFFLINE_STORE.roles, ...plan.roles.map(({ role }) => role)];
  const warnings = plan.configs.flatMap(({ ref, config, lineOf }) =>
    lintConfig(config, roles).map((warning) => ({
      file: ref.file,
      document: ref.document,
      line: lineOf(warning.field),
      field: warning.field,
      message: warning.message,
    })),
  );
  if (options.discover) {
    for (const { ref, config, lineOf } of plan.configs) {
      try {
        await options.discover(config.issuer, config.type);
      } catch (error) {
        problems.push({
          file: ref.file,
          document: ref.document,
          line: lineOf('issuer'),
          message: `discovery of issuer ${JSON.stringify(config.issuer)} failed: ${messageOf(error)}`,
        });
      }
    }
  }
  const byPlace = (a: Located, b: Located) =>
    (a.file ?? '\uffff').localeCompare(b.file ?? '\uffff') || (a.line ?? 0) - (b.line ?? 0);
  return {
    files: files.length,
    documents: plan.documents,
    configs: plan.configs.map(({ ref, config }) => ({
      ...ref,
      id: config.id,
      issuer: config.issuer,
      audience: config.audience,
    })),
    roles: plan.roles.map(({ ref, role }) => ({ ...ref, name: role.name })),
    problems: problems.sort(byPlace),
    warnings: warnings.sort(byPlace),
  };
}

const plural = (count: number, word: string) => `${count} ${word}${count === 1 ? '' : 's'}`;

/** `file:line: problem` and `file:line: warning: field: message` lines, then a summary. */
export function formatCheck(result: CheckResult): string[] {
  const place = (item: Located) => (item.file === null ? '' : `${item.file}:${item.line}: `);
  return [
    ...result.problems.map((problem) => `${place(problem)}${problem.message}`),
    ...result.warnings.map((warning) => `${place(warning)}warning: ${warning.field}: ${warning.message}`),
    `${plural(result.files, 'file')}, ${plural(result.documents, 'document')}: ` +
      `${plural(result.configs.length, 'valid config')}, ${plural(result.roles.length, 'valid role')}; ` +
      `${plural(result.problems.length, 'problem')}, ${plural(result.warnings.length, 'warning')}`,
  ];
}
