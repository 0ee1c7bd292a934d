// Flood: a React (webpack) single-page UI for torrent clients, fed by a server-sent event stream
// (/api/activity-stream). Here it drives a Transmission daemon started next to it.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

// The daemon Flood controls listens on a second loopback port of its own.
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export default {
  name: 'flood',
  // Flood itself from npm; the torrent client it needs from Debian.
  source: { ecosystem: 'npm', dir: 'npm/flood', debian: ['transmission-daemon'] },
  stack: 'Node.js (Express), React SPA (webpack chunks), SSE activity stream',
  covers: ['spa', 'sse-longpoll'],
  async start({ port, dir, bin, env, log: harnessLog }) {
    const rpcPort = await freePort();
    const config = path.join(dir, 'transmission');
    const downloads = path.join(dir, 'downloads');
    fs.mkdirSync(config, { recursive: true });
    fs.mkdirSync(downloads, { recursive: true });
    fs.writeFileSync(
      path.join(config, 'settings.json'),
      JSON.stringify({
        'rpc-bind-address': '127.0.0.1',
        'rpc-port': rpcPort,
        'rpc-authentication-required': false,
        'rpc-whitelist-enabled': true,
        'rpc-whitelist': '127.0.0.1,::1',
        'bind-address-ipv4': '127.0.0.1',
        'bind-address-ipv6': '::1',
        'peer-port-random-on-start': true,
        'peer-port-random-low': 49152,
        'peer-port-random-high': 65535,
        'dht-enabled': false,
        'lpd-enabled': false,
        'utp-enabled': false,
        'pex-enabled': false,
        'port-forwarding-enabled': false,
        'download-dir': downloads,
        'start-added-torrents': false,
      }),
    );
    // The harness's log (kept as an artifact) when it gives one, else a file in the temp dir.
    const log = harnessLog?.fd ?? fs.openSync(path.join(dir, 'flood.log'), 'a');
    // One process group for both (the harness stops the group): the shell starts the daemon in
    // the background and becomes Flood.
    const script = 'daemon="$1"; config="$2"; shift 2; "$daemon" --foreground --config-dir "$config" & exec "$@"';
    const flood = [
      bin('flood'),
      '--host', '127.0.0.1',
      '--port', String(port),
      '--rundir', path.join(dir, 'flood'),
      '--auth', 'none',
      '--trurl', `http://127.0.0.1:${rpcPort}/transmission/rpc`,
      '--truser', '',
      '--trpass', '',
    ];
    return spawn('/bin/sh', ['-c', script, 'sh', bin('transmission-daemon'), config, ...flood], {
      detached: true,
      env,
      stdio: ['ignore', log, log],
    });
  },
  ready: { path: '/', status: [200] },
  async exercise(frame, { mode = 'direct' } = {}) {
    // One app instance serves every mode in turn: each run adds a torrent of its own (a new
    // info hash and name), so an earlier run's torrent cannot pass for this one.
    const hash = createHash('sha1').update(`${mode} ${Date.now()}`).digest('hex');
    const torrent = `bloud-corpus-${mode}-${hash.slice(0, 8)}`;
    // The torrent list renders once the SPA's chunks are in and the activity stream has sent
    // the first state.
    const add = frame.locator('.action--add-torrent');
    await add.waitFor({ state: 'visible', timeout: 30000 });
    await frame.locator('.torrent__list__wrapper').waitFor({ state: 'visible', timeout: 10000 });
    // Add a torrent by magnet link in the "Add Torrent" dialog (POST /api/torrents/add-urls to
    // Flood, which asks Transmission); the list learns about it from the event stream.
    await add.click({ timeout: 10000 });
    const url = frame.locator('input[name="urls-0"]');
    await url.waitFor({ state: 'visible', timeout: 10000 });
    await url.fill(`magnet:?xt=urn:btih:${hash}&dn=${torrent}`);
    await frame.locator('button[type="submit"]', { hasText: 'Add Torrent' }).click({ timeout: 10000 });
    await frame
      .locator('.torrent__list__wrapper', { hasText: torrent })
      .waitFor({ state: 'visible', timeout: 20000 });
  },
  expectedFailures: [],
};
