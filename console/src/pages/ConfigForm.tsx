import type { ComponentChildren } from 'preact';
import { useEffect, useLayoutEffect, useMemo, useState } from 'preact/hooks';
import {
  api,
  CONFIG_TYPES,
  GITHUB_ACTIONS_ISSUER,
  type Config,
  type ConfigInput,
  type ConfigType,
  type LintResult,
} from '../api';
import { ErrorAlert, SelectField, TextField, errorMessage, useAnnounce, useResource } from '../components';
import { navigate } from '../route';
import { canWrite, useSession } from '../session';

interface ConditionRow {
  readonly uid: number;
  readonly key: string;
  readonly valueExpression: string;
}

interface MappingRow extends ConditionRow {
  readonly role: string;
}

interface TestRow {
  readonly uid: number;
  readonly name: string;
  /** JSON text as typed; parsed when the config is checked or saved. */
  readonly claims: string;
  /** Comma-separated role names. */
  readonly roles: string;
}

/** The form's state: text as typed, rows with stable keys so that focus and input survive removals. */
interface Model {
  readonly type: ConfigType;
  readonly issuer: string;
  readonly audience: string;
  readonly tokenExpirationDuration: string;
  readonly maxTokenAge: string;
  readonly singleUse: boolean;
  readonly conditions: readonly ConditionRow[];
  readonly mappings: readonly MappingRow[];
  readonly tests: readonly TestRow[];
}

let lastUid = 0;
const uid = () => ++lastUid;

const emptyModel = (): Model => ({
  type: 'GENERIC',
  issuer: '',
  audience: '',
  tokenExpirationDuration: '1h',
  maxTokenAge: '',
  singleUse: false,
  conditions: [],
  mappings: [],
  tests: [],
});

const toModel = (config: Config): Model => ({
  type: config.type,
  issuer: config.issuer,
  audience: config.audience,
  tokenExpirationDuration: config.tokenExpirationDuration,
  maxTokenAge: config.maxTokenAge,
  singleUse: config.singleUse,
  conditions: config.conditions.map(({ key, valueExpression }) => ({ uid: uid(), key, valueExpression })),
  mappings: config.mappings.map(({ key, valueExpression, role }) => ({ uid: uid(), key, valueExpression, role })),
  tests: config.tests.map(({ name, claims, roles }) => ({
    uid: uid(),
    name,
    claims: JSON.stringify(claims, null, 2),
    roles: roles.join(', '),
  })),
});

/** The config to send, and what is wrong before the server can tell (test claims that are not JSON). */
function toInput(model: Model): { config: ConfigInput; problems: string[] } {
  const problems: string[] = [];
  const tests = model.tests.map((test, index) => {
    let claims: unknown = {};
    if (test.claims.trim() !== '') {
      try {
        claims = JSON.parse(test.claims);
      } catch (error) {
        problems.push(`Test ${index + 1} claims (JSON): ${errorMessage(error)}`);
        // Sent as text, so that the server's answer still covers the rest of the config.
        claims = test.claims;
      }
    }
    const roles = test.roles
      .split(',')
      .map((role) => role.trim())
      .filter((role) => role !== '');
    return { name: test.name, claims, roles };
  });
  return {
    config: {
      type: model.type,
      issuer: model.issuer,
      audience: model.audience,
      tokenExpirationDuration: model.tokenExpirationDuration,
      maxTokenAge: model.maxTokenAge,
      singleUse: model.singleUse,
      conditions: model.conditions.map(({ key, valueExpression }) => ({ key, valueExpression })),
      mappings: model.mappings.map(({ key, valueExpression, role }) => ({ key, valueExpression, role })),
      tests,
    },
    problems,
  };
}

const replaceAt = <T,>(items: readonly T[], index: number, patch: Partial<T>): T[] =>
  items.map((item, i) => (i === index ? { ...item, ...patch } : item));

const withoutIndex = <T,>(items: readonly T[], index: number): T[] => items.filter((_, i) => i !== index);

/**
 * One list of rows (conditions, mappings or tests): numbered labels, a remove
 * button per row and an add button, with focus moved to the new row or back
 * to the add button. `update` edits the rows as they are when it runs.
 */
