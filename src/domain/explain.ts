import { failedPrecondition, notFound } from '../errors.js';
import type { AuditContext, AuditEvent, AuditTrail } from './audit.js';
import { activate } from './config-cache.js';
import { explainClaims, explainToken, type ActiveConfig, type Decision, type ExchangeDeps } from './exchange.js';
import type { M2mConfigFields } from './m2m-config.js';
import type { JsonObject } from './problems.js';

/** What an admin asks to have explained. */
export type ExplainRequest =
  | { readonly idToken: string }
  | { readonly claims: JsonObject; readonly configId: string }
  | { readonly claims: JsonObject; readonly config: unknown }
  | { readonly auditEventId: bigint };

/** The answer: every step, the claims as matched, and what would be minted. */
export interface Explanation {
  readonly decision: 'GRANTED' | 'REFUSED';
  readonly reason: string;
  readonly configId: string;
  readonly steps: Decision['steps'];
  readonly claims: Record<string, readonly string[]>;
  readonly unmatchable: readonly string[];
  readonly conditions: readonly unknown[];
  readonly mappings: readonly unknown[];
  readonly roles: readonly string[];
  readonly accessToken: object;
}

export interface ExplainerDeps {
  readonly exchange: ExchangeDeps;
  readonly configs: { byId(id: string): ActiveConfig | undefined };
  /** Validates an unsaved config exactly as Add would. */
  readonly validate: (input: unknown) => Promise<M2mConfigFields>;
  readonly audit: AuditTrail & { get(id: bigint): Promise<AuditEvent | undefined> };
}

/** A decision as explain answers it (the API and the CLI). */
export function toExplanation(decision: Decision): Explanation {
  return {
    decision: decision.refusal ? 'REFUSED' : 'GRANTED',
    reason: decision.reason ?? '',
    configId: decision.active?.config.id ?? '',
    steps: decision.steps,
    claims: Object.fromEntries(decision.claims ?? []),
    unmatchable: decision.unmatchable,
    conditions: decision.policy?.conditions ?? [],
    mappings: decision.policy?.mappings ?? [],
    roles: decision.roles,
    accessToken: decision.accessClaims ?? {},
  };
}

/**
 * Explain: the decision an exchange would make, step by step, without
 * minting or spending a single-use id. Every explain is audited with its actor.
 */
export function createExplainer(deps: ExplainerDeps) {
  const stored = (configId: string): ActiveConfig => {
    const active = deps.configs.byId(configId.toLowerCase());
    if (!active) throw notFound(`machine-to-machine config ${JSON.stringify(configId)} not found`);
    return active;
  };

  async function decide(request: ExplainRequest): Promise<Decision> {
    if ('idToken' in request) return explainToken(deps.exchange, request.idToken);
    if ('configId' in request) return explainClaims(deps.exchange, stored(request.configId), request.claims);
    if ('config' in request) {
      const fields = await deps.validate(request.config);
      return explainClaims(
        deps.exchange,
        activate({ ...fields, id: '', incarnation: '', origin: 'IMPERATIVE' }),
        request.claims,
      );
    }
    const event = await deps.audit.get(request.auditEventId);
    if (!event || event.action !== 'exchange') {
      throw notFound(`audit event ${request.auditEventId} of an exchange not found`);
    }
    const claims = event.details.claims;
    if (event.outcome !== 'refused' || typeof claims !== 'object' || claims === null || !event.configId) {
      throw failedPrecondition(
        `audit event ${request.auditEventId} keeps no claims to explain: only refused exchanges whose token verified do`,
      );
    }
    return explainClaims(deps.exchange, stored(event.configId), claims as JsonObject);
  }

  return async function explain(request: ExplainRequest, context: AuditContext): Promise<Explanation> {
    const kind = 'idToken' in request ? 'idToken' : 'auditEventId' in request ? 'auditEventId' : 'claims';
    const asked = 'auditEventId' in request ? { auditEventId: String(request.auditEventId) } : {};
    let explanation: Explanation;
    try {
      explanation = toExplanation(await decide(request));
    } catch (error) {
      // An explain that could not be answered is recorded too: probing for events or configs leaves a trace.
      await deps.audit.record({
        action: 'config.explain',
        outcome: 'refused',
        ...context,
        reason: error instanceof Error ? error.message : String(error),
        details: { request: kind, ...asked },
      });
      throw error;
    }
    await deps.audit.record({
      action: 'config.explain',
      outcome: 'applied',
      ...context,
      configId: explanation.configId || undefined,
      details: { request: kind, ...asked, decision: explanation.decision, reason: explanation.reason },
    });
    return explanation;
  };
}

export type Explain = ReturnType<typeof createExplainer>;
