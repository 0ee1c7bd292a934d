/** The system endpoints (health, per-app use, generations, rollback); listed in web/API.md. */
import { call } from './api';
import type { AppUsage, Generation, Storage, SystemStatus } from './systemHealth';
import type { InstallResult } from './types';

export const SYSTEM_ENDPOINTS = {
  status: '/api/system/status',
  statusStream: '/api/system/status/stream',
  storage: '/api/system/storage',
  apps: '/api/system/apps',
  versions: '/api/system/versions',
  rollback: '/api/system/rollback',
} as const;

export const systemApi = {
  status: () => call<SystemStatus>(SYSTEM_ENDPOINTS.status, 'Reading system status'),
  storage: () => call<Storage>(SYSTEM_ENDPOINTS.storage, 'Reading disk use'),
  apps: async () => (await call<{ apps: AppUsage[] | null }>(SYSTEM_ENDPOINTS.apps, 'Reading app use')).apps ?? [],
  versions: async () => (await call<{ generations: Generation[] | null; source: string }>(SYSTEM_ENDPOINTS.versions, 'Loading the history')),
  /** Queued; `wait=false` answers as soon as it is, the log streams on the rebuild stream. */
  rollback: (generation: number, wait: boolean) =>
    call<InstallResult | { queued: true }>(`${SYSTEM_ENDPOINTS.rollback}${wait ? '' : '?wait=false'}`, `Rolling back to generation ${generation}`, {
      method: 'POST',
      body: { generation },
      acceptError: true,
    }),
};
