import { strict as assert } from 'node:assert';
import { ValidationError } from '../../../src/errors';
import { parseAddressList } from '../../../src/util/address';

describe('util/address: parseAddressList', () => {
  it('reads one address or replicas in order, spaces around them ignored', () => {
    assert.deepEqual(parseAddressList('127.0.0.1:15010'), ['127.0.0.1:15010']);
    assert.deepEqual(parseAddressList('a:1, b:2 ,[::1]:3'), ['a:1', 'b:2', '[::1]:3']);
  });

  it('refuses an entry that is not host:port, empty ones included', () => {
    for (const bad of ['', 'a:1,', 'a:1,,b:2', 'a', 'a:1,b:99999']) {
      assert.throws(() => parseAddressList(bad), ValidationError, bad);
    }
  });
});
