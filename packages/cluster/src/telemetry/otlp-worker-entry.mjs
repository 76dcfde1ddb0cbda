// Entry of the OTLP worker thread. Worker threads do not inherit the parent's module hooks, so the
// TypeScript worker is loaded through tsx here (whether the cluster was started with `--import tsx` or
// through the bin shim's programmatic registration).
import { register } from 'tsx/esm/api';

register();
await import('./otlp-worker.ts');
