// Transmission: BitTorrent daemon with its classic jQuery web UI; the UI talks JSON-RPC over XHR
// and starts every session with the 409 + X-Transmission-Session-Id handshake.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export default {
  name: 'transmission',
  source: { ecosystem: 'debian', packages: ['transmission-daemon'] },
  stack: 'C daemon, jQuery web UI, JSON-RPC over XHR',
  covers: ['jquery-extjs', 'form'],
  start({ port, dir, bin, env, log: harnessLog }) {
    const config = path.join(dir, 'config');
    const downloads = path.join(dir, 'downloads');
    fs.mkdirSync(config, { recursive: true });
    fs.mkdirSync(downloads, { recursive: true });
    // The daemon's own settings: RPC on loopback without a password, and its DNS-rebinding host
    // check off, because the browser reaches it by a host name (localhost, bloud.test) through
    // the proxy. No peers: DHT, LPD, uTP, port mapping off, the peer port on loopback.
    const settings = {
      'rpc-bind-address': '127.0.0.1',
      'rpc-port': port,
      'rpc-authentication-required': false,
      'rpc-whitelist-enabled': true,
      'rpc-whitelist': '127.0.0.1,::1',
      'rpc-host-whitelist-enabled': false,
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
      'blocklist-enabled': false,
      'download-dir': downloads,
      'incomplete-dir-enabled': false,
      'start-added-torrents': false,
      'message-level': 2,
    };
    fs.writeFileSync(path.join(config, 'settings.json'), JSON.stringify(settings, null, 2));
    // The harness's log (kept as an artifact) when it gives one, else a file in the temp dir.
    const log = harnessLog?.fd ?? fs.openSync(path.join(dir, 'transmission.log'), 'a');
    return spawn(bin('transmission-daemon'), ['--foreground', '--config-dir', config], {
      detached: true,
      env,
      stdio: ['ignore', log, log],
    });
  },
  ready: { path: '/transmission/web/', status: [200] },
  async exercise(frame, { mode = 'direct' } = {}) {
    // One app instance serves every mode in turn: each run adds a torrent of its own (a new
    // info hash and name), so an earlier run's torrent cannot pass for this one.
    const hash = createHash('sha1').update(`${mode} ${Date.now()}`).digest('hex');
    const torrent = `bloud-corpus-${mode}-${hash.slice(0, 8)}`;
    // The list and toolbar appear once the first RPC (after the 409 handshake) has answered.
    await frame.locator('#toolbar-open').waitFor({ state: 'visible', timeout: 30000 });
    await frame.locator('#statusbar').waitFor({ state: 'visible', timeout: 10000 });
    // Add a torrent by magnet link through the "Open" dialog: torrent-add over RPC, then the
    // list shows it under the name from the link.
    await frame.locator('#toolbar-open').click({ timeout: 10000 });
    const url = frame.locator('#torrent_upload_url');
    await url.waitFor({ state: 'visible', timeout: 10000 });
    await url.fill(`magnet:?xt=urn:btih:${hash}&dn=${torrent}`);
    await frame.locator('#upload_confirm_button').click({ timeout: 10000 });
    await frame
      .locator('#torrent_list .torrent', { hasText: torrent })
      .waitFor({ state: 'visible', timeout: 20000 });
  },
  expectedFailures: [
    {
      path: /\/transmission\/rpc$/,
      status: 409,
      why: 'RPC session handshake: the first request of a session is answered 409 with X-Transmission-Session-Id, the UI repeats it with that header',
    },
  ],
};
