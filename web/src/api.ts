/**
 * The agent API as the shell uses it. Every path is listed in web/API.md; keep the two in step.
 */
import type {
  CatalogApp,
  CreateUserResult,
  GridElement,
  InstallPlan,
  InstallResult,
  InstalledApp,
  RemovePlan,
  SetupStatus,
  Role,
  UninstallResult,
  User,
  UserInfo,
} from './types';
import { STEP_UP_HEADER, stepUpAction } from './stepup';

export const ENDPOINTS = {
  setupStatus: '/api/setup/status',
  createUser: '/api/setup/create-user',
  login: '/api/auth/login',
  logout: '/api/auth/logout',
  me: '/api/auth/me',
  catalog: '/api/apps',
  installed: '/api/apps/installed',
  appEvents: '/api/apps/events',
  rebuildStream: '/api/rebuilds/stream',
  stepUp: '/api/auth/step-up',
  users: '/api/users',
  layout: '/api/user/layout',
  user: (id: string) => `/api/users/${encodeURIComponent(id)}`,
  app: (name: string) => `/api/apps/${encodeURIComponent(name)}`,
} as const;

export const appEndpoint = {
  metadata: (n: string) => `${ENDPOINTS.app(n)}/metadata`,
  icon: (n: string) => `${ENDPOINTS.app(n)}/icon`,
  planInstall: (n: string) => `${ENDPOINTS.app(n)}/plan-install`,
  planRemove: (n: string) => `${ENDPOINTS.app(n)}/plan-remove`,
  install: (n: string) => `${ENDPOINTS.app(n)}/install`,
  uninstall: (n: string) => `${ENDPOINTS.app(n)}/uninstall`,
  clearData: (n: string) => `${ENDPOINTS.app(n)}/clear-data`,
  logs: (n: string) => `${ENDPOINTS.app(n)}/logs`,
  rename: (n: string) => `${ENDPOINTS.app(n)}/rename`,
  restart: (n: string) => `${ENDPOINTS.app(n)}/restart`,
};

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body: unknown,
  ) {
    super(message);
  }
}

/** Called on any 401 from a protected endpoint: the session is gone. */
let onUnauthorized: () => void = () => undefined;
export function setUnauthorizedHandler(fn: () => void): void {
  onUnauthorized = fn;
}

/**
 * Called when an action answers "confirm your password" (see stepup.ts): resolves with a
 * step-up token, or null when the user cancels.
 */
let onStepUp: ((action: string) => Promise<string | null>) | null = null;
export function setStepUpHandler(fn: (action: string) => Promise<string | null>): void {
  onStepUp = fn;
}

/** The agent's error bodies are `{"error": "..."}` (sometimes with `success:false`) or plain text. */
export function errorMessage(status: number, body: unknown, fallback: string): string {
  if (typeof body === 'object' && body !== null) {
    const e = (body as { error?: unknown }).error;
    if (typeof e === 'string' && e !== '') return e;
  }
  if (typeof body === 'string' && body.trim() !== '' && body.length < 300 && !body.trimStart().startsWith('<')) {
    return body.trim();
  }
  return `${fallback} (HTTP ${status})`;
}

