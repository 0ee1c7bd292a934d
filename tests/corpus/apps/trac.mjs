// Trac: wiki and issue tracker, server-rendered (Jinja2) with jQuery; after a form post it
// redirects with an absolute Location built from the request's Host.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export default {
  name: 'trac',
  // Trac parses headers and form posts with the `multipart` module when it can import one. In the
  // corpus's shared venv, python-multipart (a datasette dependency) provides a `multipart` package
  // with another API, which makes every Trac request fail; with the `multipart` distribution
  // installed too, python-multipart's alias defers to it and both apps get what they expect.
  source: { ecosystem: 'pypi', packages: ['Trac==1.6', 'Jinja2==3.1.6', 'multipart==1.3.1'] },
  stack: 'Python (WSGI, Jinja2), server-rendered HTML + jQuery',
  covers: ['server-rendered', 'jquery-extjs', 'form', 'absolute-redirect'],
  start({ port, dir, bin, env, log: harnessLog }) {
    const project = path.join(dir, 'project');
    // The harness's log (kept as an artifact) when it gives one, else a file in the temp dir.
    const log = harnessLog?.fd ?? fs.openSync(path.join(dir, 'trac.log'), 'a');
    const quiet = { env, stdio: ['ignore', log, log], timeout: 60000 };
    // A new Trac environment (SQLite), where anonymous visitors may file tickets, as a small
    // team's tracker without logins would be set up. The header logo of a new environment points
    // at site/your_project_logo.png, a file the project is meant to add: the initial config uses
    // Trac's own banner instead.
    const ini = path.join(dir, 'initial.ini');
    fs.writeFileSync(ini, '[header_logo]\nsrc = common/trac_banner.png\n');
    execFileSync(bin('trac-admin'), [project, 'initenv', 'Corpus', 'sqlite:db/trac.db', `--config=${ini}`], quiet);
    execFileSync(bin('trac-admin'), [project, 'permission', 'add', 'anonymous', 'TICKET_CREATE', 'TICKET_MODIFY'], quiet);
    return spawn(bin('tracd'), ['--single-env', '--hostname', '127.0.0.1', '--port', String(port), project], {
      detached: true,
      env,
      stdio: ['ignore', log, log],
    });
  },
  ready: { path: '/', status: [200] },
  // trac-admin runs twice before the server starts: slow on a busy 2-core machine.
  startSeconds: 30,
  async exercise(frame, { mode = 'direct' } = {}) {
    // One app instance serves every mode in turn: each run files its own ticket.
    const summary = `Corpus ticket (${mode} ${Date.now()})`;
    await frame.locator('#mainnav').waitFor({ state: 'visible', timeout: 30000 });
    await frame.locator('h1', { hasText: 'Welcome to Trac' }).waitFor({ state: 'visible', timeout: 10000 });
    // A page change: the "New Ticket" link; then the form post, answered by a redirect with an
    // absolute Location to the new ticket's page.
    await frame.locator('#mainnav a', { hasText: 'New Ticket' }).click({ timeout: 10000 });
    const summaryField = frame.locator('#field-summary');
    await summaryField.waitFor({ state: 'visible', timeout: 20000 });
    await summaryField.fill(summary);
    await frame.locator('input[type="submit"][name="submit"]').click({ timeout: 10000 });
    await frame
      .locator('#ticket .summary', { hasText: summary })
      .waitFor({ state: 'visible', timeout: 20000 });
    if (!/\/ticket\/\d+(#.*)?$/.test(frame.url())) throw new Error(`after the post the frame is at ${frame.url()}, not the new ticket`);
  },
  expectedFailures: [],
};
