// Process and port helpers shared by the corpus harness: free loopback ports, waiting for an
// HTTP answer (bounded, and failing early when the process died), and stopping a process
// group (apps are spawned detached, so their children go with them).
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
export const corpusDir = join(repo, 'tests', 'corpus');

async function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

export async function freePorts(n) {
  const set = new Set();
  while (set.size < n) set.add(await freePort());
  return [...set];
}

/**
 * Polls `url` until its status is in `status` (default 200) and `also()` holds; throws after
 * `timeoutMs` or as soon as `proc` has exited.
 */
export async function waitHttp(url, { proc = null, timeoutMs = 60_000, status = [200], also = () => true } = {}) {
  const started = Date.now();
  let last = 'no answer yet';
  for (;;) {
    if (proc?.exited) throw new Error(`${proc.name} exited during startup (${proc.exited})`);
    try {
      const r = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(2000) });
      await r.arrayBuffer().catch(() => {});
      if (status.includes(r.status) && also()) return;
      last = `HTTP ${r.status}`;
    } catch (e) {
      last = String(e.cause?.code ?? e);
    }
    if (Date.now() - started > timeoutMs) throw new Error(`${proc?.name ?? url} did not answer ${status.join('/')} on ${url} within ${timeoutMs} ms (last: ${last})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Stops a process started by `launch` (SIGTERM, SIGKILL after `graceMs`). */
export async function stopProc(proc, graceMs = 5000) {
  if (!proc || proc.exited) return;
  const done = new Promise((r) => proc.child.once('exit', r));
  proc.child.kill('SIGTERM');
  const t = setTimeout(() => proc.child.kill('SIGKILL'), graceMs);
  await done;
  clearTimeout(t);
}

/** Stops a detached child's whole process group (the app and whatever it started). */
export async function stopGroup(child, graceMs = 5000) {
  if (!child?.pid || child.exitCode !== null || child.signalCode !== null) {
    killGroup(child, 'SIGKILL');
    return;
  }
  const done = new Promise((r) => child.once('exit', r));
  killGroup(child, 'SIGTERM');
  const t = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
  await done;
  clearTimeout(t);
  // Children that outlived the leader.
  killGroup(child, 'SIGKILL');
}

function killGroup(child, signal) {
  if (!child?.pid) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // the group is gone
  }
}
