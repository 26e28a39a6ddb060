// Every operation memjs (npm, 1.3.2; binary protocol only) offers, each
// result checked.  memjs 1.3.2 has no version() call: the server's version
// is checked through stats(), which is how memjs exposes it.
// Usage: node memjs_ops.js HOST PORT   (NODE_PATH=tests/clients/node_modules)
// Prints "ok <op>" per operation and "ALL OK" at the end; exits 1 at the
// first wrong result.  Run by test_memjs.py against memcached and cairn.
'use strict';

const assert = require('assert');
const memjs = require('memjs');

const [host, port] = process.argv.slice(2);
const addr = `${host}:${port}`;
const silent = { log: () => {} };

function check(name, got, want) {
  try {
    assert.deepStrictEqual(got, want);
  } catch (e) {
    console.log(`FAIL ${name}: got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
    process.exit(1);
  }
  console.log(`ok ${name}`);
}

// stats / statsWithKey / resetStats take a callback called once per server
function statsOf(mc, key) {
  return new Promise((resolve, reject) => {
    mc.statsWithKey(key, (err, server, stats) => (err ? reject(err) : resolve([server, stats])));
  });
}

// (memjs 1.3.2's promise form of decrement needs an options object: pass {})
const str = (r) => (r.value === null ? null : r.value.toString());

async function main() {
  const mc = memjs.Client.create(addr, { timeout: 5, conntimeout: 5, retries: 0, logger: silent });

  check('flush', await mc.flush(), { [addr]: true });
  check('get miss', await mc.get('k1'), { value: null, flags: null });
  check('set', await mc.set('k1', 'v1'), true);
  check('get hit', str(await mc.get('k1')), 'v1');
  check('get flags (memjs stores 0)', (await mc.get('k1')).flags, Buffer.from([0, 0, 0, 0]));
  const bin = Buffer.from([0, 1, 2, 255]);
  check('set binary value', await mc.set('kb', bin), true);
  check('get binary value', (await mc.get('kb')).value, bin);
  check('set with expires', await mc.set('kt', 'tv', { expires: 100 }), true);
  check('get with expires', str(await mc.get('kt')), 'tv');
  const big = 'x'.repeat(300000);
  check('set big value', await mc.set('kbig', big), true);
  check('get big value', str(await mc.get('kbig')), big);

  check('add existing', await mc.add('k1', 'other'), false);
  check('add new', await mc.add('k2', 'v2'), true);
  check('get added', str(await mc.get('k2')), 'v2');
  check('replace missing', await mc.replace('nokey', 'x'), false);
  check('replace existing', await mc.replace('k2', 'v2r'), true);
  check('get replaced', str(await mc.get('k2')), 'v2r');

  check('delete existing', await mc.delete('k2'), true);
  check('delete missing', await mc.delete('k2'), false);
  check('get deleted', str(await mc.get('k2')), null);

  check('increment missing creates initial', await mc.increment('cnt', 1, { initial: 10 }),
        { success: true, value: 10 });
  check('increment', await mc.increment('cnt', 1, {}), { success: true, value: 11 });
  check('increment by 5', await mc.increment('cnt', 5, {}), { success: true, value: 16 });
  check('decrement', await mc.decrement('cnt', 1, {}), { success: true, value: 15 });
  check('decrement by 20 (floors at 0)', await mc.decrement('cnt', 20, {}), { success: true, value: 0 });
  check('decrement missing creates initial', await mc.decrement('cnt2', 1, { initial: 7 }),
        { success: true, value: 7 });
  check('get counter', str(await mc.get('cnt2')), '7');

  check('set for append', await mc.set('ap', 'mid'), true);
  check('append', await mc.append('ap', '-end'), true);
  check('prepend', await mc.prepend('ap', 'start-'), true);
  // memjs 1.3.2's prepend() sends opcode 0x0E (APPEND), not 0x0F (PREPEND):
  // a memjs bug, so the server rightly appends.
  check('get appended (prepend sent as APPEND)', str(await mc.get('ap')), 'mid-endstart-');
  // status 5 (NOT_STORED) is an error to memjs
  check('append missing', await mc.append('noap', 'x').then(() => 'resolved', (e) => e.message),
        'MemJS APPEND: Item not stored');

  check('touch existing', await mc.touch('k1', 100), true);
  check('touch missing', await mc.touch('nokey', 100), false);
  check('get after touch', str(await mc.get('k1')), 'v1');

  let [server, stats] = await statsOf(mc, '');
  check('stats: server', server, addr);
  check('stats: pid, version, curr_items',
        ['pid', 'version', 'curr_items'].every((k) => k in stats), true);
  check('stats: version is a version number', /^\d+\.\d+/.test(stats.version), true);
  check('stats: cmd_get counted', Number(stats.cmd_get) > 0, true);
  const viaStats = await new Promise((resolve, reject) =>
    mc.stats((err, srv, st) => (err ? reject(err) : resolve(st))));
  check('stats(): same version', viaStats.version, stats.version);
  [server, stats] = await statsOf(mc, 'items');
  check('statsWithKey items: an object', typeof stats, 'object');
  await new Promise((resolve, reject) =>
    mc.resetStats((err, srv) => (err ? reject(err) : resolve(srv))));
  [server, stats] = await statsOf(mc, '');
  check('resetStats: cmd_get back to 0', stats.cmd_get, '0');

  check('flush', await mc.flush(), { [addr]: true });
  check('get after flush', str(await mc.get('k1')), null);

  // quit: the server answers QUIT and closes; memjs closes its socket
  const sock = mc.servers[0];
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no close after quit within 5 s')), 5000);
    sock._socket.once('close', () => { clearTimeout(t); resolve(); });
    mc.quit();
  });
  check('quit closed the connection', sock._socket === undefined || sock._socket.destroyed, true);
  mc.close();
  console.log('ALL OK');
}

main().catch((e) => {
  console.log(`FAIL: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
