import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditContext } from '../domain/audit.js';
import { planDeclarative, type DeclarativeError, type DocumentRef, type StoredObjects } from '../domain/declarative.js';
import type { IssuerPolicy } from '../domain/m2m-config.js';
import type { M2mConfigService } from '../domain/m2m-config-service.js';
import { DECLARATIVE_ACTOR } from '../domain/origin.js';
import type { RoleService } from '../domain/role-service.js';
import { GatewayError, messageOf } from '../errors.js';
import { contentHash, readSourceFiles } from './source-files.js';

/** `GET /v1/declarative/status`: what this replica last made of its files. */
export interface DeclarativeStatus {
  /** The directory read; null when DECLARATIVE_CONFIG_DIR is not set. */
  readonly directory: string | null;
  /** When this replica last applied the files (ISO 8601), or null before the first time. */
  readonly lastApplied: string | null;
  readonly documents: number;
  readonly errors: readonly {
    readonly file: string | null;
    readonly document: number | null;
    readonly line: number | null;
    readonly problems: readonly string[];
  }[];
}

export interface DeclarativeConfigsDeps {
  readonly directory: string;
  readonly logger: Logger;
  readonly issuerPolicy: IssuerPolicy;
  /** Every stored config and role, read under the lock. */
  readonly readStored: () => Promise<StoredObjects>;
  /** Services over the plain stores: the caller reloads once after an apply, not after each write. */
  readonly configs: Pick<M2mConfigService, 'applyDeclarative' | 'removeDeclarative'>;
  readonly roles: Pick<RoleService, 'applyDeclarative' | 'removeDeclarative'>;
  /** Runs the apply while no other replica does (a database advisory lock). */
  readonly exclusively: <T>(run: () => Promise<T>) => Promise<T>;
  /** Called after an apply that wrote something, so that this replica serves it at once. */
  readonly afterWrites: () => Promise<void>;
  /** Told each error when it first appears, and how many there are now. */
  readonly onErrors: (appeared: number, current: number) => void;
  readonly now: () => Date;
  /** How often the directory is read (docs/reference.md §6.5: changes apply within 5 s). */
  readonly pollIntervalMs: number;
  /** How often the files are applied again although they did not change (a conflict may have gone away). */
  readonly resyncIntervalMs: number;
}

/** A write the store refused (a conflict, a role still in use): that object is skipped, the others go on. */
const refusedWrite = (error: unknown): string => {
  if (error instanceof GatewayError && error.code !== 'UNAVAILABLE' && error.code !== 'INTERNAL') return error.message;
  throw error;
};

const errorKey = (error: DeclarativeError) =>
  JSON.stringify([error.file, error.document, error.problems.map((p) => p.message)]);

/**
 * Keeps the configs and roles of DECLARATIVE_CONFIG_DIR applied (docs/reference.md §6.5).
 * The directory is read every `pollIntervalMs` and its content hashed:
 * fs.watch misses a ConfigMap's atomic `..data` symlink swap, a hash does
 * not. When the hash changes (and every `resyncIntervalMs`), the files are
 * applied under a database lock: one replica writes, the others find nothing
 * left to write and see the change through the change feed. The writes go
 * through the services, so they are audited (actor `declarative`) and
 * announced like API writes.
 */
