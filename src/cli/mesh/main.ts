/** `npm start`: `omnirelay mesh` with its defaults (3 nodes, no metrics port), on this process's terminal. */
import { processMeshIo, runMesh } from './run.js';

const processIo = processMeshIo();
process.exitCode = await runMesh({}, processIo.io);
processIo.dispose();
