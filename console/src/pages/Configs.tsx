import { api } from '../api';
import { Loaded, Table, useResource } from '../components';
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
      <Loaded resource={configs} loading="Loading configs…">
        {(data) => (
          <Table
            caption="Configs"
            columns={['Issuer', 'Type', 'Audience', 'Origin', 'Lifetime']}
            empty="No configs yet."
          >
            {data.configs.map((config) => (
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
          </Table>
        )}
      </Loaded>
    </>
  );
}
