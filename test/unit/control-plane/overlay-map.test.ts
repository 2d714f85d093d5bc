import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { OverlayMap, overlayDelta } from '../../../control-plane/overlay-map';
import { DeviceMeshError } from '../../../src/errors';

type Write = { key: string; value: number | undefined };

const writesArb = fc.array(fc.record({ key: fc.constantFrom('a', 'b', 'c', 'd'), value: fc.option(fc.nat({ max: 3 }), { nil: undefined }) }));

function play(target: { set(k: string, v: number): void; delete(k: string): unknown }, writes: readonly Write[]): void {
  for (const { key, value } of writes) {
    if (value === undefined) target.delete(key);
    else target.set(key, value);
  }
}

const contents = (m: OverlayMap<string, number>): [string, number][] =>
  ['a', 'b', 'c', 'd'].flatMap((k): [string, number][] => (m.has(k) ? [[k, m.get(k) as number]] : []));

describe('control-plane overlay map', () => {
  it('reads as a plain map would, leaves its base alone until folded, and rolls back to any mark', () => {
    fc.assert(
      fc.property(writesArb, writesArb, writesArb, (initial, kept, undone) => {
        const plain = new Map<string, number>();
        play(plain, initial);
        const base = new OverlayMap(new Map(plain));
        const draft = base.derive();
        play(draft, kept);
        play(plain, kept);
        const mark = draft.mark();
        play(draft, undone);
        draft.rollback(mark);

        assert.deepEqual(contents(draft), [...plain.entries()].sort());
        assert.equal(draft.size, plain.size);
        assert.deepEqual([...draft.values()].sort(), [...plain.values()].sort());
        const delta = overlayDelta(draft, (x, y) => x === y);
        for (const k of draft.changedKeys()) assert.notEqual(draft.get(k), draft.baseValue(k));
        assert.deepEqual(delta.remove, ['a', 'b', 'c', 'd'].filter((k) => base.has(k) && !plain.has(k)));
        assert.equal(delta.put.length, ['a', 'b', 'c', 'd'].filter((k) => plain.has(k) && base.get(k) !== plain.get(k)).length);

        draft.fold();
        assert.deepEqual(contents(base), [...plain.entries()].sort(), 'the fold is what the base now holds');
      }),
      { numRuns: 300 },
    );
  });

  it('refuses to derive from a draft that has not been folded', () => {
    const draft = new OverlayMap<string, number>().derive();
    draft.set('a', 1);
    assert.throws(() => draft.derive(), (err: unknown) => err instanceof DeviceMeshError && err.code === 'INTERNAL');
    draft.fold();
    assert.equal(draft.derive().get('a'), 1);
  });
});
