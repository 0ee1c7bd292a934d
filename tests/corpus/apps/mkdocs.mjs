// MkDocs' preview server: a documentation site (server-built HTML, the "mkdocs" theme with
// Bootstrap, a search Worker) that reloads open pages by long polling /livereload/ when a source
// file changes, which is how MkDocs is used while writing docs.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

// The docs dir of the running instance: exercise() edits a page there, as an author would.
let docsDir = null;

export default {
  name: 'mkdocs',
  source: { ecosystem: 'pypi', packages: ['mkdocs==1.6.1'] },
  stack: 'Python (MkDocs dev server), static HTML + Bootstrap, livereload long poll',
  covers: ['server-rendered', 'sse-longpoll'],
  start({ port, dir, bin, env, log: harnessLog }) {
    const site = path.join(dir, 'site');
    docsDir = path.join(site, 'docs');
    fs.mkdirSync(docsDir, { recursive: true });
    // The theme loads highlight.js from a public CDN unless told not to; tests stay on loopback.
    fs.writeFileSync(
      path.join(site, 'mkdocs.yml'),
      `site_name: Corpus Docs\ntheme:\n  name: mkdocs\n  highlightjs: false\nnav:\n  - Home: index.md\n  - Setup: setup.md\n`,
    );
    fs.writeFileSync(path.join(docsDir, 'index.md'), '# Corpus Docs\n\nRead the [setup guide](setup.md).\n');
    fs.writeFileSync(path.join(docsDir, 'setup.md'), '# Setup\n\nStep one: install.\n');
    // The harness's log (kept as an artifact) when it gives one, else a file in the temp dir.
    const log = harnessLog?.fd ?? fs.openSync(path.join(dir, 'mkdocs.log'), 'a');
    return spawn(bin('mkdocs'), ['serve', '--no-strict', '-a', `127.0.0.1:${port}`, '-f', path.join(site, 'mkdocs.yml')], {
      detached: true,
      cwd: site,
      env,
      stdio: ['ignore', log, log],
    });
  },
  ready: { path: '/', status: [200] },
  async exercise(frame, { mode = 'direct' } = {}) {
    // One app instance serves every mode in turn: each run's edit has its own text.
    const added = `Step two (${mode} ${Date.now()}): reloaded by the server.`;
    await frame.locator('h1', { hasText: 'Corpus Docs' }).waitFor({ state: 'visible', timeout: 30000 });
    // A page change: the nav link to the second page.
    await frame.locator('a.nav-link', { hasText: 'Setup' }).first().click({ timeout: 10000 });
    await frame.locator('h1', { hasText: 'Setup' }).waitFor({ state: 'visible', timeout: 20000 });
    await frame.locator('text=Step one: install.').waitFor({ state: 'visible', timeout: 10000 });
    // The author edits that page: the server rebuilds, the page's pending long poll answers and
    // the page reloads itself with the new text.
    fs.writeFileSync(path.join(docsDir, 'setup.md'), `# Setup\n\nStep one: install.\n\n${added}\n`);
    await frame.getByText(added).waitFor({ state: 'visible', timeout: 30000 });
  },
  expectedFailures: [],
};