function RowList<Row extends { readonly uid: number }>(props: {
  readonly noun: 'condition' | 'mapping' | 'test';
  readonly rows: readonly Row[];
  readonly empty: string;
  readonly newRow: () => Row;
  readonly update: (edit: (rows: readonly Row[]) => Row[]) => void;
  readonly focus: (selector: string) => void;
  readonly children: (
    row: Row,
    label: (part: string) => string,
    set: (patch: Partial<Row>) => void,
  ) => ComponentChildren;
}) {
  const { noun, rows, update, focus } = props;
  const Noun = `${noun[0]!.toUpperCase()}${noun.slice(1)}`;
  return (
    <>
      {rows.length === 0 ? (
        <p class="muted">{props.empty}</p>
      ) : (
        <ol class="rows">
          {rows.map((row, index) => (
            <li key={row.uid} id={`${noun}-${row.uid}`} class="row">
              {props.children(
                row,
                (part) => `${Noun} ${index + 1} ${part}`,
                (patch) => update((current) => replaceAt(current, index, patch)),
              )}
              <button
                type="button"
                class="remove"
                onClick={() => {
                  update((current) => withoutIndex(current, index));
                  focus(`#add-${noun}`);
                }}
              >
                Remove {noun} {index + 1}
              </button>
            </li>
          ))}
        </ol>
      )}
      <div class="actions">
        <button
          type="button"
          id={`add-${noun}`}
          onClick={() => {
            const row = props.newRow();
            update((current) => [...current, row]);
            focus(`#${noun}-${row.uid} input`);
          }}
        >
          Add {noun}
        </button>
      </div>
    </>
  );
}

/** The claim and the expression its whole value must match, of a condition or a mapping. */
function ClaimMatch(props: {
  readonly row: Omit<ConditionRow, 'uid'>;
  readonly label: (part: string) => string;
  readonly set: (patch: Partial<Omit<ConditionRow, 'uid'>>) => void;
}) {
  const { row, label, set } = props;
  return (
    <>
      <TextField label={label('claim')} code value={row.key} onValue={(key) => set({ key })} />
      <TextField
        label={label('value')}
        code
        value={row.valueExpression}
        onValue={(valueExpression) => set({ valueExpression })}
      />
    </>
  );
}

/** What checking the config found (problems or warnings), or None. */
function Checks(props: {
  readonly title: string;
  readonly items: ComponentChildren[];
  readonly children?: ComponentChildren;
}) {
  const headingId = `${props.title.toLowerCase()}-heading`;
  return (
    <section class="checks" aria-labelledby={headingId}>
      <h2 id={headingId}>{props.title}</h2>
      {props.children}
      {props.items.length === 0 ? (
        <p>None</p>
      ) : (
        <ul>
          {props.items.map((item, index) => (
            <li key={index}>{item}</li>
          ))}
        </ul>
      )}
    </section>
  );
}

const ISSUER_HINTS: Record<ConfigType, string> = {
  GENERIC: "The https URL in the tokens' iss claim, exactly: a trailing slash makes another issuer.",
  GITHUB_ACTIONS: `${GITHUB_ACTIONS_ISSUER}, ${GITHUB_ACTIONS_ISSUER}/<enterprise-slug> for GitHub Enterprise Cloud, or a GitHub Enterprise Server issuer the gateway allows.`,
  KUBE_SERVICE_ACCOUNT:
    "Empty: the issuer of the gateway's own service-account token (only when it runs in a cluster).",
};

export function ConfigForm({ id }: { id: string | undefined }) {
  const { session } = useSession();
  const title = id === undefined ? 'New config' : 'Edit config';
  if (id === undefined && !canWrite(session)) {
    return (
      <>
        <h1>{title}</h1>
        <p class="note">Your roles allow reading only, so you cannot create configs.</p>
        <p>
          <a href="#/configs">Back to configs</a>
        </p>
      </>
    );
  }
  return <ConfigEditor id={id} title={title} />;
}

