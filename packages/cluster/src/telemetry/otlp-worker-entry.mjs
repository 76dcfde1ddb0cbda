// Entry of the OTLP worker thread when the cluster runs from TypeScript sources (tests, `--import tsx`); the
// compiled cluster (dist/) starts the compiled otlp-worker.js instead, and the build leaves this file out.
// Worker threads do not inherit the parent's module hooks, so the TypeScript worker is loaded through tsx here.
import { register } from 'tsx/esm/api';

register();
await import('./otlp-worker.ts');
