import { useState } from 'preact/hooks';
import { api } from '../api';
import { ErrorAlert, Field, errorMessage, useAnnounce } from '../components';
import { useSession } from '../session';

/**
 * What the gateway's single sign-on failure codes mean. Only these words are
 * shown: a link to this page with any other `error` cannot make the real
 * sign-in page say what its author likes.
 */
const SSO_FAILURES: Readonly<Record<string, string>> = {
  expired: 'Single sign-on expired or was started in another browser. Try again.',
  provider: 'Your identity provider did not sign you in.',
  refused:
    'Single sign-on worked, but the gateway refused your identity: no config for the identity provider gives it a role. An administrator can see why in the audit log.',
  unavailable: 'The gateway could not reach the identity provider. Try again later.',
  failed: 'Single sign-on failed. Try again.',
};

export function SignIn({ ssoError }: { ssoError: string }) {
  const { session, setSession } = useSession();
  const announce = useAnnounce();
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  async function submit(event: Event) {
    event.preventDefault();
    if (busy) return;
    setBusy(true);
    setError('');
    try {
      const next = await api.signIn(password);
      setPassword('');
      // Clears an earlier "Signed out" note, which would be misleading once signed in again.
      announce('');
      setSession(next);
    } catch (failure) {
      setError(errorMessage(failure));
    } finally {
      setBusy(false);
    }
  }

  return (
    <>
      <h1>Sign in</h1>
      <ErrorAlert
        message={
          ssoError === '' ? '' : Object.hasOwn(SSO_FAILURES, ssoError) ? SSO_FAILURES[ssoError]! : SSO_FAILURES.failed!
        }
      />
      <form class="stack narrow" onSubmit={submit}>
        <Field label="Password" hint="The gateway's admin password.">
          {(control) => (
            <input
              {...control}
              type="password"
              name="password"
              autocomplete="current-password"
              required
              value={password}
              onInput={(event) => setPassword(event.currentTarget.value)}
            />
          )}
        </Field>
        <ErrorAlert message={error} />
        <div class="actions">
          <button type="submit" class="primary">
            Sign in
          </button>
        </div>
      </form>
      {session.sso && (
        <div class="stack narrow sso">
          <p>Or sign in with your organization's identity provider.</p>
          <div class="actions">
            {/* A full navigation: the gateway runs the authorization-code flow and redirects back. */}
            <button type="button" onClick={() => window.location.assign('/ui/sso/start')}>
              Sign in with single sign-on
            </button>
          </div>
        </div>
      )}
    </>
  );
}
