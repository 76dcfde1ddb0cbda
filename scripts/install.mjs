// `npm run setup|demo|test` all start here: install the workspace with pnpm (from npx) once per lockfile change.
import { pnpm } from './pnpm.mjs';
pnpm(['install', '--reporter=append-only']);
