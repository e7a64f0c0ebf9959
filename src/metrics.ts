import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface MetricsSources {
  /** How many configs are held in memory. */
  readonly configCount: () => number;
  /** How many signing keys are published. */
  readonly publishedKeyCount: () => number;
}

/**
 * The gateway's Prometheus metrics (`GET /metrics`). One registry per
 * gateway, so that several in one process (tests) do not collide.
 */
export function createMetrics(sources: MetricsSources) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const exchanges = new Counter({
    name: 'm2m_exchanges_total',
    help: 'Token exchanges by outcome (minted, refused) and config type',
    labelNames: ['outcome', 'config_type'] as const,
    registers: [registry],
  });
  const exchangeSeconds = new Histogram({
    name: 'm2m_exchange_duration_seconds',
    help: 'Time to answer a token exchange',
    labelNames: ['outcome'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const issuerFetches = new Counter({
    name: 'm2m_issuer_fetches_total',
    help: 'Discovery and JWKS fetches per issuer, by result',
    labelNames: ['issuer', 'document', 'result'] as const,
    registers: [registry],
  });
  const auditWrites = new Counter({
    name: 'm2m_audit_batches_written_total',
    help: 'Inserts of queued exchange audit records (one per batch)',
    registers: [registry],
  });
  const rateLimited = new Counter({
    name: 'm2m_rate_limited_total',
    help: 'Requests refused with 429, by endpoint group',
    labelNames: ['endpoint'] as const,
    registers: [registry],
  });
  const declarativeErrors = new Counter({
    name: 'm2m_declarative_errors_total',
    help: 'Declarative documents that were not applied (each error counted once, when it appears)',
    registers: [registry],
  });
  const declarativeErrorsNow = new Gauge({
    name: 'm2m_declarative_errors',
    help: 'Declarative documents not applied at the last apply of DECLARATIVE_CONFIG_DIR',
    registers: [registry],
  });
  new Gauge({
    name: 'm2m_configs',
    help: 'Machine-to-machine configs held in memory',
    registers: [registry],
    collect() {
      this.set(sources.configCount());
    },
  });
  new Gauge({
    name: 'm2m_signing_keys_published',
    help: 'Signing keys in the JWKS',
    registers: [registry],
    collect() {
      this.set(sources.publishedKeyCount());
    },
  });

  return {
    registry,
    exchangeFinished(outcome: 'minted' | 'refused', configType: string, seconds: number): void {
      exchanges.inc({ outcome, config_type: configType });
      exchangeSeconds.observe({ outcome }, seconds);
    },
    issuerFetched(issuer: string, document: 'discovery' | 'jwks', ok: boolean): void {
      issuerFetches.inc({ issuer, document, result: ok ? 'ok' : 'error' });
    },
    auditBatchWritten(): void {
      auditWrites.inc();
    },
    rateLimited(endpoint: 'exchange' | 'admin'): void {
      rateLimited.inc({ endpoint });
    },
    /** After an apply of the declarative files: errors that appeared since the last one, and how many there are. */
    declarativeErrors(appeared: number, current: number): void {
      declarativeErrors.inc(appeared);
      declarativeErrorsNow.set(current);
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
