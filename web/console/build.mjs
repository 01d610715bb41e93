// Builds the console into dist/: index.html plus content-hashed assets/, which src/Airlock embeds
// (Airlock.csproj runs `npm ci` and this script). No CDN, no outside fonts: everything the page loads is here.
import * as esbuild from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';

const out = 'dist';
await rm(out, { recursive: true, force: true });
await mkdir(`${out}/assets`, { recursive: true });

const result = await esbuild.build({
  entryPoints: ['src/app.js', 'src/app.css'],
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2022', 'chrome111', 'firefox113', 'safari16'],
  outdir: `${out}/assets`,
  entryNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
});

const outputs = Object.keys(result.metafile.outputs).map((path) => basename(path));
const script = outputs.find((name) => name.startsWith('app-') && name.endsWith('.js'));
const style = outputs.find((name) => name.startsWith('app-') && name.endsWith('.css'));
if (!script || !style) {
  throw new Error(`esbuild produced ${outputs.join(', ')}: no app-*.js and app-*.css`);
}

const icon = await readFile('src/icon.svg');
const iconName = `icon-${createHash('sha256').update(icon).digest('hex').slice(0, 8)}.svg`;
await writeFile(`${out}/assets/${iconName}`, icon);

const page = (await readFile('src/index.html', 'utf8'))
  .replaceAll('%SCRIPT%', `/ui/assets/${script}`)
  .replaceAll('%STYLE%', `/ui/assets/${style}`)
  .replaceAll('%ICON%', `/ui/assets/${iconName}`);
await writeFile(`${out}/index.html`, page);
console.log(`console: dist/index.html, assets/${script}, assets/${style}, assets/${iconName}`);
