import { Fragment } from 'preact';
import { useState } from 'preact/hooks';
import { api, AUDIT_OUTCOMES, type AuditEvent, type Explanation } from '../api';
import {
  ErrorAlert,
  ExplainResult,
  Loaded,
  SelectField,
  Table,
  TextField,
  Time,
  errorMessage,
  useResource,
} from '../components';

interface Filters {
  readonly outcome: string;
  readonly configId: string;
  readonly since: string;
}

const NO_FILTERS: Filters = { outcome: '', configId: '', since: '' };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const RFC_3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

/** Checked here as the server checks them, so that a typo gets its message without a failed request. */
function filterProblem(filters: Filters): string {
  const problems = [];
  if (filters.configId !== '' && !UUID.test(filters.configId)) problems.push('Config id must be a UUID.');
  if (filters.since !== '' && !RFC_3339.test(filters.since)) {
    problems.push('Since must be an RFC 3339 time, e.g. 2026-01-31T09:00:00Z.');
  }
  return problems.join(' ');
}

/** Only a refused exchange whose claims were kept (its token verified) can be explained after the fact. */
const isExplainable = (event: AuditEvent) =>
  event.action === 'exchange' && event.outcome === 'refused' && event.details.claims !== undefined;

/** A refused token's subject is the caller's word until its signature verified; it is shown as such. */
function ActorOrSubject({ event }: { event: AuditEvent }) {
  if (event.actor !== '') return <>{event.actor}</>;
  const { subject, verified } = event.details;
  if (typeof subject !== 'string') return null;
  // <bdi> keeps the caller's text from reordering what follows it (a right-to-left override in `sub`).
  return verified === false ? (
    <>
      <span class="muted">(unverified)</span> <bdi>{subject}</bdi>
    </>
  ) : (
    <bdi>{subject}</bdi>
  );
}

interface Explained {
  readonly eventId: string;
  readonly result?: Explanation;
  readonly error: string;
}

export function Audit() {
  const [form, setForm] = useState<Filters>(NO_FILTERS);
  const [filters, setFilters] = useState<Filters>(NO_FILTERS);
  const [filterError, setFilterError] = useState('');
  const [pageToken, setPageToken] = useState('');
  const [explained, setExplained] = useState<Explained | undefined>(undefined);
  const query = { ...filters, pageToken };
  const page = useResource(JSON.stringify(query), () => api.audit(query));

  function apply(event: Event) {
    event.preventDefault();
    const trimmed = { outcome: form.outcome, configId: form.configId.trim(), since: form.since.trim() };
    const problem = filterProblem(trimmed);
    setFilterError(problem);
    if (problem !== '') return;
    setFilters(trimmed);
    setPageToken('');
    page.reload();
  }

  async function explain(eventId: string) {
    if (explained?.eventId === eventId) {
      setExplained(undefined);
      return;
    }
    setExplained({ eventId, error: '' });
    try {
      const result = await api.explain({ auditEventId: eventId });
      setExplained((old) => (old?.eventId === eventId ? { eventId, result, error: '' } : old));
    } catch (error) {
      setExplained((old) => (old?.eventId === eventId ? { eventId, error: errorMessage(error) } : old));
    }
  }

  return (
    <>
      <h1>Audit log</h1>
      <p class="lead">
        Every config and role change, key rotation, explain and exchange, newest first. Refused exchanges whose token
        verified can be explained step by step.
      </p>
      <form class="filters" onSubmit={apply}>
        <SelectField
          label="Outcome"
          none="any"
          options={AUDIT_OUTCOMES}
          value={form.outcome}
          onValue={(outcome) => setForm((old) => ({ ...old, outcome }))}
        />
        <TextField
          label="Config id"
          code
          value={form.configId}
          onValue={(configId) => setForm((old) => ({ ...old, configId }))}
        />
        <TextField
          label="Since"
          hint="RFC 3339, e.g. 2026-01-31T09:00:00Z"
          code
          value={form.since}
          onValue={(since) => setForm((old) => ({ ...old, since }))}
        />
        <div class="actions">
          <button type="submit" class="primary">
            Apply filters
          </button>
        </div>
      </form>
      <ErrorAlert message={filterError} />
      <Loaded resource={page} loading="Loading events…">
        {(data) => (
          <Table
            caption="Audit events"
            class="audit"
            columns={['Time', 'Action', 'Outcome', 'Config', 'Actor/Subject', 'Reason']}
            empty="No events match."
          >
            {data.events.map((event) => {
              const open = explained?.eventId === event.id;
              return (
                <Fragment key={event.id}>
                  <tr>
                    <td>
                      <Time iso={event.time} />
                    </td>
                    <td>{event.action}</td>
                    <td class={event.outcome === 'refused' ? 'failed' : undefined}>{event.outcome}</td>
                    <td>
                      <code class="id">{event.configId}</code>
                    </td>
                    <td class="wrap">
                      <ActorOrSubject event={event} />
                    </td>
                    <td class="wrap">
                      {event.reason}
                      {isExplainable(event) && (
                        <button
                          type="button"
                          class="small"
                          aria-label={`Explain event ${event.id}`}
                          aria-expanded={open}
                          onClick={() => void explain(event.id)}
                        >
                          Explain
                        </button>
                      )}
                    </td>
                  </tr>
                  {open && explained && (
                    <tr class="explain-row">
                      <td colSpan={6}>
                        <ErrorAlert message={explained.error} />
                        {explained.result ? (
                          <ExplainResult result={explained.result} />
                        ) : (
                          explained.error === '' && <p>Explaining event {event.id}…</p>
                        )}
                      </td>
                    </tr>
                  )}
                </Fragment>
              );
            })}
          </Table>
        )}
      </Loaded>
      <div class="actions">
        {pageToken !== '' && (
          <button type="button" onClick={() => setPageToken('')}>
            First page
          </button>
        )}
        {page.data?.nextPageToken && (
          <button type="button" onClick={() => setPageToken(page.data?.nextPageToken ?? '')}>
            Next page
          </button>
        )}
      </div>
    </>
  );
}
