/** `omnirelay mesh` as a library module: `runMesh` for the CLI, `startMesh` / `Mesh` for tests and embedding (docs/cli-mesh.md). */
export { runMesh, processMeshIo, MESH_EXIT, type MeshIo } from './run.js';
export {
  startMesh,
  Mesh,
  MESH_DEFAULTS,
  MESH_APP_SERVICE,
  MESH_LEADERSHIP_SERVICE,
  type MeshOptions,
  type MeshSnapshot,
  type MeshNodeSnapshot,
  type MeshPeerSnapshot,
  type MeshScopeSnapshot,
  type MeshLeader,
  type MeshEvent,
} from './mesh.js';
export { renderTable, PlainPrinter, eventText, KEYS_HELP, type TableExtras } from './render.js';
export { labelledMeterProvider } from './labelled-meter.js';
