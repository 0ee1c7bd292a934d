// TiddlyWiki on Node.js: a personal wiki whose whole UI is one large single-page document; the
// browser saves each change back to the server over XHR (PUT /recipes/default/tiddlers/<title>).
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export default {
  name: 'tiddlywiki',
  source: { ecosystem: 'npm', dir: 'npm/tiddlywiki' },
  stack: 'Node.js (TiddlyWiki server), single-page wiki, saves over XHR',
  covers: ['spa', 'form'],
  start({ port, dir, bin, env, log: harnessLog }) {
    const wiki = path.join(dir, 'wiki');
    // The harness's log (kept as an artifact) when it gives one, else a file in the temp dir.
    const log = harnessLog?.fd ?? fs.openSync(path.join(dir, 'tiddlywiki.log'), 'a');
    // A new server-edition wiki, as `tiddlywiki <dir> --init server` makes it for a first run.
    execFileSync(bin('tiddlywiki'), [wiki, '--init', 'server'], { env, stdio: ['ignore', log, log], timeout: 60000 });
    return spawn(bin('tiddlywiki'), [wiki, '--listen', 'host=127.0.0.1', `port=${port}`], {
      detached: true,
      env,
      stdio: ['ignore', log, log],
    });
  },
  ready: { path: '/status', status: [200] },
  async exercise(frame, { page, mode = 'direct' }) {
    // One app instance serves every mode in turn: each run writes a note of its own.
    const note = `Corpus Note ${mode} ${Date.now()}`;
    // The sidebar's "new tiddler" button; an edit frame opens, "ok" saves (PUT to the server)
    // and the note is shown in the story river.
    const create = frame.locator('button.tc-btn-\\%24\\%3A\\%2Fcore\\%2Fui\\%2FButtons\\%2Fnew-tiddler');
    await create.waitFor({ state: 'visible', timeout: 30000 });
    await create.click({ timeout: 10000 });
    const title = frame.locator('.tc-tiddler-edit-frame input.tc-titlebar.tc-edit-texteditor');
    await title.waitFor({ state: 'visible', timeout: 10000 });
    await title.fill(note);
    const saved = page.waitForResponse((r) => r.request().method() === 'PUT' && r.url().endsWith(`/recipes/default/tiddlers/${encodeURIComponent(note)}`), { timeout: 20000 });
    await frame.locator('.tc-tiddler-edit-frame button[aria-label="ok"], .tc-tiddler-edit-frame button.tc-btn-\\%24\\%3A\\%2Fcore\\%2Fui\\%2FButtons\\%2Fsave').first().click({ timeout: 10000 });
    await frame.locator('.tc-tiddler-view-frame h2.tc-title', { hasText: note }).waitFor({ state: 'visible', timeout: 10000 });
    const r = await saved;
    if (r.status() >= 300) throw new Error(`saving the tiddler answered ${r.status()}`);
  },
  expectedFailures: [
    {
      path: /^\/$/,
      status: 404,
      why: 'its "put" saver probes the page URL with OPTIONS and HEAD for WebDAV; the TiddlyWiki server answers those 404 and the page saves through its own sync API instead',
    },
  ],
};
