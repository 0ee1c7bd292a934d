// Prometheus (Debian `prometheus`): a Go server with Debian's classic UI (server-rendered
// templates, jQuery, Bootstrap). `/` redirects to the graph page; the expression browser runs a
// query with XHR to /api/v1/query.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export default {
  name: 'prometheus',
  source: { ecosystem: 'debian', packages: ['prometheus'] },
  stack: 'Go, server-rendered templates + jQuery (Debian\'s classic UI)',
  covers: ['server-rendered', 'jquery-extjs'],
  start({ port, dir, bin, env, log }) {
    // Scrapes itself, so a query has something to return.
    const config = join(dir, 'prometheus.yml');
    writeFileSync(config, [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      'scrape_configs:',
      '  - job_name: corpus',
      `    static_configs: [{ targets: ["127.0.0.1:${port}"] }]`,
      '',
    ].join('\n'));
    return spawn(bin('prometheus'), [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      `--web.console.templates=/etc/prometheus/consoles`,
      `--web.console.libraries=/etc/prometheus/console_libraries`,
    ], { cwd: dir, env, detached: true, stdio: ['ignore', log, log] });
  },
  ready: { path: '/-/ready', status: [200] },
  async exercise(frame) {
    // `/` redirects to the classic graph page (Debian ships the classic UI only).
    await frame.waitForURL(/\/embed\/prometheus\/(classic\/)?graph/);
    const expr = frame.locator('textarea.expression_input, #expr0').first();
    await expr.waitFor();
    await expr.fill('up{job="corpus"}');
    await frame.locator('input[type=submit][value=Execute], button:has-text("Execute")').first().click();
    // The console tab lists the series with its value 1 once the query answered.
    await frame.locator('table, .data_table').filter({ hasText: 'job="corpus"' }).first().waitFor();
  },
  expectedFailures: [],
};
