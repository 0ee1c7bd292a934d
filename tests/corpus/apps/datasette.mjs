// Datasette (PyPI): a Python app with server-rendered pages and a SQL query form. It knows
// nothing of /embed/datasette/ (no base_url setting): the proxy keeps it inside.
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';

export default {
  name: 'datasette',
  source: { ecosystem: 'pypi', packages: ['datasette==0.65.5'] },
  stack: 'Python (ASGI), server-rendered HTML, a SQL query form',
  covers: ['server-rendered', 'form'],
  start({ port, dir, bin, env, log }) {
    const db = join(dir, 'corpus.db');
    // A small database to query, written with the venv's own Python.
    const made = spawnSync(bin('python3'), ['-c', `import sqlite3
c = sqlite3.connect(${JSON.stringify(db)})
c.execute("create table apps (name text, ecosystem text)")
c.executemany("insert into apps values (?, ?)", [("datasette", "pypi"), ("prometheus", "debian"), ("jupyterlab", "pypi"), ("deluge", "debian")])
c.commit()`], { env, encoding: 'utf8' });
    if (made.status !== 0) throw new Error(`datasette: cannot create the database: ${made.stderr}`);
    return spawn(bin('datasette'), ['serve', db, '--host', '127.0.0.1', '--port', String(port)], {
      cwd: dir, env, detached: true, stdio: ['ignore', log, log],
    });
  },
  ready: { path: '/-/versions.json', status: [200] },
  async exercise(frame, { page }) {
    await frame.getByRole('link', { name: 'corpus', exact: true }).first().click();
    await frame.waitForURL(/\/embed\/datasette\/corpus$/);
    await frame.getByRole('heading', { name: 'corpus' }).waitFor();
    // The query form: CodeMirror 5 replaces the textarea once its script ran; type into it.
    const editor = frame.locator('.CodeMirror');
    await editor.waitFor();
    await editor.click();
    await page.keyboard.press('Control+A');
    await page.keyboard.type("select name from apps where ecosystem = 'debian' order by name");
    await frame.getByRole('button', { name: 'Run SQL' }).click();
    await frame.waitForURL(/\/embed\/datasette\/corpus\?sql=/);
    const cells = frame.locator('table.rows-and-columns td');
    await cells.filter({ hasText: 'deluge' }).waitFor();
    await cells.filter({ hasText: 'prometheus' }).waitFor();
    const n = await frame.locator('table.rows-and-columns tbody tr').count();
    if (n !== 2) throw new Error(`the query returned ${n} rows, expected 2`);
  },
  expectedFailures: [],
};
