/** What the audit trail records (docs/reference.md §4): every config or role change, every key rotation, and every exchange. */
export type AuditAction =
  | 'config.create'
  | 'config.update'
  | 'config.delete'
  | 'config.explain'
  | 'role.create'
  | 'role.update'
  | 'role.delete'
  | 'keys.rotate'
  | 'exchange';

export const AUDIT_OUTCOMES = ['applied', 'minted', 'refused'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

export interface AuditEvent {
  readonly action: AuditAction;
  readonly outcome: AuditOutcome;
  readonly requestId?: string;
  readonly actor?: string;
  readonly configId?: string;
  /** Internal detail, for admins only: never a token or a secret. */
  readonly reason?: string;
  readonly details: Readonly<Record<string, unknown>>;
}

/** Who asked for an admin change, for its audit record. */
export interface AuditContext {
  readonly actor: string;
  readonly requestId: string;
}

export interface AuditTrail {
  /** Records an admin change; resolves once it is stored. */
  record(event: AuditEvent): Promise<void>;
}
