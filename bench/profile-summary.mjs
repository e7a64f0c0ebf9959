// Self time per function (and per file) of a V8 .cpuprofile: `node bench/profile-summary.mjs <file>`.
import { readFileSync } from 'node:fs';

const profile = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const self = new Map();
const byFile = new Map();
const dt = new Map();
for (let i = 0; i < profile.samples.length; i++)
  dt.set(profile.samples[i], (dt.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0));
let total = 0;
for (const node of profile.nodes) {
  const time = (dt.get(node.id) ?? 0) / 1000;
  total += time;
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(src|dist)\//, '$1/') || '(native)';
  const key = `${functionName || '(anonymous)'} ${file}:${lineNumber}`;
  self.set(key, (self.get(key) ?? 0) + time);
  const pkg = file
    .split('/')
    .slice(0, file.startsWith('@') ? 2 : 1)
    .join('/');
  byFile.set(pkg, (byFile.get(pkg) ?? 0) + time);
}
const top = (map, n) =>
  [...map]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => `${((100 * v) / total).toFixed(1).padStart(5)} %  ${k}`)
    .join('\n');
console.log(`total ${total.toFixed(0)} ms\n\nby package:\n${top(byFile, 15)}\n\nby function:\n${top(self, 30)}`);
