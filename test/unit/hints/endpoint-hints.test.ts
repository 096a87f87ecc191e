import { describe, expect, it } from '@jest/globals';
import { BehaviorSubject, Subject } from 'rxjs';
import { resolveOptions } from '../../../src/config/schema.js';
import type { ControlPlaneOptions } from '../../../src/config/types.js';
import { EndpointError } from '../../../src/errors.js';
import { EndpointHintStore, type EndpointHintUpdate } from '../../../src/hints/endpoint-hints.js';

function setup() {
  const options = new BehaviorSubject<ControlPlaneOptions>(
    resolveOptions({
      profiles: { 'control-plane': { tls: { mode: 'tls' } } },
      endpoints: { 'node-a': { url: 'https://10.0.0.1:7001', hints: { http3: 'deny' } }, 'node-b': { url: 'https://[::1]:7002' } },
    }),
  );
  const updates = new Subject<EndpointHintUpdate>();
  const store = new EndpointHintStore(options, updates);
  const changes: string[] = [];
  store.changes$.subscribe((c) => changes.push(`${c.authority} http3=${String(c.current.http3)} draining=${String(c.current.draining)}`));
  return { options, updates, store, changes };
}

describe('EndpointHintStore', () => {
  it('starts from the configured hints, keyed by host:port', () => {
    const { store } = setup();
    expect(store.get('10.0.0.1:7001')).toEqual({ http3: 'deny' });
    expect(store.get('[::1]:7002')).toEqual({});
    expect(store.get('unknown:1')).toEqual({});
  });

  it('applies live updates synchronously, by endpoint name, URL or host:port, and reports each change once', () => {
    const { updates, store, changes } = setup();
    updates.next({ endpoint: 'node-b', http3: 'deny' });
    expect(store.get('[::1]:7002').http3).toBe('deny');
    updates.next({ endpoint: 'https://10.0.0.1:7001', http3: 'allow' });
    expect(store.get('10.0.0.1:7001').http3).toBe('allow');
    updates.next({ endpoint: '10.0.0.1:7001', draining: true });
    expect(store.get('10.0.0.1:7001')).toEqual({ http3: 'allow', draining: true });
    updates.next({ endpoint: '10.0.0.1:7001', draining: true });
    expect(changes).toEqual([
      '[::1]:7002 http3=deny draining=undefined',
      '10.0.0.1:7001 http3=allow draining=undefined',
      '10.0.0.1:7001 http3=allow draining=true',
    ]);
  });

  it("takes http3 'require' live over a configured deny, and reports the change", () => {
    const { updates, store, changes } = setup();
    updates.next({ endpoint: 'node-a', http3: 'require' });
    expect(store.get('10.0.0.1:7001')).toEqual({ http3: 'require', draining: undefined });
    expect(changes).toEqual(['10.0.0.1:7001 http3=require draining=undefined']);
  });

  it('drops live hints on reset, falling back to the configured ones', () => {
    const { updates, store } = setup();
    updates.next({ endpoint: 'node-a', http3: 'allow', draining: true });
    updates.next({ endpoint: 'node-a', reset: true });
    expect(store.get('10.0.0.1:7001')).toEqual({ http3: 'deny' });
  });

  it('follows new options snapshots, keeping live overrides on top', () => {
    const { options, updates, store } = setup();
    updates.next({ endpoint: 'node-b', draining: true });
    options.next(resolveOptions({ profiles: { 'control-plane': { tls: { mode: 'tls' } } }, endpoints: { 'node-b': { url: 'https://[::1]:7002', hints: { http3: 'deny' } } } }));
    expect(store.get('[::1]:7002')).toEqual({ http3: 'deny', draining: true });
    expect(store.get('10.0.0.1:7001')).toEqual({});
  });

  it('rejects an update for an endpoint it cannot parse, naming it', () => {
    const { store } = setup();
    expect(() => store.apply({ endpoint: 'ftp://x:1', http3: 'deny' })).toThrow(EndpointError);
    expect(() => store.apply({ endpoint: 'no-port-here', http3: 'deny' })).toThrow(/no-port-here/);
    store.dispose();
  });
});
