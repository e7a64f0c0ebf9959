import { useState } from 'preact/hooks';
import { ACCESS_LEVELS, RESOURCES, api, type Access, type Role } from '../api';
import {
  ErrorAlert,
  Loaded,
  SelectField,
  Table,
  TextField,
  errorMessage,
  focusHeading,
  useAnnounce,
  useResource,
} from '../components';
import { canWrite, useSession } from '../session';

/** Present on first start; the gateway refuses to change or delete them. */
const BUILT_IN_ROLES = new Set(['Admin', 'Analyst', 'Continuous Integration', 'None']);

/** The resources besides Access: the gateway enforces only Access; downstream services read the roles. */
const OTHER_RESOURCES = RESOURCES.filter((resource) => resource !== 'Access');

function Permissions({ permissions }: { permissions: Role['permissions'] }) {
  const granted = ACCESS_LEVELS.filter((level) => level !== 'NO_ACCESS')
    .map((level) => ({
      level,
      resources: Object.keys(permissions).filter((resource) => permissions[resource] === level),
    }))
    .filter(({ resources }) => resources.length > 0)
    .reverse();
  if (granted.length === 0) return <span class="muted">No permissions</span>;
  return (
    <ul class="plain">
      {granted.map(({ level, resources }) => (
        <li key={level}>
          <strong>{level}</strong>: {resources.join(', ')}
        </li>
      ))}
    </ul>
  );
}

const ROLE_COLUMNS = ['Name', 'Description', 'Permissions'];

const NEW_ROLE = { name: '', description: '', permissions: { Access: 'NO_ACCESS' } as Record<string, Access> };

export function Roles() {
  const { session } = useSession();
  const announce = useAnnounce();
  const writable = canWrite(session);
  const roles = useResource('roles', api.roles);
  const [form, setForm] = useState(NEW_ROLE);
  const [createError, setCreateError] = useState('');
  const [deleteError, setDeleteError] = useState<{ name: string; message: string } | undefined>(undefined);
  const [busy, setBusy] = useState(false);

  const setLevel = (resource: string, level: Access) =>
    setForm((old) => ({ ...old, permissions: { ...old.permissions, [resource]: level } }));

  async function create(event: Event) {
    event.preventDefault();
    if (busy) return;
    const name = form.name.trim();
    if (name === '') {
      setCreateError('Give the role a name.');
      return;
    }
    // Access is always sent, as chosen; other resources only when they grant something.
    const permissions = Object.fromEntries(
      Object.entries(form.permissions).filter(([resource, level]) => resource === 'Access' || level !== 'NO_ACCESS'),
    );
    setBusy(true);
    setCreateError('');
    try {
      await api.createRole({ name, description: form.description, permissions });
      setForm(NEW_ROLE);
      announce(`Created role ${name}`);
      roles.reload();
    } catch (error) {
      setCreateError(errorMessage(error));
    } finally {
      setBusy(false);
    }
  }

  async function remove(name: string) {
    if (busy) return;
    setBusy(true);
    setDeleteError(undefined);
    try {
      await api.deleteRole(name);
      announce(`Deleted role ${name}`);
      roles.reload();
      // The button is gone with its row; the page heading is the nearest stable place for focus.
      focusHeading();
    } catch (error) {
      setDeleteError({ name, message: errorMessage(error) });
    } finally {
      setBusy(false);
    }
  }

  return (
    <>
      <h1>Roles</h1>
      <p class="lead">
        Mappings grant roles. The gateway enforces the Access resource on its own admin API; downstream services read
        the roles claim of the tokens it mints. Built-in roles cannot be changed or deleted.
      </p>
      <Loaded resource={roles} loading="Loading roles…">
        {(data) => (
          <Table caption="Roles" columns={writable ? [...ROLE_COLUMNS, 'Actions'] : ROLE_COLUMNS}>
            {data.roles.map((role) => (
              <tr key={role.name}>
                <th scope="row">{role.name}</th>
                <td>{role.description}</td>
                <td>
                  <Permissions permissions={role.permissions} />
                </td>
                {writable && (
                  <td>
                    {BUILT_IN_ROLES.has(role.name) ? (
                      <span class="muted">built-in</span>
                    ) : (
                      <button
                        type="button"
                        class="small danger"
                        aria-label={`Delete role ${role.name}`}
                        onClick={() => void remove(role.name)}
                      >
                        Delete
                      </button>
                    )}
                    {deleteError?.name === role.name && <ErrorAlert message={deleteError.message} />}
                  </td>
                )}
              </tr>
            ))}
          </Table>
        )}
      </Loaded>
      {writable && (
        <section aria-labelledby="new-role-heading">
          <h2 id="new-role-heading">New role</h2>
          <form class="stack narrow" onSubmit={create}>
            <TextField label="Role name" value={form.name} onValue={(name) => setForm((old) => ({ ...old, name }))} />
            <TextField
              label="Role description"
              value={form.description}
              onValue={(description) => setForm((old) => ({ ...old, description }))}
            />
            <SelectField
              label="Access"
              options={ACCESS_LEVELS}
              value={form.permissions.Access ?? 'NO_ACCESS'}
              onValue={(level) => setLevel('Access', level)}
            />
            <details>
              <summary>Other resources (read by downstream services)</summary>
              <div class="resource-grid">
                {OTHER_RESOURCES.map((resource) => (
                  <SelectField
                    key={resource}
                    label={resource}
                    options={ACCESS_LEVELS}
                    value={form.permissions[resource] ?? 'NO_ACCESS'}
                    onValue={(level) => setLevel(resource, level)}
                  />
                ))}
              </div>
            </details>
            <ErrorAlert message={createError} />
            <div class="actions">
              <button type="submit" class="primary">
                Create role
              </button>
            </div>
          </form>
        </section>
      )}
    </>
  );
}
