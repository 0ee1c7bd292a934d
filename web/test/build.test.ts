// scripts/build.mjs is also the Nix build (nixos/packages/web.nix), which has nixpkgs' `tsc` and
// `esbuild` on PATH and no node_modules. This runs it the way Nix does: a copy of the sources
// Nix gets, no node_modules, PATH holding only node and the two tools. A run-time npm dependency
// in the shell, or a build step that needs one, fails here before it fails on a Bloud box.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const web = fileURLToPath(new URL('..', import.meta.url));
let scratch = '';
let dist = '';
let result: SpawnSyncReturns<string>;

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'bloud-web-nixlike-'));
  const src = join(scratch, 'web');
  // Exactly the files web.nix gives the Nix build (its fileset's `root + "/…"` entries).
  const nix = readFileSync(join(web, '../nixos/packages/web.nix'), 'utf8');
  const files = [...nix.matchAll(/\(root \+ "\/([^"]+)"\)/g)].map((m) => m[1]!);
  expect(files).toContain('scripts/build.mjs');
  for (const p of files) cpSync(join(web, p), join(src, p), { recursive: true });
  const bin = join(scratch, 'bin');
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, 'node'));
  for (const tool of ['tsc', 'esbuild']) symlinkSync(realpathSync(join(web, 'node_modules', '.bin', tool)), join(bin, tool));
  dist = join(src, 'dist');
  result = spawnSync(join(bin, 'node'), ['scripts/build.mjs'], {
    cwd: src,
    env: { PATH: bin, HOME: scratch },
    encoding: 'utf8',
    timeout: 120_000,
  });
}, 130_000);

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('the build without node_modules (as Nix runs it)', () => {
  it('succeeds', () => {
    expect(result.error).toBeUndefined();
    expect(result.stderr + result.stdout).not.toMatch(/error/i);
    expect(result.status).toBe(0);
  });

  it('writes an index.html whose script and stylesheet exist', () => {
    const html = readFileSync(join(dist, 'index.html'), 'utf8');
    expect(html).not.toContain('/src/main.ts');
    const script = /<script type="module" src="(\/assets\/[^"]+\.js)"><\/script>/.exec(html)?.[1];
    const style = /<link rel="stylesheet" href="(\/assets\/[^"]+\.css)">/.exec(html)?.[1];
    expect(script).toBeDefined();
    expect(style).toBeDefined();
    expect(existsSync(join(dist, script!))).toBe(true);
    expect(readFileSync(join(dist, style!), 'utf8')).toMatch(/[a-z-]+\s*\{/);
    // The public dir (favicon the page links to) is copied as is.
    expect(html).toContain('/assets/favicon.svg');
    expect(existsSync(join(dist, 'assets/favicon.svg'))).toBe(true);
  });

  it('writes the worker as one classic script at the root', () => {
    const sw = readFileSync(join(dist, 'service-worker.js'), 'utf8');
    // Classic: no module syntax left (registration is without `type: 'module'`).
    expect(sw).not.toMatch(/^\s*(import|export)\s/m);
    expect(sw.startsWith('"use strict";')).toBe(true);
    // It is the worker (its fetch handler), not the shell.
    expect(sw).toContain('addEventListener("fetch"');
    expect(existsSync(join(dist, 'service-worker.js.map'))).toBe(true);
  });
});
