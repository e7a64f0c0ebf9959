import { useState } from 'preact/hooks';
import { api } from '../api';
import { ErrorAlert, Time, errorMessage, useAnnounce, useResource } from '../components';
import { canWrite, useSession } from '../session';

export function Keys() {
  const { session } = useSession();
  const announce = useAnnounce();
  const keys = useResource('keys', api.keys);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  async function rotate() {
    if (busy) return;
    setBusy(true);
    setError('');
    try {
      const { kid } = await api.rotateKey();
      announce(`Rotated: new signing key ${kid}`);
      keys.reload();
    } catch (failure) {
      setError(errorMessage(failure));
    } finally {
      setBusy(false);
    }
  }

  return (
    <>
      <h1>Signing keys</h1>
      <p class="lead">
        The gateway signs the access tokens it mints with its active key. Rotating makes a new key active at once; the
        old key keeps verifying (and stays in the published JWKS) until the last token it signed has expired.
      </p>
      {canWrite(session) && (
        <div class="actions">
          <button type="button" class="primary" onClick={() => void rotate()}>
            Rotate signing key
          </button>
        </div>
      )}
      <ErrorAlert message={error} />
      <ErrorAlert message={keys.error} />
      {keys.loading && keys.data === undefined && <p>Loading keys…</p>}
      {keys.data && (
        <table>
          <caption>Signing keys</caption>
          <thead>
            <tr>
              <th scope="col">Key id</th>
              <th scope="col">Algorithm</th>
              <th scope="col">Created</th>
              <th scope="col">Status</th>
            </tr>
          </thead>
          <tbody>
            {keys.data.keys.length === 0 && (
              <tr>
                <td colSpan={4}>No signing keys yet: the first is made when the gateway starts.</td>
              </tr>
            )}
            {keys.data.keys.map((key) => (
              <tr key={key.kid}>
                <th scope="row">
                  <code class="id">{key.kid}</code>
                </th>
                <td>{key.alg}</td>
                <td>
                  <Time iso={key.createdAt} />
                </td>
                <td class={key.active ? 'ok' : undefined}>{key.active ? 'active' : 'verifying only'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
