/**
 * The timers of the control-plane agents (gossip rounds, leadership campaigns and renewals, the
 * embedded lease store's expiry): one seam, so tests drive every agent with one fake clock.
 */
export interface ControlPlaneTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemTimers: ControlPlaneTimers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
