import { createContext, type ComponentChildren } from 'preact';
import { useCallback, useContext, useEffect, useMemo, useState } from 'preact/hooks';
import { api, setCsrfToken, setUnauthenticatedHandler, type Session } from './api';
import { ErrorAlert } from './components';

interface SessionValue {
  readonly session: Session;
  readonly setSession: (session: Session) => void;
  /** Asks the gateway again, e.g. after a 401 showed the session is gone. */
  readonly refresh: () => Promise<void>;
}

const SessionContext = createContext<SessionValue | undefined>(undefined);

export function SessionProvider({ children }: { children: ComponentChildren }) {
  const [session, setSessionState] = useState<Session | undefined>(undefined);
  const [error, setError] = useState('');

  const setSession = useCallback((next: Session) => {
    setCsrfToken(next.signedIn ? next.csrfToken : '');
    setSessionState(next);
  }, []);

  const refresh = useCallback(async () => {
    try {
      setSession(await api.session());
      setError('');
    } catch (failure) {
      setError(failure instanceof Error ? failure.message : String(failure));
    }
  }, [setSession]);

  useEffect(() => {
    setUnauthenticatedHandler(() => void refresh());
    void refresh();
  }, [refresh]);

  // Tokens are stateless: when this one expires, ask again rather than let the next call fail with 401.
  const expiresAt = session?.signedIn ? session.expiresAt : undefined;
  useEffect(() => {
    const expiry = expiresAt === undefined ? NaN : Date.parse(expiresAt);
    if (Number.isNaN(expiry)) return;
    const delay = Math.min(Math.max(expiry - Date.now() + 1000, 1000), 2 ** 31 - 1);
    const timer = setTimeout(() => void refresh(), delay);
    return () => clearTimeout(timer);
  }, [expiresAt, refresh]);

  const value = useMemo(
    () => (session === undefined ? undefined : { session, setSession, refresh }),
    [session, setSession, refresh],
  );

  if (value === undefined) {
    return (
      <main class="page">
        {error === '' ? (
          <p>Loading…</p>
        ) : (
          <>
            <h1>m2m-gateway console</h1>
            <ErrorAlert message={error} />
            <button type="button" onClick={() => void refresh()}>
              Try again
            </button>
          </>
        )}
      </main>
    );
  }
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): SessionValue {
  const value = useContext(SessionContext);
  if (value === undefined) throw new Error('useSession is used outside SessionProvider');
  return value;
}

/** Whether the signed-in user may change things; the server enforces it, the console only hides what would fail. */
export const canWrite = (session: Session): boolean => session.signedIn && session.access === 'READ_WRITE_ACCESS';
