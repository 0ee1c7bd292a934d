// Deluge's web UI (Debian `deluge-web`): ExtJS 3, everything over XHR `POST /json`. No daemon
// runs, so after signing in with the default password the connection manager shows.
import { spawn } from 'node:child_process';

export default {
  name: 'deluge-web',
  source: { ecosystem: 'debian', packages: ['deluge-web'] },
  stack: 'Python (Twisted), ExtJS 3, JSON-RPC over XHR POST',
  covers: ['jquery-extjs'],
  start({ port, dir, bin, env, log }) {
    return spawn(bin('deluge-web'), ['-d', '-c', `${dir}/config`, '-i', '127.0.0.1', '-p', String(port), '-L', 'info'], {
      cwd: dir, env, detached: true, stdio: ['ignore', log, log],
    });
  },
  ready: { path: '/', status: [200] },
  async exercise(frame) {
    // The login window; "deluge" is the documented default password of a fresh install.
    const password = frame.locator('input[type=password]').first();
    await password.waitFor();
    await password.fill('deluge');
    await frame.getByRole('button', { name: 'Login' }).click();
    // Signed in: no daemon is running, so the connection manager asks for one.
    await frame.getByText('Connection Manager').first().waitFor();
  },
  expectedFailures: [],
};
