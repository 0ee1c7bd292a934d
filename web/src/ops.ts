/**
 * Install/uninstall requests outlive the page that started them: the agent may answer only when
 * the operation is done. The progress page picks the result up here.
 */
import { api } from './api';
import type { InstallResult, UninstallResult } from './types';

export type OpResult = { op: 'install'; result: InstallResult } | { op: 'uninstall'; result: UninstallResult };

const pending = new Map<string, Promise<OpResult>>();

export function startInstall(app: string, choices: Record<string, string>): Promise<OpResult> {
  const p = api.install(app, choices).then((result) => ({ op: 'install' as const, result }));
  pending.set(app, p);
  return p;
}

export function startUninstall(app: string, clearData: boolean): Promise<OpResult> {
  const p = api.uninstall(app, clearData).then((result) => ({ op: 'uninstall' as const, result }));
  pending.set(app, p);
  return p;
}

export function pendingOp(app: string): Promise<OpResult> | undefined {
  return pending.get(app);
}
