import type { FlatClaims } from './claims.js';
import type { M2mConfigType } from './m2m-config.js';

export interface Identity {
  readonly userId: string;
  readonly friendlyName: string;
}

export class IdentityError extends Error {
  override readonly name = 'IdentityError';
}

const single = (claims: FlatClaims, key: string): string | undefined => {
  const values = claims.get(key);
  return values?.length === 1 && values[0] !== '' ? values[0] : undefined;
};

/**
 * Who the exchanged token speaks for (docs/reference.md §3.5), after StackRox's claim
 * extractors.
 *
 * @throws IdentityError when the claims that name the caller are missing
 */
export function identify(type: M2mConfigType, claims: FlatClaims): Identity {
  const sub = claims.get('sub');
  if (!sub || sub.length === 0 || sub.every((v) => v === '')) throw new IdentityError('the ID token has no sub');
  const subject = sub.join(':');

  switch (type) {
    case 'GENERIC': {
      const contact = ['email', 'preferred_username', 'full_name'].map((key) => single(claims, key)).find(Boolean);
      return { userId: contact ? `${subject}|${contact}` : subject, friendlyName: contact ?? subject };
    }
    case 'GITHUB_ACTIONS': {
      const actorId = single(claims, 'actor_id');
      const actor = single(claims, 'actor');
      if (!actorId || !actor) throw new IdentityError('the GitHub Actions token has no actor_id or actor');
      return { userId: `${actorId}|${actor}`, friendlyName: actor };
    }
    case 'KUBE_SERVICE_ACCOUNT': {
      const uid = single(claims, 'kubernetes.io.serviceaccount.uid');
      if (!uid) throw new IdentityError('the Kubernetes token has no kubernetes.io.serviceaccount.uid');
      return { userId: uid, friendlyName: subject };
    }
  }
}
