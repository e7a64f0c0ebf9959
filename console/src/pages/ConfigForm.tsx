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
import { ErrorAlert, Field, TextField, errorMessage, useAnnounce, useResource } from '../components';
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
  const setCondition = (index: number, patch: Partial<ConditionRow>) =>
    change((old) => ({ conditions: replaceAt(old.conditions, index, patch) }));
  const setMapping = (index: number, patch: Partial<MappingRow>) =>
    change((old) => ({ mappings: replaceAt(old.mappings, index, patch) }));
  const setTest = (index: number, patch: Partial<TestRow>) =>
    change((old) => ({ tests: replaceAt(old.tests, index, patch) }));

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
            <Field label="Type">
              {(control) => (
                <select
                  {...control}
                  value={model.type}
                  onChange={(event) => {
                    const type = event.currentTarget.value as ConfigType;
                    change((old) => ({
                      type,
                      issuer: type === 'GITHUB_ACTIONS' && old.issuer === '' ? GITHUB_ACTIONS_ISSUER : old.issuer,
                    }));
                  }}
                >
                  {CONFIG_TYPES.map((type) => (
                    <option key={type} value={type}>
                      {type}
                    </option>
                  ))}
                </select>
              )}
            </Field>
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
            {model.conditions.length === 0 ? (
              <p class="muted">No conditions.</p>
            ) : (
              <ol class="rows">
                {model.conditions.map((row, index) => (
                  <li key={row.uid} id={`condition-${row.uid}`} class="row">
                    <TextField
                      label={`Condition ${index + 1} claim`}
                      code
                      value={row.key}
                      onValue={(key) => setCondition(index, { key })}
                    />
                    <TextField
                      label={`Condition ${index + 1} value`}
                      code
                      value={row.valueExpression}
                      onValue={(valueExpression) => setCondition(index, { valueExpression })}
                    />
                    <button
                      type="button"
                      class="remove"
                      onClick={() => {
                        change((old) => ({ conditions: withoutIndex(old.conditions, index) }));
                        setFocusTarget('#add-condition');
                      }}
                    >
                      Remove condition {index + 1}
                    </button>
                  </li>
                ))}
              </ol>
            )}
            <div class="actions">
              <button
                type="button"
                id="add-condition"
                onClick={() => {
                  const row = { uid: uid(), key: '', valueExpression: '' };
                  change((old) => ({ conditions: [...old.conditions, row] }));
                  setFocusTarget(`#condition-${row.uid} input`);
                }}
              >
                Add condition
              </button>
            </div>
          </section>

          <section class="stack">
            <h2>Mappings</h2>
            <p class="hint">
              A mapping grants its role when its expression (RE2) matches the whole value of its claim. Roles add up
              over all matching mappings.
            </p>
            <ErrorAlert message={roles.error} />
            {model.mappings.length === 0 ? (
              <p class="muted">No mappings: at least one is required.</p>
            ) : (
              <ol class="rows">
                {model.mappings.map((row, index) => {
                  // A stored role that no longer exists stays visible, so that the problem it causes is clear.
                  const choices =
                    row.role === '' || roleNames.includes(row.role) ? roleNames : [row.role, ...roleNames];
                  return (
                    <li key={row.uid} id={`mapping-${row.uid}`} class="row">
                      <TextField
                        label={`Mapping ${index + 1} claim`}
                        code
                        value={row.key}
                        onValue={(key) => setMapping(index, { key })}
                      />
                      <TextField
                        label={`Mapping ${index + 1} value`}
                        code
                        value={row.valueExpression}
                        onValue={(valueExpression) => setMapping(index, { valueExpression })}
                      />
                      <Field label={`Mapping ${index + 1} role`}>
                        {(control) => (
                          <select
                            {...control}
                            value={row.role}
                            onChange={(event) => setMapping(index, { role: event.currentTarget.value })}
                          >
                            <option value="">Choose a role</option>
                            {choices.map((name) => (
                              <option key={name} value={name}>
                                {name}
                              </option>
                            ))}
                          </select>
                        )}
                      </Field>
                      <button
                        type="button"
                        class="remove"
                        onClick={() => {
                          change((old) => ({ mappings: withoutIndex(old.mappings, index) }));
                          setFocusTarget('#add-mapping');
                        }}
                      >
                        Remove mapping {index + 1}
                      </button>
                    </li>
                  );
                })}
              </ol>
            )}
            <div class="actions">
              <button
                type="button"
                id="add-mapping"
                onClick={() => {
                  const row = { uid: uid(), key: '', valueExpression: '', role: '' };
                  change((old) => ({ mappings: [...old.mappings, row] }));
                  setFocusTarget(`#mapping-${row.uid} input`);
                }}
              >
                Add mapping
              </button>
            </div>
          </section>

          <section class="stack">
            <h2>Tests</h2>
            <p class="hint">
              Claim sets and the exact roles they must resolve to. Claims are a JSON object of claim names to a value or
              a list of values; roles are comma-separated role names, and empty means the claims must be refused. Saving
              refuses a change that makes any test resolve differently.
            </p>
            {model.tests.length === 0 ? (
              <p class="muted">No tests.</p>
            ) : (
              <ol class="rows">
                {model.tests.map((row, index) => (
                  <li key={row.uid} id={`test-${row.uid}`} class="row">
                    <TextField
                      label={`Test ${index + 1} name`}
                      value={row.name}
                      onValue={(name) => setTest(index, { name })}
                    />
                    <TextField
                      label={`Test ${index + 1} claims (JSON)`}
                      class="wide"
                      code
                      rows={4}
                      value={row.claims}
                      onValue={(claims) => setTest(index, { claims })}
                    />
                    <TextField
                      label={`Test ${index + 1} roles`}
                      value={row.roles}
                      onValue={(roles) => setTest(index, { roles })}
                    />
                    <button
                      type="button"
                      class="remove"
                      onClick={() => {
                        change((old) => ({ tests: withoutIndex(old.tests, index) }));
                        setFocusTarget('#add-test');
                      }}
                    >
                      Remove test {index + 1}
                    </button>
                  </li>
                ))}
              </ol>
            )}
            <div class="actions">
              <button
                type="button"
                id="add-test"
                onClick={() => {
                  const row = { uid: uid(), name: '', claims: '{}', roles: '' };
                  change((old) => ({ tests: [...old.tests, row] }));
                  setFocusTarget(`#test-${row.uid} input`);
                }}
              >
                Add test
              </button>
            </div>
          </section>
        </fieldset>

        <section class="checks" aria-labelledby="problems-heading">
          <h2 id="problems-heading">Problems</h2>
          <ErrorAlert message={lintError} />
          {problems.length === 0 ? (
            <p>None</p>
          ) : (
            <ul>
              {problems.map((problem, index) => (
                <li key={index}>{problem}</li>
              ))}
            </ul>
          )}
        </section>
        <section class="checks" aria-labelledby="warnings-heading">
          <h2 id="warnings-heading">Warnings</h2>
          {lint.warnings.length === 0 ? (
            <p>None</p>
          ) : (
            <ul>
              {lint.warnings.map((warning, index) => (
                <li key={index}>
                  <code>{warning.field}</code>: {warning.message}
                </li>
              ))}
            </ul>
          )}
        </section>

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
