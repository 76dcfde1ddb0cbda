import { runCli } from '@octelium-ts/shared';
import { buildProgram } from './program.js';

await runCli(buildProgram(), 'octeliumctl');
