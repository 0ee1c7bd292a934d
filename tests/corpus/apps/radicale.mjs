// Radicale: CalDAV/CardDAV server with a plain-JavaScript web UI that speaks WebDAV (PROPFIND,
// MKCOL) over XHR; the server redirects / to /.web with a root-absolute Location.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export default {
  name: 'radicale',
  source: { ecosystem: 'pypi', packages: ['Radicale==3.3.1'] },
  stack: 'Python (WSGI), vanilla JS web UI, WebDAV over XHR',
  covers: ['form'],
  start({ port, dir, bin, env, log: harnessLog }) {
    // Radicale's own config file: loopback, collections in the temp dir, and no password check
    // (any user name signs in), which is what its web UI is tried with on a fresh install.
    const config = path.join(dir, 'config');
    fs.writeFileSync(
      config,
      `[server]\nhosts = 127.0.0.1:${port}\n\n[auth]\ntype = none\n\n[storage]\nfilesystem_folder = ${path.join(dir, 'collections')}\n`,
    );
    // The harness's log (kept as an artifact) when it gives one, else a file in the temp dir.
    const log = harnessLog?.fd ?? fs.openSync(path.join(dir, 'radicale.log'), 'a');
    return spawn(bin('radicale'), ['--config', config], { detached: true, env, stdio: ['ignore', log, log] });
  },
  ready: { path: '/.web/', status: [200] },
  async exercise(frame, { mode = 'direct' } = {}) {
    // One app instance serves every mode in turn: each run creates a calendar of its own.
    const title = `Corpus calendar ${mode} ${Date.now()}`;
    const login = frame.locator('#loginscene');
    await login.waitFor({ state: 'visible', timeout: 30000 });
    // Sign in: the UI checks the user's principal with PROPFIND and lists their collections.
    await login.locator('input[data-name="user"]').fill('corpus');
    await login.locator('input[data-name="password"]').fill('corpus');
    await login.locator('button[type="submit"]').click({ timeout: 10000 });
    const collections = frame.locator('#collectionsscene');
    await collections.waitFor({ state: 'visible', timeout: 20000 });
    // Create a calendar (MKCOL): it is listed under its title afterwards.
    await collections.locator('a[data-name="new"]').click({ timeout: 10000 });
    const create = frame.locator('#createcollectionscene');
    await create.waitFor({ state: 'visible', timeout: 10000 });
    await create.locator('select[data-name="type"]').selectOption('CALENDAR');
    await create.locator('input[data-name="displayname"]').fill(title);
    await create.locator('button[data-name="submit"]').click({ timeout: 10000 });
    await collections
      .locator('article h3', { hasText: title })
      .waitFor({ state: 'visible', timeout: 20000 });
  },
  expectedFailures: [],
};
