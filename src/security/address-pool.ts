/**
 * Items keyed by connection (its peer host:port), grouped by source address, oldest first in all
 * and within each address: what eviction of the oldest connection of an address, or of anyone,
 * needs in O(1).
 */
export class AddressPool<T> {
  private readonly all = new Map<string, { address: string; item: T }>();
  private readonly byAddress = new Map<string, Map<string, T>>();

  /** Adds `item` as the newest of `address` and of the whole pool. */
  add(key: string, address: string, item: T): void {
    this.all.set(key, { address, item });
    let ofAddress = this.byAddress.get(address);
    if (!ofAddress) {
      ofAddress = new Map();
      this.byAddress.set(address, ofAddress);
    }
    ofAddress.set(key, item);
  }

  /** Removes and returns the item under `key`, if there is one. */
  delete(key: string): T | undefined {
    const entry = this.all.get(key);
    if (!entry) return undefined;
    this.all.delete(key);
    const ofAddress = this.byAddress.get(entry.address);
    ofAddress?.delete(key);
    if (ofAddress?.size === 0) this.byAddress.delete(entry.address);
    return entry.item;
  }

  /** The oldest item of `address`, or of the whole pool without one. */
  oldest(address?: string): T | undefined {
    if (address !== undefined) return this.byAddress.get(address)?.values().next().value;
    return this.all.values().next().value?.item;
  }

  /** How many items `address` has, or the whole pool without one. */
  size(address?: string): number {
    return address === undefined ? this.all.size : (this.byAddress.get(address)?.size ?? 0);
  }

  values(): T[] {
    return [...this.all.values()].map((e) => e.item);
  }
}
