// JupyterLab (PyPI): a webpack single-page app; its kernels talk over a WebSocket. It runs
// without a base URL setting: the proxy and the shim keep it under /embed/jupyterlab/.
import { spawn } from 'node:child_process';

export default {
  name: 'jupyterlab',
  source: { ecosystem: 'pypi', packages: ['jupyterlab==4.6.6', 'ipykernel==7.4.0'] },
  stack: 'Python (Tornado), webpack SPA, kernel over WebSocket',
  covers: ['spa', 'websocket'],
  start({ port, dir, bin, env, log }) {
    return spawn(bin('jupyter-lab'), [
      '--no-browser',
      '--ServerApp.ip=127.0.0.1',
      `--ServerApp.port=${port}`,
      '--ServerApp.port_retries=0',
      `--ServerApp.root_dir=${dir}`,
      // A single-user app behind Bloud's login: no token of its own.
      '--IdentityProvider.token=',
      // Behind a proxy the Host header is the box's name, not 127.0.0.1.
      '--ServerApp.allow_remote_access=True',
      '--LabApp.news_url=',
      // CI containers run as root; Jupyter refuses that without the flag.
      ...(process.getuid?.() === 0 ? ['--allow-root'] : []),
      '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate',
    ], { cwd: dir, env: { ...env, JUPYTER_CONFIG_DIR: `${dir}/.jupyter`, JUPYTER_DATA_DIR: `${dir}/.jupyter-data` }, detached: true, stdio: ['ignore', log, log] });
  },
  ready: { path: '/api/status', status: [200] },
  startSeconds: 30,
  async exercise(frame, { page }) {
    // The launcher, then a new notebook with a Python kernel (started over the REST API, then a
    // WebSocket to the kernel); run one cell and read its output.
    // One JupyterLab serves every mode and restores its last workspace (the notebook the previous
    // mode opened), so open a fresh launcher with the dock's "+" and act in the visible panel only.
    const add = frame.locator('#jp-main-dock-panel .lm-TabBar-addButton').first();
    await add.waitFor({ timeout: 30_000 });
    await add.click();
    const tile = frame.locator('.jp-Launcher:visible .jp-LauncherCard[data-category="Notebook"]').first();
    await tile.waitFor({ timeout: 30_000 });
    await tile.click();
    const cell = frame.locator('.jp-NotebookPanel:visible .jp-Cell .cm-content').first();
    await cell.waitFor({ timeout: 30_000 });
    // The kernel answered over its WebSocket: the status bar says it is idle.
    await frame.getByText(/\| Idle/).first().waitFor({ timeout: 30_000 });
    // JupyterLab may re-create the cell editor once the kernel session is attached, losing what
    // was typed into the old one: type again (at most three times) until the editor shows it.
    const typed = frame.locator('.jp-NotebookPanel:visible .jp-Cell .cm-content', { hasText: 'print(6 * 7)' }).first();
    for (let attempt = 1; ; attempt++) {
      await cell.click();
      await page.keyboard.type('print(6 * 7)');
      try {
        await typed.waitFor({ timeout: 3000 });
        break;
      } catch (e) {
        if (attempt === 3) throw new Error(`the notebook cell does not take input: ${e.message.split('\n')[0]}`);
        await page.keyboard.press('Control+A');
        await page.keyboard.press('Backspace');
      }
    }
    await page.keyboard.press('Shift+Enter');
    await frame.locator('.jp-NotebookPanel:visible .jp-OutputArea-output').filter({ hasText: /^42\s*$/ }).first().waitFor({ timeout: 30_000 });
  },
  expectedFailures: [],
};
