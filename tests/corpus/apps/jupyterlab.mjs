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
      '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate',
    ], { cwd: dir, env: { ...env, JUPYTER_CONFIG_DIR: `${dir}/.jupyter`, JUPYTER_DATA_DIR: `${dir}/.jupyter-data` }, detached: true, stdio: ['ignore', log, log] });
  },
  ready: { path: '/api/status', status: [200] },
  startSeconds: 30,
  async exercise(frame) {
    // The launcher, then a new notebook with a Python kernel (started over the REST API, then a
    // WebSocket to the kernel); run one cell and read its output.
    const tile = frame.locator('.jp-LauncherCard[data-category="Notebook"]').first();
    await tile.waitFor({ timeout: 30_000 });
    await tile.click();
    const cell = frame.locator('.jp-Notebook .jp-Cell .cm-content').first();
    await cell.waitFor({ timeout: 30_000 });
    await frame.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"], .jp-Toolbar-kernelStatus, .jp-KernelStatus').first().waitFor({ timeout: 30_000 }).catch(() => {});
    await cell.click();
    await cell.pressSequentially('print(6 * 7)');
    await cell.press('Shift+Enter');
    await frame.locator('.jp-OutputArea-output').filter({ hasText: /^42\s*$/ }).first().waitFor({ timeout: 30_000 });
  },
  expectedFailures: [],
};
