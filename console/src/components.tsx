import { createContext, toChildArray, type ComponentChildren, type JSX } from 'preact';
import { useCallback, useContext, useEffect, useId, useRef, useState } from 'preact/hooks';
import type { Explanation } from './api';

// Status messages -----------------------------------------------------------

interface StatusValue {
  readonly message: { text: string; serial: number };
  readonly announce: (text: string) => void;
}

const StatusContext = createContext<StatusValue>({ message: { text: '', serial: 0 }, announce: () => {} });

export function StatusProvider({ children }: { children: ComponentChildren }) {
  const [message, setMessage] = useState({ text: '', serial: 0 });
  const announce = useCallback((text: string) => setMessage((old) => ({ text, serial: old.serial + 1 })), []);
  return <StatusContext.Provider value={{ message, announce }}>{children}</StatusContext.Provider>;
}

export const useAnnounce = () => useContext(StatusContext).announce;

/** The polite live region; it must stay mounted so that screen readers notice changes to it. */
export function StatusRegion() {
  const { message } = useContext(StatusContext);
  return (
    <div role="status" aria-live="polite" class="status">
      {/* A new key re-creates the text, so the same message twice is announced twice. */}
      {message.text !== '' && <p key={message.serial}>{message.text}</p>}
    </div>
  );
}

// Errors and form fields ----------------------------------------------------

export function ErrorAlert({ message }: { message: string }) {
  if (message === '') return null;
  return (
    <p role="alert" class="error">
      {message}
    </p>
  );
}

export const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error));

interface FieldProps {
  readonly label: string;
  readonly hint?: string;
  readonly class?: string;
  /** Renders the control with the id its label points at and the id of its hint. */
  readonly children: (control: { id: string; 'aria-describedby'?: string }) => JSX.Element;
}

/** A labelled control, with an optional hint that is read out with it. */
export function Field({ label, hint, class: className, children }: FieldProps) {
  const id = useId();
  const hintId = `${id}-hint`;
  return (
    <div class={className ? `field ${className}` : 'field'}>
      <label for={id}>{label}</label>
      {children({ id, 'aria-describedby': hint ? hintId : undefined })}
      {hint && (
        <p id={hintId} class="hint">
          {hint}
        </p>
      )}
    </div>
  );
}

/** Moves focus to the page's h1, e.g. after navigation, so keyboard and screen reader users start there. */
export function focusHeading(): void {
  const heading = document.querySelector<HTMLElement>('main h1');
  if (!heading) return;
  heading.tabIndex = -1;
  heading.focus();
}

interface TextFieldProps {
  readonly label: string;
  readonly value: string;
  readonly onValue: (value: string) => void;
  readonly hint?: string;
  readonly class?: string;
  /** Claim values, expressions, JSON: monospace and without spell checking. */
  readonly code?: boolean;
  /** A textarea of this many rows instead of a one-line input. */
  readonly rows?: number;
}

export function TextField({ label, value, onValue, hint, class: className, code, rows }: TextFieldProps) {
  return (
    <Field label={label} hint={hint} class={className}>
      {(control) =>
        rows === undefined ? (
          <input
            {...control}
            type="text"
            class={code ? 'mono' : undefined}
            spellcheck={code ? false : undefined}
            value={value}
            onInput={(event) => onValue(event.currentTarget.value)}
          />
        ) : (
          <textarea
            {...control}
            rows={rows}
            class={code ? 'mono' : undefined}
            spellcheck={code ? false : undefined}
            value={value}
            onInput={(event) => onValue(event.currentTarget.value)}
          />
        )
      }
    </Field>
  );
}

interface SelectFieldProps<T extends string> {
  readonly label: string;
  readonly value: T;
  /** Each option's text is its value. */
  readonly options: readonly T[];
  readonly onValue: (value: T) => void;
  /** The text of a first option whose value is empty, e.g. "any". */
  readonly none?: string;
}

export function SelectField<T extends string>({ label, value, options, onValue, none }: SelectFieldProps<T>) {
  return (
    <Field label={label}>
      {(control) => (
        <select {...control} value={value} onChange={(event) => onValue(event.currentTarget.value as T)}>
          {none !== undefined && <option value="">{none}</option>}
          {options.map((option) => (
            <option key={option} value={option}>
              {option}
            </option>
          ))}
        </select>
      )}
    </Field>
  );
}

// Data ----------------------------------------------------------------------

export interface Resource<T> {
  readonly data?: T;
  readonly error: string;
  readonly loading: boolean;
  readonly reload: () => void;
}

/**
 * Loads when `key` changes (and on reload). An undefined key loads nothing: pages pass it when the user's
 * access would make the call fail, so normal navigation never causes a 4xx.
 */
