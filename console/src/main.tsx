import './styles.css';
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from './api';
import { ErrorAlert, StatusProvider, StatusRegion, errorMessage, focusHeading, useAnnounce } from './components';
import { Audit } from './pages/Audit';
import { ConfigForm } from './pages/ConfigForm';
import { Configs } from './pages/Configs';
import { Explain } from './pages/Explain';
import { Issuers } from './pages/Issuers';
import { Keys } from './pages/Keys';
import { Roles } from './pages/Roles';
import { SignIn } from './pages/SignIn';
import { navigate, useRoute, type Route } from './route';
import { SessionProvider, useSession } from './session';

const SIGNED_OUT_NOTE = 'Signed out. The session token stays valid until it expires; it was removed from this browser.';

const NAV_LINKS = [
  { section: 'configs', label: 'Configs' },
  { section: 'explain', label: 'Explain' },
  { section: 'audit', label: 'Audit log' },
  { section: 'roles', label: 'Roles' },
  { section: 'issuers', label: 'Issuers' },
  { section: 'keys', label: 'Signing keys' },
];

function Page({ route }: { route: Route }) {
  const { session } = useSession();
  if (!session.signedIn) return <SignIn ssoError={route.query.get('error') ?? ''} />;
  if (session.access === 'NO_ACCESS') {
    return (
      <>
        <h1>No access</h1>
        <p>
          You are signed in as {session.user.name}, but your roles ({session.roles.join(', ') || 'none'}) give no access
          to the gateway's admin API. Ask an administrator for a role with Access read or write.
        </p>
      </>
    );
  }
  const [section, id] = route.path;
  switch (section) {
    case 'configs':
    case 'sign-in':
      if (id === undefined || section === 'sign-in') return <Configs />;
      return id === 'new' ? <ConfigForm key="new" id={undefined} /> : <ConfigForm key={id} id={id} />;
    case 'explain':
      return <Explain />;
    case 'audit':
      return <Audit />;
    case 'roles':
      return <Roles />;
    case 'issuers':
      return <Issuers />;
    case 'keys':
      return <Keys />;
    default:
      return (
        <>
          <h1>Page not found</h1>
          <p>
            There is no page here. <a href="#/configs">Go to the configs</a>.
          </p>
        </>
      );
  }
}

function Shell() {
  const { session, setSession } = useSession();
  const route = useRoute();
  const announce = useAnnounce();
  const [signOutError, setSignOutError] = useState('');
  const signingOut = useRef(false);
  const wasSignedIn = useRef(session.signedIn);
  const firstRender = useRef(true);
  const section = route.path[0];
  const pageKey = `${route.path.join('/')}|${session.signedIn}`;

  useEffect(() => {
    if (session.signedIn && section === 'sign-in') window.location.replace('#/configs');
  }, [session.signedIn, section]);

  useEffect(() => {
    if (wasSignedIn.current && !session.signedIn && !signingOut.current) {
      announce('Your session has ended. Sign in again.');
    }
    wasSignedIn.current = session.signedIn;
    signingOut.current = false;
  }, [session.signedIn, announce]);

  // The first page keeps the browser's own starting point; later pages start at their heading.
  useEffect(() => {
    if (firstRender.current) {
      firstRender.current = false;
      return;
    }
    focusHeading();
  }, [pageKey]);

  async function signOut() {
    setSignOutError('');
    try {
      const next = await api.signOut();
      signingOut.current = true;
      setSession(next);
      navigate('#/sign-in');
      announce(SIGNED_OUT_NOTE);
    } catch (error) {
      setSignOutError(errorMessage(error));
    }
  }

  return (
    <>
      <header class="top">
        <p class="brand">m2m-gateway console</p>
        {session.signedIn && session.access !== 'NO_ACCESS' && (
          <nav aria-label="Main">
            <ul>
              {NAV_LINKS.map((link) => (
                <li key={link.section}>
                  <a href={`#/${link.section}`} aria-current={section === link.section ? 'page' : undefined}>
                    {link.label}
                  </a>
                </li>
              ))}
            </ul>
          </nav>
        )}
        {session.signedIn && (
          <div class="user">
            <span>
              Signed in as <strong>{session.user.name}</strong>
              {session.access === 'READ_ACCESS' && ' (read only)'}
            </span>
            <button type="button" onClick={() => void signOut()}>
              Sign out
            </button>
          </div>
        )}
      </header>
      <main class="page">
        <StatusRegion />
        <ErrorAlert message={signOutError} />
        <Page route={route} />
      </main>
    </>
  );
}

function App() {
  return (
    <StatusProvider>
      <SessionProvider>
        <Shell />
      </SessionProvider>
    </StatusProvider>
  );
}

const root = document.getElementById('app');
if (root) render(<App />, root);
