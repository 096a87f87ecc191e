import type { ControlPlaneOptions, PeerChooserOptions } from '../config/types.js';
import type { RandomSource } from '../resilience/retry.js';
import { parseEndpoint } from '../transport/endpoint.js';
import { FewestPendingPeerChooser } from './fewest-pending.js';
import { InFlightCounter } from './in-flight.js';
import type { IPeerChooser, PeerCandidate, PeerChoiceContext } from './peer-chooser.js';
import { PreferredPeerChooser } from './preferred-peer.js';
import { RoundRobinPeerChooser } from './round-robin.js';

interface ProfileChooser {
  readonly settings: PeerChooserOptions;
  readonly endpoints: ControlPlaneOptions['endpoints'];
  readonly chooser: IPeerChooser;
}

/** The `host:port` a `peerChooser.preferred` value names: a configured endpoint's, or the value itself. */
export function preferredAuthority(preferred: string, endpoints: ControlPlaneOptions['endpoints']): string {
  const configured = endpoints[preferred];
  return parseEndpoint(configured?.url ?? preferred).authority;
}

/**
 * The default `TOKENS.PeerChooser`: each profile's calls go to the chooser its
 * `peerChooser` option names (round-robin, preferred or fewest-pending), built on first use
 * and rebuilt when a new options snapshot changes that option. In-flight counts are kept
 * once, per peer, for every profile, so a fewest-pending profile sees all calls on a peer.
 */
export class ProfilePeerChooser implements IPeerChooser {
  readonly #options: { readonly current: ControlPlaneOptions };
  readonly #random: RandomSource;
  readonly #inFlight = new InFlightCounter();
  readonly #byProfile = new Map<string, ProfileChooser>();

  constructor(options: { readonly current: ControlPlaneOptions }, random: RandomSource) {
    this.#options = options;
    this.#random = random;
  }

  /** Calls in flight on `peer` (all profiles). */
  pending(peer: string): number {
    return this.#inFlight.get(peer);
  }

  choose(peers: readonly PeerCandidate[], context: PeerChoiceContext): PeerCandidate | undefined {
    return this.#chooserFor(context.profile).choose(peers, context);
  }

  onCallStart(peer: string): void {
    this.#inFlight.start(peer);
  }

  onCallEnd(peer: string): void {
    this.#inFlight.end(peer);
  }

  #chooserFor(profile: string): IPeerChooser {
    const options = this.#options.current;
    const settings = options.profiles[profile]?.peerChooser ?? { kind: 'round-robin' };
    const known = this.#byProfile.get(profile);
    if (known !== undefined && (known.settings === settings || (sameSettings(known.settings, settings) && (settings.kind !== 'preferred' || known.endpoints === options.endpoints)))) {
      return known.chooser;
    }
    const chooser = this.#build(settings, options.endpoints);
    this.#byProfile.set(profile, { settings, endpoints: options.endpoints, chooser });
    return chooser;
  }

  #build(settings: PeerChooserOptions, endpoints: ControlPlaneOptions['endpoints']): IPeerChooser {
    switch (settings.kind) {
      case 'fewest-pending':
        return new FewestPendingPeerChooser(this.#random, this.#inFlight);
      case 'preferred':
        return new PreferredPeerChooser(preferredAuthority(settings.preferred ?? '', endpoints));
      default:
        return new RoundRobinPeerChooser();
    }
  }
}

function sameSettings(a: PeerChooserOptions, b: PeerChooserOptions): boolean {
  return a.kind === b.kind && a.preferred === b.preferred;
}