function ConfigEditor({ id, title }: { id: string | undefined; title: string }) {
  const { session } = useSession();
  const announce = useAnnounce();
  const stored = useResource(id, () => api.config(id!));
  const roles = useResource('roles', api.roles);
  const [model, setModel] = useState<Model | undefined>(id === undefined ? emptyModel : undefined);
  const [lint, setLint] = useState<LintResult>({ problems: [], warnings: [] });
  const [lintError, setLintError] = useState('');
  const [saveError, setSaveError] = useState('');
  const [busy, setBusy] = useState(false);
  const [confirmingDelete, setConfirmingDelete] = useState(false);
  const [focusTarget, setFocusTarget] = useState<string | undefined>(undefined);

  const storedConfig = stored.data?.config;
  useEffect(() => {
    if (storedConfig) setModel(toModel(storedConfig));
  }, [storedConfig]);

  // Focus follows added and removed rows, so keyboard users are not dropped at the top of the page.
  useLayoutEffect(() => {
    if (focusTarget === undefined) return;
    document.querySelector<HTMLElement>(focusTarget)?.focus();
    setFocusTarget(undefined);
  }, [focusTarget]);

  const input = useMemo(() => (model ? toInput(model) : undefined), [model]);

  useEffect(() => {
    if (input === undefined) return;
    let current = true;
    const timer = setTimeout(() => {
      api.lint(input.config).then(
        (result) => {
          if (!current) return;
          setLint(result);
          setLintError('');
        },
        (error: unknown) => current && setLintError(`The config could not be checked: ${errorMessage(error)}`),
      );
    }, 300);
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [input]);

  const declarative = storedConfig?.traits.origin === 'DECLARATIVE';
  const readOnly = declarative || !canWrite(session);
  const roleNames = roles.data?.roles.map((role) => role.name) ?? [];

  if (model === undefined || input === undefined) {
    return (
      <>
        <h1>{title}</h1>
        <ErrorAlert message={stored.error} />
        {stored.loading && <p>Loading the config…</p>}
        <p>
          <a href="#/configs">Back to configs</a>
        </p>
      </>
    );
  }

  const change = (patch: (model: Model) => Partial<Model>) =>
    setModel((old) => (old === undefined ? old : { ...old, ...patch(old) }));

  const problems = [...input.problems, ...lint.problems];

  async function save(event: Event) {
    event.preventDefault();
    if (readOnly || busy || input === undefined) return;
    if (input.problems.length > 0) {
      setSaveError(`Not saved: ${input.problems.join('; ')}`);
      return;
    }
    setBusy(true);
    setSaveError('');
    try {
      if (id === undefined) await api.addConfig(input.config);
      else await api.updateConfig(id, input.config);
      announce('Saved');
      navigate('#/configs');
    } catch (error) {
      setSaveError(errorMessage(error));
    } finally {
      setBusy(false);
    }
  }

  async function remove() {
    if (id === undefined || busy) return;
    setBusy(true);
    setSaveError('');
    try {
      await api.deleteConfig(id);
      announce('Deleted');
      navigate('#/configs');
    } catch (error) {
      setSaveError(errorMessage(error));
    } finally {
      setBusy(false);
    }
  }

  const setField = (field: 'issuer' | 'audience' | 'tokenExpirationDuration' | 'maxTokenAge') => (value: string) =>
    change(() => ({ [field]: value }));

  return (
    <>
      <h1>{title}</h1>
      {id !== undefined && (
        <p class="muted">
          Id <code>{id}</code>
        </p>
      )}
      {declarative && (
        <div class="note">
          <p>
            <strong>Declarative: change its file</strong>
          </p>
          <p>This config was applied from the gateway's declarative config directory; the API cannot change it.</p>
        </div>
      )}
      {!declarative && readOnly && <p class="note">Your roles allow reading only, so this form cannot be saved.</p>}
      <form class="config-form" onSubmit={save}>
        <fieldset class="plain" disabled={readOnly}>
          <legend class="visually-hidden">Config</legend>
          <section class="stack">
            <h2>Trust</h2>
            <SelectField
              label="Type"
              options={CONFIG_TYPES}
              value={model.type}
              onValue={(type) =>
                change((old) => ({
                  type,
                  issuer: type === 'GITHUB_ACTIONS' && old.issuer === '' ? GITHUB_ACTIONS_ISSUER : old.issuer,
                }))
              }
            />
            <TextField
              label="Issuer"
              hint={ISSUER_HINTS[model.type]}
              code
              value={model.issuer}
              onValue={setField('issuer')}
            />
            <TextField
              label="Audience"
              hint="When set, the ID token's aud must contain it. Configs of one issuer are told apart by audience."
              code
              value={model.audience}
              onValue={setField('audience')}
            />
          </section>

          <section class="stack">
            <h2>Tokens</h2>
            <TextField
              label="Token lifetime"
              hint="Lifetime of the access tokens minted: a Go duration from 1m to 24h, e.g. 1h30m."
              code
              value={model.tokenExpirationDuration}
              onValue={setField('tokenExpirationDuration')}
            />
            <TextField
              label="Max token age"
              hint="ID tokens issued longer ago than this Go duration are refused, e.g. 5m. Empty: no limit."
              code
              value={model.maxTokenAge}
              onValue={setField('maxTokenAge')}
            />
            <div class="field checkbox">
              <input
                id="single-use"
                type="checkbox"
                aria-describedby="single-use-hint"
                checked={model.singleUse}
                onChange={(event) => {
                  const singleUse = event.currentTarget.checked;
                  change(() => ({ singleUse }));
                }}
              />
              <label for="single-use">Single use</label>
              <p id="single-use-hint" class="hint">
                Each ID token (by issuer and jti) is exchanged once; tokens without jti are refused.
              </p>
            </div>
          </section>

          <section class="stack">
            <h2>Conditions</h2>
            <p class="hint">
              Every condition must match the whole value of its claim before any mapping is evaluated, e.g.
              repository_owner_id = 12345678.
            </p>
            <RowList
              noun="condition"
              rows={model.conditions}
              empty="No conditions."
              newRow={() => ({ uid: uid(), key: '', valueExpression: '' })}
              update={(edit) => change((old) => ({ conditions: edit(old.conditions) }))}
              focus={setFocusTarget}
            >
              {(row, label, set) => <ClaimMatch row={row} label={label} set={set} />}
            </RowList>
          </section>

          <section class="stack">
            <h2>Mappings</h2>
            <p class="hint">
              A mapping grants its role when its expression (RE2) matches the whole value of its claim. Roles add up
              over all matching mappings.
            </p>
            <ErrorAlert message={roles.error} />
            <RowList
              noun="mapping"
              rows={model.mappings}
              empty="No mappings: at least one is required."
              newRow={() => ({ uid: uid(), key: '', valueExpression: '', role: '' })}
              update={(edit) => change((old) => ({ mappings: edit(old.mappings) }))}
              focus={setFocusTarget}
            >
              {(row, label, set) => {
                // A stored role that no longer exists stays visible, so that the problem it causes is clear.
                const choices = row.role === '' || roleNames.includes(row.role) ? roleNames : [row.role, ...roleNames];
                return (
                  <>
                    <ClaimMatch row={row} label={label} set={set} />
                    <SelectField
                      label={label('role')}
                      none="Choose a role"
                      options={choices}
                      value={row.role}
                      onValue={(role) => set({ role })}
                    />
                  </>
                );
              }}
            </RowList>
          </section>

          <section class="stack">
            <h2>Tests</h2>
            <p class="hint">
              Claim sets and the exact roles they must resolve to. Claims are a JSON object of claim names to a value or
              a list of values; roles are comma-separated role names, and empty means the claims must be refused. Saving
              refuses a change that makes any test resolve differently.
            </p>
            <RowList
              noun="test"
              rows={model.tests}
              empty="No tests."
              newRow={() => ({ uid: uid(), name: '', claims: '{}', roles: '' })}
              update={(edit) => change((old) => ({ tests: edit(old.tests) }))}
              focus={setFocusTarget}
            >
              {(row, label, set) => (
                <>
                  <TextField label={label('name')} value={row.name} onValue={(name) => set({ name })} />
                  <TextField
                    label={label('claims (JSON)')}
                    class="wide"
                    code
                    rows={4}
                    value={row.claims}
                    onValue={(claims) => set({ claims })}
                  />
                  <TextField label={label('roles')} value={row.roles} onValue={(roles) => set({ roles })} />
                </>
              )}
            </RowList>
          </section>
        </fieldset>

        <Checks title="Problems" items={problems}>
          <ErrorAlert message={lintError} />
        </Checks>
        <Checks
          title="Warnings"
          items={lint.warnings.map((warning) => (
            <>
              <code>{warning.field}</code>: {warning.message}
            </>
          ))}
        />

        <ErrorAlert message={saveError} />
        <div class="actions">
          {!readOnly && (
            <button type="submit" class="primary">
              Save
            </button>
          )}
          {id !== undefined &&
            !readOnly &&
            (confirmingDelete ? (
              <>
                <button
                  type="button"
                  id="confirm-delete"
                  class="danger"
                  aria-describedby="delete-hint"
                  onClick={() => void remove()}
                >
                  Confirm delete
                </button>
                <button
                  type="button"
                  onClick={() => {
                    setConfirmingDelete(false);
                    setFocusTarget('#delete');
                  }}
                >
                  Cancel
                </button>
              </>
            ) : (
              <button
                type="button"
                id="delete"
                class="danger"
                onClick={() => {
                  setConfirmingDelete(true);
                  setFocusTarget('#confirm-delete');
                }}
              >
                Delete
              </button>
            ))}
          <a href="#/configs">Back to configs</a>
        </div>
        {confirmingDelete && (
          <p id="delete-hint" class="hint">
            Deleting the config makes every token minted from it invalid at once.
          </p>
        )}
      </form>
    </>
  );
}
