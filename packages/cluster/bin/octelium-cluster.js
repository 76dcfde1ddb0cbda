#!/usr/bin/env node
// Runs the compiled CLI: dist/ ships in the npm package, and `npm run setup` builds it in the workspace.
import { existsSync } from 'node:fs';

const entry = new URL('../dist/bin.js', import.meta.url);
if (!existsSync(entry)) {
  console.error(`${process.argv[1]}: not built (no dist/bin.js); run \`npm run setup\` at the repository root`);
  process.exit(1);
}
await import(entry.href);
