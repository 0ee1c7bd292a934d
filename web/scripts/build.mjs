// The production build of the shell and the service worker: type check with `tsc`, bundle with
// `esbuild`, write dist/. It is the one build script: `npm run build` runs it in CI (tsc and
// esbuild from devDependencies) and nixos/packages/web.nix runs it in Nix (nixpkgs' typescript and
// esbuild, no node_modules), so the dist/ that CI tests is the one a Bloud box serves.
// It uses only Node's standard library and the two command-line tools found on PATH, because
// the Nix build has no npm dependencies at all (the shell has no run-time dependencies).
//
// Output (what the agent serves as webDir):
//   dist/index.html                 web/index.html with the dev entry replaced by the bundles
//   dist/assets/main-<hash>.js      the shell (ES module) and its source map
//   dist/assets/main-<hash>.css     the shell's styles
//   dist/service-worker.js          the worker as one classic script at the root (scope `/`)
//   dist/<public/...>               web/public copied as is (favicon)
//
// Usage: node scripts/build.mjs [outdir]   (default dist, relative to web/)
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const web = fileURLToPath(new URL('..', import.meta.url));
const out = resolve(web, process.argv[2] ?? 'dist');

// Run directly (`node scripts/build.mjs`) the local devDependencies are used like under npm;
// in Nix there is no node_modules and PATH alone decides.
const localBin = join(web, 'node_modules', '.bin');
const env = { ...process.env };
if (existsSync(localBin)) env.PATH = `${localBin}${delimiter}${env.PATH ?? ''}`;

function run(tool, args) {
  const r = spawnSync(tool, args, { cwd: web, env, stdio: 'inherit' });
  if (r.error) throw new Error(`cannot run ${tool} (is it on PATH?): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${tool} ${args.join(' ')} failed with status ${r.status ?? r.signal}`);
}

// Both bundles share these: browsers Bloud supports run ES2022; source maps stay next to the
// files (the agent serves them; they only load when devtools ask).
const common = ['--bundle', '--target=es2022', '--minify', '--sourcemap', '--log-level=warning'];

run('tsc', ['--noEmit', '-p', 'tsconfig.build.json']);

rmSync(out, { recursive: true, force: true });
cpSync(join(web, 'public'), out, { recursive: true });

// The shell. Hashed names so a new build is never mixed with a cached old one.
const scratch = mkdtempSync(join(tmpdir(), 'bloud-web-build-'));
try {
  const metaFile = join(scratch, 'meta.json');
  run('esbuild', [
    'src/main.ts',
    ...common,
    '--format=esm',
    `--outdir=${out}`,
    '--entry-names=assets/[name]-[hash]',
    '--asset-names=assets/[name]-[hash]',
    `--metafile=${metaFile}`,
  ]);
  const meta = JSON.parse(readFileSync(metaFile, 'utf8'));
  const entry = Object.entries(meta.outputs).find(([, o]) => o.entryPoint === 'src/main.ts');
  if (!entry) throw new Error('esbuild reported no output for src/main.ts');
  const [jsOut, jsMeta] = entry;
  const url = (p) => '/' + relative(out, resolve(web, p)).split('\\').join('/');
  const tags = [`<script type="module" src="${url(jsOut)}"></script>`];
  if (jsMeta.cssBundle) tags.push(`<link rel="stylesheet" href="${url(jsMeta.cssBundle)}">`);

  // index.html stays the dev server's page (it loads /src/main.ts); here that one tag is
  // replaced by the bundles, in <head> like any module script.
  const devEntry = /[ \t]*<script type="module" src="\/src\/main\.ts"><\/script>\n?/;
  const html = readFileSync(join(web, 'index.html'), 'utf8');
  if (!devEntry.test(html)) throw new Error('index.html has no <script type="module" src="/src/main.ts"> to replace');
  const built = html
    .replace(devEntry, '')
    .replace(/([ \t]*)<\/head>/, (_, indent) => tags.map((t) => `${indent}  ${t}\n`).join('') + `${indent}</head>`);
  writeFileSync(join(out, 'index.html'), built);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

// The worker: one classic script (service workers registered without `type: 'module'`). It
// starts with "use strict" because tsconfig's `strict` implies `alwaysStrict`, which esbuild honours.
run('esbuild', ['src/sw/worker.ts', ...common, '--format=iife', `--outfile=${join(out, 'service-worker.js')}`]);

console.log(`built ${out}: index.html, assets/, service-worker.js`);
