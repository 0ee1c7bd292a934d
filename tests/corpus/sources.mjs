// Prints what tests/corpus/install needs, read from the app modules' `source` fields:
//   node sources.mjs debian|pypi|npm   one package (or npm dir) per line
// Refuses an unpinned PyPI requirement, so the venv is the same on every machine.
import { loadApps } from './lib/apps.mjs';

const want = process.argv[2];
if (!['debian', 'pypi', 'npm'].includes(want)) {
  console.error('usage: node sources.mjs debian|pypi|npm');
  process.exit(2);
}
const out = new Set();
for (const app of await loadApps()) {
  const s = app.source;
  // An app from one ecosystem may need a Debian package beside it (flood drives transmission-daemon).
  if (want === 'debian') for (const p of s.debian ?? []) out.add(p);
  if (s.ecosystem !== want) continue;
  if (want === 'npm') {
    out.add(s.dir);
    continue;
  }
  for (const p of s.packages ?? []) {
    if (want === 'pypi' && !/^[A-Za-z0-9._-]+(\[[A-Za-z0-9,._-]+\])?==[A-Za-z0-9.+!-]+$/.test(p)) {
      console.error(`tests/corpus/apps/${app.name}.mjs: PyPI requirement ${p} is not pinned (name==version)`);
      process.exit(1);
    }
    out.add(p);
  }
}
for (const line of [...out].sort()) console.log(line);