export async function startDeclarativeConfigs(deps: DeclarativeConfigsDeps) {
  const { logger, directory } = deps;
  let status: DeclarativeStatus = { directory, lastApplied: null, documents: 0, errors: [] };
  let appliedHash: string | undefined;
  let appliedAt = 0;
  let shownErrors = new Set<string>();
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  async function apply(): Promise<void> {
    const files = await readSourceFiles(directory);
    const hash = contentHash(files);
    const monotonic = performance.now();
    if (hash === appliedHash && monotonic - appliedAt < deps.resyncIntervalMs) return;

    const { plan, refused, wrote } = await deps.exclusively(async () => {
      const plan = planDeclarative(files, await deps.readStored(), deps.issuerPolicy);
      const context: AuditContext = { actor: DECLARATIVE_ACTOR, requestId: randomUUID() };
      const refused: DeclarativeError[] = [];
      const refuse = (ref: DocumentRef | undefined, message: string) =>
        refused.push({
          file: ref?.file ?? null,
          document: ref?.document ?? null,
          line: ref?.line ?? null,
          problems: [{ line: ref?.line ?? 0, message }],
        });
      const source = (ref: DocumentRef) => ({ file: ref.file, document: ref.document });
      const { saveRoles, removeConfigs, saveConfigs, removeRoles } = plan.changes;
      for (const { ref, role } of saveRoles) {
        await deps.roles.applyDeclarative(role, context, source(ref)).catch((e) => refuse(ref, refusedWrite(e)));
      }
      for (const config of removeConfigs) await deps.configs.removeDeclarative(config.id, context);
      for (const { ref, config } of saveConfigs) {
        await deps.configs.applyDeclarative(config, context, source(ref)).catch((e) => refuse(ref, refusedWrite(e)));
      }
      for (const role of removeRoles) {
        await deps.roles
          .removeDeclarative(role.name, context)
          .catch((e) => refuse(undefined, `role ${JSON.stringify(role.name)} stays: ${refusedWrite(e)}`));
      }
      const wrote = saveRoles.length + removeConfigs.length + saveConfigs.length + removeRoles.length;
      return { plan, refused, wrote };
    });
    // At start, also when another replica wrote it all: this one serves the files from its first request.
    if (wrote > 0 || appliedHash === undefined) await deps.afterWrites();

    const errors = [...plan.errors, ...refused];
    const keys = new Set(errors.map(errorKey));
    const appeared = errors.filter((error) => !shownErrors.has(errorKey(error)));
    for (const error of appeared) {
      logger.error(
        {
          file: error.file,
          document: error.document,
          line: error.line,
          problems: error.problems.map((p) => p.message),
        },
        'declarative document not applied; what was applied before stays',
      );
    }
    deps.onErrors(appeared.length, errors.length);
    shownErrors = keys;
    if (hash !== appliedHash || wrote > 0) {
      const { saveRoles, removeConfigs, saveConfigs, removeRoles } = plan.changes;
      logger.info(
        {
          directory,
          documents: plan.documents,
          errors: errors.length,
          saved: { configs: saveConfigs.length, roles: saveRoles.length },
          removed: { configs: removeConfigs.length, roles: removeRoles.length },
        },
        'declarative files applied',
      );
    }
    appliedHash = hash;
    appliedAt = monotonic;
    status = {
      directory,
      lastApplied: deps.now().toISOString(),
      documents: plan.documents,
      errors: errors.map((error) => ({
        file: error.file,
        document: error.document,
        line: error.line,
        problems: error.problems.map((problem) => problem.message),
      })),
    };
  }

  /** One apply at a time; a failure (the database away, the lock busy too long) is logged and tried at the next poll. */
  let lastFailure: string | undefined;
  const applySafely = (): Promise<void> => {
    running ??= apply()
      .then(() => (lastFailure = undefined))
      .catch((error: unknown) => {
        // Every poll fails alike while the database or the directory is away: said once, until it changes.
        if (messageOf(error) === lastFailure) return;
        lastFailure = messageOf(error);
        logger.error({ err: error, directory }, `declarative files could not be applied: ${lastFailure}`);
      })
      .finally(() => (running = undefined));
    return running;
  };

  const schedule = () => {
    if (closed) return;
    timer = setTimeout(() => void applySafely().finally(schedule), deps.pollIntervalMs);
    timer.unref();
  };

  await applySafely();
  schedule();

  return {
    status: (): DeclarativeStatus => status,
    async close(): Promise<void> {
      closed = true;
      clearTimeout(timer);
      await running;
    },
  };
}

export type DeclarativeConfigs = Awaited<ReturnType<typeof startDeclarativeConfigs>>;
