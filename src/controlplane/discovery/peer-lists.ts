import { ConfigError, type ConfigIssue } from '../../errors.js';
import type { PeerLists } from '../../factory/target-resolver.js';
import type { EndpointSource } from './service-registry.js';

/**
 * Peer lists for `TOKENS.PeerLists`, one per service, named by the service: a call with
 * `{ peerList: 'pkg.Service' }` goes to one of the endpoints serving it now, and follows
 * scale-up and scale-down without a restart. `source` is a `ServiceRegistry` (this node
 * gossips) or a `DiscoveryClient` (it asks a node that does).
 *
 * A registry's list emits at once, so the factory knows the list from its construction on: while
 * no routable member serves the service (gossip still joining), calls to it fail fast with
 * `PEER_UNAVAILABLE` ("has no members"). A DiscoveryClient's list emits only once the remote
 * node has answered; calls to it queue until then, within their deadline. See docs/discovery.md.
 */
export function discoveryPeerLists(source: EndpointSource, services: readonly string[]): PeerLists {
  const issues: ConfigIssue[] = [];
  const seen = new Set<string>();
  services.forEach((service, i) => {
    if (typeof service !== 'string' || service.trim() === '') issues.push({ key: `services[${i}]`, message: 'must be a fully qualified gRPC service name (package.Service), not empty' });
    else if (seen.has(service)) issues.push({ key: `services[${i}]`, message: `"${service}" is listed twice` });
    seen.add(service);
  });
  if (issues.length > 0) throw new ConfigError(issues, 'discovery peer lists');
  return Object.freeze(Object.fromEntries(services.map((service) => [service, source.endpoints$(service)])));
}
