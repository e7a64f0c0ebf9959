import { api, type IssuerHealth } from '../api';
import { Loaded, Table, Time, useResource } from '../components';

/** One fetch (discovery or JWKS): whether it worked, and when. */
function FetchState({ fetch }: { fetch: IssuerHealth['discovery'] }) {
  if (fetch.ok === null) return <span class="muted">not fetched yet</span>;
  return (
    <>
      <span class={fetch.ok ? 'ok' : 'failed'}>{fetch.ok ? 'ok' : 'failed'}</span>
      {fetch.at && (
        <>
          {' '}
          <Time iso={fetch.at} />
        </>
      )}
    </>
  );
}

export function Issuers() {
  const issuers = useResource('issuers', api.issuers);
  return (
    <>
      <h1>Issuers</h1>
      <p class="lead">
        The issuers that configs trust, and how the gateway last fetched their discovery document and signing keys. Keys
        already fetched keep working while an issuer is down.
      </p>
      <Loaded resource={issuers} loading="Loading issuers…">
        {(data) => (
          <Table
            caption="Issuers"
            columns={['Issuer', 'Configs', 'Discovery', 'JWKS', 'Key ids', 'Last failure']}
            empty="No issuers: no config trusts one yet."
          >
            {data.issuers.map((issuer) => (
              <tr key={issuer.issuer}>
                <th scope="row" class="wrap">
                  {issuer.issuer}
                </th>
                <td>
                  <ul class="plain">
                    {issuer.configIds.map((id) => (
                      <li key={id}>
                        <a href={`#/configs/${id}`} class="id">
                          {id}
                        </a>
                      </li>
                    ))}
                  </ul>
                </td>
                <td>
                  <FetchState fetch={issuer.discovery} />
                </td>
                <td>
                  <FetchState fetch={issuer.jwks} />
                </td>
                <td>
                  {issuer.jwks.keyIds.length === 0 ? (
                    <span class="muted">none</span>
                  ) : (
                    <ul class="plain">
                      {issuer.jwks.keyIds.map((kid) => (
                        <li key={kid}>
                          <code class="id">{kid}</code>
                        </li>
                      ))}
                    </ul>
                  )}
                </td>
                <td class="wrap">
                  {issuer.lastFailure === null ? (
                    <span class="muted">none</span>
                  ) : (
                    <>
                      <Time iso={issuer.lastFailure.at} />: {issuer.lastFailure.reason}
                    </>
                  )}
                </td>
              </tr>
            ))}
          </Table>
        )}
      </Loaded>
    </>
  );
}