export function useResource<T>(key: string | undefined, load: () => Promise<T>): Resource<T> {
  const [state, setState] = useState<{ key?: string; data?: T; error: string; loading: boolean }>({
    error: '',
    loading: false,
  });
  const [version, setVersion] = useState(0);
  const latestLoad = useRef(load);
  latestLoad.current = load;
  useEffect(() => {
    if (key === undefined) return;
    let current = true;
    setState((old) => ({ ...old, error: '', loading: true }));
    latestLoad.current().then(
      (data) => current && setState({ key, data, error: '', loading: false }),
      (error: unknown) => current && setState({ key, error: errorMessage(error), loading: false }),
    );
    return () => {
      current = false;
    };
  }, [key, version]);
  const reload = useCallback(() => setVersion((v) => v + 1), []);
  // What was loaded for another key (other filters, another page) is never shown as this key's answer.
  const fresh = state.key === key;
  return {
    data: fresh ? state.data : undefined,
    error: fresh ? state.error : '',
    loading: key !== undefined && (!fresh || state.loading),
    reload,
  };
}

/** A resource's error, "Loading…" until its first answer (a reload keeps the old data in view), then its data. */
export function Loaded<T>({
  resource,
  loading,
  children,
}: {
  resource: Resource<T>;
  loading: string;
  children: (data: T) => ComponentChildren;
}) {
  return (
    <>
      <ErrorAlert message={resource.error} />
      {resource.loading && resource.data === undefined && <p>{loading}</p>}
      {resource.data !== undefined && children(resource.data)}
    </>
  );
}

// Formatting ----------------------------------------------------------------

/** An ISO time as `2026-01-31 12:00:00 UTC`: the same for every reader, whatever their locale. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '';
  const time = new Date(iso);
  if (Number.isNaN(time.getTime())) return iso;
  return `${time.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

export function Time({ iso }: { iso: string | null | undefined }) {
  if (!iso) return <span class="muted">never</span>;
  return <time dateTime={iso}>{formatTime(iso)}</time>;
}

// Tables --------------------------------------------------------------------

interface TableProps {
  /** Names the table, for screen readers too. */
  readonly caption: string;
  /** The header row: one column header each. */
  readonly columns: readonly string[];
  readonly class?: string;
  /** Shown in a row across every column when there are no rows. */
  readonly empty?: string;
  /** The body rows. */
  readonly children: ComponentChildren;
}

export function Table({ caption, columns, class: className, empty, children }: TableProps) {
  return (
    <table class={className}>
      <caption>{caption}</caption>
      <thead>
        <tr>
          {columns.map((column) => (
            <th key={column} scope="col">
              {column}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {empty !== undefined && toChildArray(children).length === 0 && (
          <tr>
            <td colSpan={columns.length}>{empty}</td>
          </tr>
        )}
        {children}
      </tbody>
    </table>
  );
}

// Explain -------------------------------------------------------------------

/** The step table of an explain answer (docs §6.4), on the explain page and under refused audit events. */
export function ExplainResult({ result }: { result: Explanation }) {
  return (
    <div class="explain-result">
      <p class={result.decision === 'GRANTED' ? 'decision granted' : 'decision refused'}>
        <strong>{result.decision}</strong>
        {result.reason !== '' && `: ${result.reason}`}
      </p>
      {result.configId !== '' && (
        <p>
          Config: <a href={`#/configs/${result.configId}`}>{result.configId}</a>
        </p>
      )}
      <Table caption="Steps" columns={['Step', 'Result', 'Detail']}>
        {result.steps.map((step, index) => (
          <tr key={index}>
            <th scope="row">{step.name}</th>
            <td class={step.ok ? 'ok' : 'failed'}>{step.ok ? 'ok' : 'failed'}</td>
            <td>{step.detail}</td>
          </tr>
        ))}
      </Table>
      <p>Roles: {result.roles.length > 0 ? result.roles.join(', ') : <span class="muted">none</span>}</p>
      {result.conditions.length > 0 && (
        <Table caption="Conditions" columns={['Claim', 'Expression', 'Matched', 'Value']}>
          {result.conditions.map((condition, index) => (
            <tr key={index}>
              <th scope="row">{condition.key}</th>
              <td>
                <code>{condition.valueExpression}</code>
              </td>
              <td class={condition.matched ? 'ok' : 'failed'}>{condition.matched ? 'yes' : 'no'}</td>
              <td>{condition.value}</td>
            </tr>
          ))}
        </Table>
      )}
      {result.mappings.length > 0 && (
        <Table caption="Mappings" columns={['Claim', 'Expression', 'Role', 'Matched', 'Value']}>
          {result.mappings.map((mapping, index) => (
            <tr key={index}>
              <th scope="row">{mapping.key}</th>
              <td>
                <code>{mapping.valueExpression}</code>
              </td>
              <td>{mapping.role}</td>
              <td class={mapping.matched ? 'ok' : 'failed'}>{mapping.matched ? 'yes' : 'no'}</td>
              <td>{mapping.value}</td>
            </tr>
          ))}
        </Table>
      )}
      {result.unmatchable.length > 0 && (
        <p>Claims that no expression can match (numbers without an exact text form): {result.unmatchable.join(', ')}</p>
      )}
      <details>
        <summary>Claims as matched</summary>
        <pre>{JSON.stringify(result.claims, null, 2)}</pre>
      </details>
      {result.decision === 'GRANTED' && (
        <details>
          <summary>Access token claims that would be minted</summary>
          <pre>{JSON.stringify(result.accessToken, null, 2)}</pre>
        </details>
      )}
    </div>
  );
}
