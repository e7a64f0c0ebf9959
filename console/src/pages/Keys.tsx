import { useState } from 'preact/hooks';
import { api } from '../api';
import { ErrorAlert, Loaded, Table, Time, errorMessage, useAnnounce, useResource } from '../components';
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
      <Loaded resource={keys} loading="Loading keys…">
        {(data) => (
          <Table
            caption="Signing keys"
            columns={['Key id', 'Algorithm', 'Created', 'Status']}
            empty="No signing keys yet: the first is made when the gateway starts."
          >
            {data.keys.map((key) => (
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
          </Table>
        )}
      </Loaded>
    </>
  );
}