async function readBody(resp: Response): Promise<unknown> {
  const text = await resp.text();
  if ((resp.headers.get('content-type') ?? '').includes('json') || /^[[{]/.test(text.trimStart())) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}

interface CallOptions {
  method?: string;
  body?: unknown;
  /** Don't trigger the global "log in again" on 401 (login and me handle it themselves). */
  quiet401?: boolean;
  /** Some endpoints answer an error status with a meaningful JSON body (InstallResult). */
  acceptError?: boolean;
  signal?: AbortSignal;
  /** A step-up token for this request (set on the retry after the password was confirmed). */
  stepUpToken?: string;
}

export async function call<T>(path: string, what: string, opts: CallOptions = {}): Promise<T> {
  const method = opts.method ?? 'GET';
  const headers: Record<string, string> = { accept: 'application/json' };
  const init: RequestInit = {
    method,
    credentials: 'same-origin',
    headers,
    signal: opts.signal,
  };
  // The agent refuses state-changing requests that are not JSON (its CSRF rule: a foreign page
  // can only send form or text bodies without a preflight), so they always carry a JSON body.
  if (method !== 'GET' && method !== 'HEAD') {
    init.body = JSON.stringify(opts.body ?? {});
    headers['content-type'] = 'application/json';
  }
  if (opts.stepUpToken !== undefined) headers[STEP_UP_HEADER] = opts.stepUpToken;
  let resp: Response;
  try {
    resp = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, `${what}: the Bloud agent is not reachable (${err instanceof Error ? err.message : String(err)})`, null);
  }
  const body = await readBody(resp);
  if (resp.status === 401 && !opts.quiet401) onUnauthorized();
  // Before acceptError: a step-up demand is never the operation's result.
  const action = stepUpAction(resp.status, body);
  if (action !== null && onStepUp !== null) {
    const token = await onStepUp(action);
    if (token === null) throw new ApiError(403, `${what}: cancelled (the password was not confirmed)`, body);
    return call<T>(path, what, { ...opts, stepUpToken: token });
  }
  if (!resp.ok && !(opts.acceptError && typeof body === 'object' && body !== null)) {
    throw new ApiError(resp.status, `${what}: ${errorMessage(resp.status, body, 'request failed')}`, body);
  }
  return body as T;
}

export const api = {
  setupStatus: () => call<SetupStatus>(ENDPOINTS.setupStatus, 'Checking setup'),
  createUser: (username: string, password: string) =>
    call<CreateUserResult>(ENDPOINTS.createUser, 'Creating the account', {
      method: 'POST',
      body: { username, password },
      quiet401: true,
    }),
  login: (username: string, password: string) =>
    call<unknown>(ENDPOINTS.login, 'Signing in', { method: 'POST', body: { username, password }, quiet401: true }),
  logout: () => call<unknown>(ENDPOINTS.logout, 'Signing out', { method: 'POST', quiet401: true }),
  /** The signed-in user, or null when there is no session. */
  me: async (): Promise<User | null> => {
    try {
      return await call<User>(ENDPOINTS.me, 'Checking the session', { quiet401: true });
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return null;
      throw err;
    }
  },
  catalog: async (): Promise<CatalogApp[]> =>
    (await call<{ apps: CatalogApp[] | null }>(ENDPOINTS.catalog, 'Loading the catalog')).apps ?? [],
  installed: async (): Promise<InstalledApp[]> =>
    (await call<InstalledApp[] | null>(ENDPOINTS.installed, 'Loading installed apps')) ?? [],
  metadata: (name: string) => call<CatalogApp>(appEndpoint.metadata(name), `Loading ${name}`),
  planInstall: (name: string) => call<InstallPlan>(appEndpoint.planInstall(name), `Planning the install of ${name}`),
  planRemove: (name: string) => call<RemovePlan>(appEndpoint.planRemove(name), `Planning the removal of ${name}`),
  install: (name: string, choices: Record<string, string>) =>
    call<InstallResult>(appEndpoint.install(name), `Installing ${name}`, {
      method: 'POST',
      body: Object.keys(choices).length > 0 ? { choices } : undefined,
      acceptError: true,
    }),
  clearData: (name: string) =>
    call<unknown>(appEndpoint.clearData(name), `Deleting the data of ${name}`, { method: 'POST' }),
  /** The step-up token for `action`; a wrong password is an ApiError (403 "Wrong password"). */
  stepUp: async (password: string, action: string): Promise<string> =>
    (await call<{ token: string }>(ENDPOINTS.stepUp, 'Confirming', { method: 'POST', body: { password, action } })).token,
  users: () => call<UserInfo[]>(ENDPOINTS.users, 'Loading users'),
  layout: async (): Promise<GridElement[]> => (await call<GridElement[] | null>(ENDPOINTS.layout, 'Loading your home layout')) ?? [],
  saveLayout: (layout: GridElement[]) => call<unknown>(ENDPOINTS.layout, 'Saving your home layout', { method: 'PUT', body: layout }),
  addUser: (username: string, password: string, role: Role, apps: string[]) =>
    call<User>(ENDPOINTS.users, `Adding ${username}`, { method: 'POST', body: { username, password, role, apps } }),
  removeUser: (id: string, name: string) => call<unknown>(ENDPOINTS.user(id), `Removing ${name}`, { method: 'DELETE' }),
  setPassword: (id: string, name: string, password: string) =>
    call<unknown>(`${ENDPOINTS.user(id)}/password`, `Setting the password of ${name}`, { method: 'PUT', body: { password } }),
  setRole: (id: string, name: string, role: Role) =>
    call<unknown>(`${ENDPOINTS.user(id)}/role`, `Changing the role of ${name}`, { method: 'PUT', body: { role } }),
  setApps: (id: string, name: string, apps: string[]) =>
    call<unknown>(`${ENDPOINTS.user(id)}/apps`, `Changing the apps of ${name}`, { method: 'PUT', body: { apps } }),
  uninstall: (name: string, clearData: boolean) =>
    call<UninstallResult>(appEndpoint.uninstall(name), `Removing ${name}`, {
      method: 'POST',
      body: clearData ? { clearData } : undefined,
      acceptError: true,
    }),
  rename: (name: string, displayName: string) =>
    call<{ status: string; app: string; displayName: string }>(appEndpoint.rename(name), `Renaming ${name}`, { method: 'PATCH', body: { displayName } }),
  /** Queued like install/uninstall; the answer comes when the app was restarted (or failed to). */
  restart: (name: string) =>
    call<{ app: string; success: boolean; error?: string }>(appEndpoint.restart(name), `Restarting ${name}`, { method: 'POST', acceptError: true }),
};
