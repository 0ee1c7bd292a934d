/** JSON shapes of the agent API (upstream host-agent; docs/agent.md "API"). */

export type AppStatus = 'installing' | 'starting' | 'running' | 'error' | 'failed' | 'uninstalling' | 'stopped';

/** `GET /api/apps/installed` items and `/api/apps/events` frames (snake_case, as upstream). */
export interface InstalledApp {
  id: number;
  name: string;
  display_name: string;
  version: string;
  status: AppStatus | string;
  port?: number;
  is_system: boolean;
  integration_config?: Record<string, string>;
  installed_at: string;
  updated_at: string;
}

export interface CompatibleApp {
  app: string;
  default?: boolean;
  category?: string;
}

export interface Integration {
  required: boolean;
  multi: boolean;
  compatible: CompatibleApp[];
}

export interface IndexedDbBootstrap {
  database: string;
  intercepts?: Array<{ store: string; key: string; value: unknown }>;
  writes?: Array<{ store: string; key: string; value: unknown }>;
}

export interface Bootstrap {
  indexedDB?: IndexedDbBootstrap;
  localStorage?: { intercepts?: Array<{ key: string; value?: unknown; jsonPatch?: Record<string, unknown> }> };
}

/** `GET /api/apps` items and `GET /api/apps/{name}/metadata` (metadata.yaml field names). */
export interface CatalogApp {
  name: string;
  displayName: string;
  description: string;
  category: string;
  port?: number;
  isSystem?: boolean;
  integrations?: Record<string, Integration> | null;
  routing?: { stripPrefix?: boolean | null; headers?: Record<string, string> } | null;
  bootstrap?: Bootstrap | null;
  sso?: { strategy?: string } | null;
  /** Where the app keeps its data on the host (the agent adds it: `<dataDir>/<name>`). */
  dataLocation?: string;
  [field: string]: unknown;
}

export interface ConfigTask {
  target: string;
  source: string;
  integration: string;
}

export interface IntegrationChoice {
  integration: string;
  required: boolean;
  installed: CompatibleApp[] | null;
  available: CompatibleApp[] | null;
  recommended: string;
}

export interface InstallPlan {
  app: string;
  canInstall: boolean;
  blockers: string[] | null;
  choices: IntegrationChoice[] | null;
  autoConfig: ConfigTask[] | null;
  dependents: ConfigTask[] | null;
  /** How people will sign in through Bloud (older agents leave it out). */
  signIn?: SignIn[] | null;
}

export interface SignIn {
  kind: string;
  text: string;
}

export interface RemovePlan {
  app: string;
  canRemove: boolean;
  blockers: string[] | null;
  willUnconfigure: string[] | null;
}

export interface InstallResult {
  app: string;
  success: boolean;
  error?: string;
  appsInstalled?: string[];
  rebuildOutput?: string;
  generationInfo?: string;
}

export interface UninstallResult {
  app: string;
  success: boolean;
  error?: string;
  unconfigured?: string[];
}

export interface SetupStatus {
  setupRequired: boolean;
  authentikReady?: boolean;
}

export interface CreateUserResult {
  success: boolean;
  error?: string;
  loginUrl?: string;
}

export type Role = 'admin' | 'member';

export interface User {
  id: string | number;
  username: string;
  /** Absent from agents older than roles: treated as admin (they had a single account). */
  role?: Role;
}

/** `GET /api/users` items (**ours**). `apps`: what a member may open (admins open everything). */
export interface UserInfo {
  id: string;
  username: string;
  role: Role;
  createdAt: string;
  apps: string[];
}

/** The 403 answer of an action that needs the password again (**ours**). */
export interface StepUpRequired {
  error: string;
  stepUpRequired: true;
  action: string;
}

/** `GET/PUT /api/user/layout` items (upstream's GridElement; `col` and `row` start at 1). */
export interface GridElement {
  type: 'app' | 'widget' | string;
  id: string;
  col: number;
  row: number;
  colspan: number;
  rowspan: number;
}
