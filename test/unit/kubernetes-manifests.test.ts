import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { parseAllDocuments } from 'yaml';
import { planDeclarative } from '../../src/domain/declarative.js';
import { BUILT_IN_ROLES } from '../../src/domain/roles.js';
import { SPEC_VARIABLES } from '../fixtures/spec.js';

interface Manifest {
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

const load = (file: string): Manifest[] =>
  parseAllDocuments(readFileSync(new URL(`../../docs/deploy/kubernetes/${file}`, import.meta.url), 'utf8')).map(
    (doc) => {
      expect(doc.errors).toEqual([]);
      return doc.toJS() as Manifest;
    },
  );

const gateway = load('gateway.yaml');
const client = load('example-client.yaml');
const declarative = load('declarative.yaml');
const find = (manifests: Manifest[], kind: string) => {
  const found = manifests.find((m) => m.kind === kind);
  if (!found) throw new Error(`no ${kind}`);
  return found;
};

/* eslint-disable @typescript-eslint/no-explicit-any -- walking parsed YAML */
const deployment = find(gateway, 'Deployment') as any;
const podSpec = deployment.spec.template.spec;
const container = podSpec.containers[0];
const env = Object.fromEntries(container.env.map((e: any) => [e.name, e.value ?? e.valueFrom]));

describe('docs/deploy/kubernetes/gateway.yaml', () => {
  it('sets only docs/reference.md §4 variables, with TokenReview on and the secrets from a Secret', () => {
    expect(Object.keys(env).filter((name) => !SPEC_VARIABLES.includes(name))).toEqual([]);
    expect(env.KUBE_TOKEN_REVIEW).toBe('true');
    expect(env.KUBE_API_URL).toBe('https://kubernetes.default.svc');
    for (const secret of ['DATABASE_URL', 'ADMIN_PASSWORD', 'KEY_ENCRYPTION_KEY']) {
      expect(env[secret]).toEqual({ secretKeyRef: { name: 'm2m-gateway', key: secret } });
    }
  });

  it('runs the pods as the ServiceAccount that is bound to system:auth-delegator', () => {
    const account = find(gateway, 'ServiceAccount');
    const binding = find(gateway, 'ClusterRoleBinding') as any;
    expect(podSpec.serviceAccountName).toBe(account.metadata.name);
    expect(binding.roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: 'system:auth-delegator',
    });
    expect(binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: account.metadata.name, namespace: account.metadata.namespace },
    ]);
    expect(deployment.metadata.namespace).toBe(account.metadata.namespace);
  });

  it('wires the Service, the port and the probes together', () => {
    const service = find(gateway, 'Service') as any;
    expect(service.spec.selector).toEqual(deployment.spec.template.metadata.labels);
    expect(deployment.spec.selector.matchLabels).toEqual(deployment.spec.template.metadata.labels);
    const port = container.ports.find((p: any) => p.name === service.spec.ports[0].targetPort);
    expect(String(port.containerPort)).toBe(env.PORT);
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    expect(podSpec.securityContext.runAsNonRoot).toBe(true);
  });
});

describe('docs/deploy/kubernetes/example-client.yaml', () => {
  const pod = find(client, 'Pod') as any;
  const config = JSON.parse(readFileSync(new URL('../../docs/deploy/kubernetes/config.json', import.meta.url), 'utf8'));
  const projected = pod.spec.volumes[0].projected.sources[0].serviceAccountToken;
  const mount = pod.spec.containers[0].volumeMounts[0];
  const script = pod.spec.containers[0].command.join(' ');

  it('requests a token for the audience the config expects, within the API minimum lifetime', () => {
    expect(projected.audience).toBe(config.config.audience);
    expect(projected.expirationSeconds).toBeGreaterThanOrEqual(600);
    expect(config.config.type).toBe('KUBE_SERVICE_ACCOUNT');
  });

  it('runs as the service account the config maps, and posts the mounted token to the gateway Service', () => {
    expect(pod.spec.serviceAccountName).toBe('builder');
    expect(pod.metadata.namespace).toBe('ci');
    const service = find(gateway, 'Service');
    expect(script).toContain(`http://${service.metadata.name}.${service.metadata.namespace}.svc/v1/auth/m2m/exchange`);
    expect(script).toContain(`${mount.mountPath}/${projected.path}`);
    expect(config.config.mappings.map((m: any) => m.valueExpression)).toEqual(['ci', 'builder']);
  });
});

describe('docs/deploy/kubernetes/declarative.yaml', () => {
  const configMap = find(declarative, 'ConfigMap') as any;
  const withFiles = find(declarative, 'Deployment') as any;
  const spec = withFiles.spec.template.spec;
  const gatewayContainer = spec.containers[0];
  const mount = gatewayContainer.volumeMounts[0];
  const volume = spec.volumes.find((v: any) => v.name === mount.name);

  it("is gateway.yaml's Deployment with the ConfigMap mounted whole and DECLARATIVE_CONFIG_DIR set to it", () => {
    const { volumeMounts: _mounts, env: declarativeEnv, ...container } = gatewayContainer;
    const { env: gatewayEnv, ...original } = podSpec.containers[0];
    expect(container).toEqual(original);
    const names = declarativeEnv.map((e: any) => e.name);
    expect(names.filter((name: string) => !SPEC_VARIABLES.includes(name))).toEqual([]);
    expect(declarativeEnv.filter((e: any) => e.name !== 'DECLARATIVE_CONFIG_DIR')).toEqual(gatewayEnv);
    expect(declarativeEnv.find((e: any) => e.name === 'DECLARATIVE_CONFIG_DIR').value).toBe(mount.mountPath);
    expect(withFiles.metadata).toEqual(deployment.metadata);
    expect(configMap.metadata.namespace).toBe(deployment.metadata.namespace);
    expect(volume.configMap.name).toBe(configMap.metadata.name);
    // A subPath mount never sees ConfigMap updates.
    expect(mount.subPath).toBeUndefined();
    expect(mount.readOnly).toBe(true);
  });

  it('declares configs and roles that the gateway applies without a problem', () => {
    const plan = planDeclarative(
      Object.entries(configMap.data as Record<string, string>).map(([name, text]) => ({ name, text })),
      { configs: [], roles: BUILT_IN_ROLES.map((role) => ({ ...role, origin: 'IMPERATIVE' as const })) },
      { githubActionsIssuers: [], kubeServiceAccountIssuer: () => 'https://kubernetes.default.svc.cluster.local' },
    );
    expect(plan.errors).toEqual([]);
    expect(plan.configs.map(({ config }) => config.type)).toEqual(['KUBE_SERVICE_ACCOUNT']);
    expect(plan.roles.map(({ role }) => role.name)).toEqual(['Deployer']);
  });
});
