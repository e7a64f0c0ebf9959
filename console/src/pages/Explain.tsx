import { useState } from 'preact/hooks';
import { api, type ExplainRequest, type Explanation } from '../api';
import { ErrorAlert, ExplainResult, Field, TextField, errorMessage, useAnnounce, useResource } from '../components';

type Input = 'token' | 'claims';

/** One choice of a radio group: its id is the group's name and the value, e.g. input-token. */
function Radio<T extends string>(props: {
  name: string;
  value: T;
  label: string;
  checked: boolean;
  onCheck: (value: T) => void;
}) {
  const id = `${props.name}-${props.value}`;
  return (
    <div class="radio">
      <input
        id={id}
        type="radio"
        name={props.name}
        value={props.value}
        checked={props.checked}
        onChange={() => props.onCheck(props.value)}
      />
      <label for={id}>{props.label}</label>
    </div>
  );
}

/** The request for the chosen input, or why there is none yet. */
function explainRequest(input: Input, idToken: string, claimsText: string, configId: string): ExplainRequest | string {
  if (input === 'token') {
    const token = idToken.trim();
    return token === '' ? 'Paste an ID token to explain.' : { idToken: token };
  }
  let claims: unknown;
  try {
    claims = JSON.parse(claimsText);
  } catch (error) {
    return `Claims (JSON) is not valid JSON: ${errorMessage(error)}`;
  }
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) {
    return 'Claims (JSON) must be a JSON object of claim names to values.';
  }
  return configId === '' ? 'Choose the config to explain the claims against.' : { claims, configId };
}

export function Explain() {
  const announce = useAnnounce();
  const [input, setInput] = useState<Input>('token');
  const [idToken, setIdToken] = useState('');
  const [claims, setClaims] = useState('{\n  "sub": ""\n}');
  const [chosenConfigId, setChosenConfigId] = useState('');
  const [result, setResult] = useState<Explanation | undefined>(undefined);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const configs = useResource('configs', api.configs);
  const configList = configs.data?.configs ?? [];
  const configId = chosenConfigId || (configList[0]?.id ?? '');

  async function submit(event: Event) {
    event.preventDefault();
    if (busy) return;
    const request = explainRequest(input, idToken, claims, configId);
    if (typeof request === 'string') {
      setError(request);
      return;
    }
    setBusy(true);
    setError('');
    try {
      setResult(await api.explain(request));
      announce('Explanation ready below.');
    } catch (failure) {
      setResult(undefined);
      setError(errorMessage(failure));
    } finally {
      setBusy(false);
    }
  }

  return (
    <>
      <h1>Explain</h1>
      <p class="lead">
        See, step by step, what an exchange would decide. Nothing is minted and no single-use token is spent; the
        explain itself is audited.
      </p>
      <form class="stack" onSubmit={submit}>
        <fieldset class="choice">
          <legend>Input</legend>
          <Radio name="input" value="token" label="ID token" checked={input === 'token'} onCheck={setInput} />
          <Radio name="input" value="claims" label="Claims" checked={input === 'claims'} onCheck={setInput} />
        </fieldset>
        {input === 'token' ? (
          <TextField
            label="ID token"
            hint="The full exchange is run, network checks included."
            code
            rows={6}
            value={idToken}
            onValue={setIdToken}
          />
        ) : (
          <>
            <TextField
              label="Claims (JSON)"
              hint="A JSON object of claim names to a value or a list of values."
              code
              rows={8}
              value={claims}
              onValue={setClaims}
            />
            <ErrorAlert message={configs.error} />
            <Field label="Config">
              {(control) => (
                <select
                  {...control}
                  value={configId}
                  onChange={(event) => setChosenConfigId(event.currentTarget.value)}
                >
                  {configList.length === 0 && <option value="">No configs yet</option>}
                  {configList.map((config) => (
                    <option key={config.id} value={config.id}>
                      {config.audience === '' ? config.issuer : `${config.issuer} (audience ${config.audience})`}
                    </option>
                  ))}
                </select>
              )}
            </Field>
          </>
        )}
        <ErrorAlert message={error} />
        <div class="actions">
          <button type="submit" class="primary">
            Explain
          </button>
        </div>
      </form>
      {result && (
        <section aria-labelledby="result-heading">
          <h2 id="result-heading">Result</h2>
          <ExplainResult result={result} />
        </section>
      )}
    </>
  );
}
