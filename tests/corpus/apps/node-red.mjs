// Node-RED: flow editor (jQuery + jQuery UI), its runtime pushes status over a WebSocket (/comms).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export default {
  name: 'node-red',
  source: { ecosystem: 'npm', dir: 'npm/node-red' },
  stack: 'Node.js (Express), jQuery/jQuery UI editor, WebSocket /comms',
  covers: ['jquery-extjs', 'websocket'],
  start({ port, dir, bin, env, log: harnessLog }) {
    // Node-RED reads its settings from the user dir; a fresh dir gets one that binds to loopback
    // and skips the first-run tour and the telemetry question, which would cover the editor.
    const settings = path.join(dir, 'settings.js');
    fs.writeFileSync(
      settings,
      `module.exports = {
  uiHost: '127.0.0.1',
  uiPort: ${port},
  flowFile: 'flows.json',
  credentialSecret: false,
  editorTheme: { tours: false, projects: { enabled: false } },
  diagnostics: { enabled: false },
  telemetry: { enabled: false },
  logging: { console: { level: 'info' } },
};
`,
    );
    // The harness's log (kept as an artifact) when it gives one, else a file in the temp dir.
    const log = harnessLog?.fd ?? fs.openSync(path.join(dir, 'node-red.log'), 'a');
    return spawn(bin('node-red'), ['--settings', settings, '--userDir', dir], {
      detached: true,
      env,
      stdio: ['ignore', log, log],
    });
  },
  ready: { path: '/', status: [200] },
  async exercise(frame) {
    // The editor is built by script after /settings, /flows and the node list load over XHR.
    const inject = frame.locator('.red-ui-palette-node[data-palette-type="inject"]');
    await inject.waitFor({ state: 'visible', timeout: 30000 });
    const chart = frame.locator('#red-ui-workspace-chart');
    await chart.waitFor({ state: 'visible', timeout: 10000 });
    // Drag an Inject node onto the workspace and deploy: the flow goes to the runtime (POST /flows)
    // and the editor reports the deploy.
    await inject.dragTo(chart, { targetPosition: { x: 200, y: 120 }, timeout: 10000 });
    const node = frame.locator('#red-ui-workspace-chart g.red-ui-flow-node-group, #red-ui-workspace-chart g.red-ui-flow-node');
    await node.first().waitFor({ state: 'visible', timeout: 10000 });
    await frame.locator('#red-ui-header-button-deploy').click({ timeout: 10000 });
    await frame
      .locator('.red-ui-notification', { hasText: 'Successfully deployed' })
      .waitFor({ state: 'visible', timeout: 20000 });
  },
  expectedFailures: [],
};
