import { api } from '../api';
import { ErrorAlert, useResource } from '../components';
import { canWrite, useSession } from '../session';

export function Configs() {
  const { session } = useSession();
  const configs = useResource('configs', api.configs);

  return (
    <>
      <div class="title-row">
        <h1>Configs</h1>
        {canWrite(session) && (
          <a class="button primary" href="#/configs/new">
            New config
          </a>
        )}
      </div>
      <p class="lead">
        Each config trusts one issuer (and audience) and maps the claims of its ID tokens to roles. Select an issuer to
        see or edit its config.
      </p>
      <ErrorAlert message={configs.error} />
      {configs.loading && configs.data === undefined && <p>Loading configs…</p>}
      {configs.data && (
        <table>
          <caption>Configs</caption>
          <thead>
            <tr>
              <th scope="col">Issuer</th>
              <th scope="col">Type</th>
              <th scope="col">Audience</th>
              <th scope="col">Origin</th>
              <th scope="col">Lifetime</th>
            </tr>
          </thead>
          <tbody>
            {configs.data.configs.length === 0 && (
              <tr>
                <td colSpan={5}>No configs yet.</td>
              </tr>
            )}
            {configs.data.configs.map((config) => (
              <tr key={config.id}>
                <th scope="row">
                  <a href={`#/configs/${config.id}`}>{config.issuer}</a>
                </th>
                <td>{config.type}</td>
                <td>{config.audience === '' ? <span class="muted">any</span> : config.audience}</td>
                <td>{config.traits.origin}</td>
                <td>{config.tokenExpirationDuration}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
