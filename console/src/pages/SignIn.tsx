import { useState } from 'preact/hooks';
import { api } from '../api';
import { ErrorAlert, Field, errorMessage, useAnnounce } from '../components';
import { useSession } from '../session';

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
      <ErrorAlert message={ssoError} />
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
