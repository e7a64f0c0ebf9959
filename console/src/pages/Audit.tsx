import { Fragment } from 'preact';
import { useState } from 'preact/hooks';
import { api, AUDIT_OUTCOMES, type AuditEvent, type Explanation } from '../api';
import { ErrorAlert, ExplainResult, Field, TextField, Time, errorMessage, useResource } from '../components';

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

const isRefusedExchange = (event: AuditEvent) => event.action === 'exchange' && event.outcome === 'refused';

const actorOrSubject = (event: AuditEvent): string =>
  event.actor !== '' ? event.actor : typeof event.details.subject === 'string' ? event.details.subject : '';

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

  const events = page.data?.events ?? [];
  return (
    <>
      <h1>Audit log</h1>
      <p class="lead">
        Every config and role change, key rotation, explain and exchange, newest first. Refused exchanges whose token
        verified can be explained step by step.
      </p>
      <form class="filters" onSubmit={apply}>
        <Field label="Outcome">
          {(control) => (
            <select
              {...control}
              value={form.outcome}
              onChange={(event) => {
                const outcome = event.currentTarget.value;
                setForm((old) => ({ ...old, outcome }));
              }}
            >
              <option value="">any</option>
              {AUDIT_OUTCOMES.map((outcome) => (
                <option key={outcome} value={outcome}>
                  {outcome}
                </option>
              ))}
            </select>
          )}
        </Field>
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
      <ErrorAlert message={page.error} />
      {page.loading && page.data === undefined && <p>Loading events…</p>}
      {page.data && (
        <table class="audit">
          <caption>Audit events</caption>
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Action</th>
              <th scope="col">Outcome</th>
              <th scope="col">Config</th>
              <th scope="col">Actor/Subject</th>
              <th scope="col">Reason</th>
            </tr>
          </thead>
          <tbody>
            {events.length === 0 && (
              <tr>
                <td colSpan={6}>No events match.</td>
              </tr>
            )}
            {events.map((event) => {
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
                    <td class="wrap">{actorOrSubject(event)}</td>
                    <td class="wrap">
                      {event.reason}
                      {isRefusedExchange(event) && (
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
          </tbody>
        </table>
      )}
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
