#!/usr/bin/env node
// Builds the control plane's dashboard into dist/dashboard: compiles dashboard/src (browser ES
// modules, its own tsconfig) and copies the page, its stylesheet and uPlot from node_modules.
// No bundler: the page maps the "uplot" import to the copied file with an import map.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const out = path.join(root, 'dist', 'dashboard');
const compiled = path.join(root, 'dist', 'dashboard-build', 'dashboard', 'src');

execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(root, 'dashboard', 'tsconfig.json')], { stdio: 'inherit' });
fs.mkdirSync(out, { recursive: true });
const uplot = path.dirname(require.resolve('uplot/dist/uPlot.esm.js'));
const copies = [
  [path.join(root, 'dashboard', 'index.html'), 'index.html'],
  [path.join(root, 'dashboard', 'dashboard.css'), 'dashboard.css'],
  [path.join(compiled, 'dashboard.js'), 'dashboard.js'],
  [path.join(uplot, 'uPlot.esm.js'), 'uPlot.esm.js'],
  [path.join(uplot, 'uPlot.min.css'), 'uPlot.min.css'],
];
for (const [from, name] of copies) fs.copyFileSync(from, path.join(out, name));
