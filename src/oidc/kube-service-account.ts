import { readFileSync } from 'node:fs';
import { decodeJwt } from 'jose';

/**
 * The `iss` of the gateway's own service-account token, which an empty
 * KUBE_SERVICE_ACCOUNT issuer stands for (SPEC §3.3). Read on each call: the
 * kubelet rotates the file. Undefined outside a cluster.
 */
export function readOwnServiceAccountIssuer(tokenFile: string): string | undefined {
  try {
    const issuer = decodeJwt(readFileSync(tokenFile, 'utf8').trim()).iss;
    return typeof issuer === 'string' && issuer !== '' ? issuer : undefined;
  } catch {
    return undefined;
  }
}
