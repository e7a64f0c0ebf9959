import { GatewayError } from '../errors.js';

/**
 * Where a config or role comes from (docs/reference.md §1 `traits.origin`): made through
 * the API, or applied from the files of DECLARATIVE_CONFIG_DIR (§6.5).
 */
export const ORIGINS = ['IMPERATIVE', 'DECLARATIVE'] as const;
export type Origin = (typeof ORIGINS)[number];

/** Where a declarative write comes from (file and document number, from 1), for its audit record. */
export interface DeclarativeSource {
  readonly file: string;
  readonly document: number;
}

/** The actor of changes applied from files, in the audit trail. */
export const DECLARATIVE_ACTOR = 'declarative';

/** docs/reference.md §6.5: the API refuses to change or delete what a file declares; the file is the one place to change it. */
export const declarativeConfigIsReadOnly = (id: string) =>
  new GatewayError('PERMISSION_DENIED', `config ${id} is declarative; change its file`);

export const declarativeRoleIsReadOnly = (name: string) =>
  new GatewayError('PERMISSION_DENIED', `role ${name} is declarative; change its file`);
