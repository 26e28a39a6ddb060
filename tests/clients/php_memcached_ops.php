<?php
// Every method php-memcached (Debian's 3.2.0, on libmemcached) offers that
// talks to a server, each result checked.
// Usage: php php_memcached_ops.php HOST PORT binary|ascii
// Prints "ok <op>" per operation and "ALL OK" at the end; exits 1 at the
// first wrong result.  Run by test_php_memcached.py against memcached and
// cairn.  Not covered: getAllKeys (libmemcached's "stats cachedump" walk,
// which memcached 1.6 answers only partially), setSaslAuthData (SASL is
// tested elsewhere), setBucket, setEncodingKey (client-side only).

[$_, $host, $port, $mode] = $argv;
$port = (int)$port;
$binary = $mode === 'binary';

function check($name, $got, $want)
{
    if ($got !== $want) {
        echo "FAIL $name: got ", var_export($got, true), ", expected ", var_export($want, true), "\n";
        exit(1);
    }
    echo "ok $name\n";
}

$m = new Memcached();
check('isPristine (new)', $m->isPristine(), true);
check('isPersistent', $m->isPersistent(), false);
check('setOptions', $m->setOptions([
    Memcached::OPT_BINARY_PROTOCOL => $binary,
    Memcached::OPT_COMPRESSION => false,   // append/prepend need it off
    Memcached::OPT_CONNECT_TIMEOUT => 5000,
    Memcached::OPT_RECV_TIMEOUT => 5000000,
    Memcached::OPT_SEND_TIMEOUT => 5000000,
    Memcached::OPT_POLL_TIMEOUT => 5000,
]), true);
check('getOption binary', (bool)$m->getOption(Memcached::OPT_BINARY_PROTOCOL), $binary);
check('setOption tcp_nodelay', $m->setOption(Memcached::OPT_TCP_NODELAY, true), true);
check('addServer', $m->addServer($host, $port), true);
check('getServerList', $m->getServerList(), [['host' => $host, 'port' => $port, 'type' => 'TCP']]);
check('getServerByKey', $m->getServerByKey('anykey')['port'], $port);
check('checkKey good', $m->checkKey('good_key'), true);
// a space is only invalid in an ASCII key
check('checkKey with a space', $m->checkKey("bad key"), $binary);
check('checkKey too long', $m->checkKey(str_repeat('k', 251)), false);
check('flush', $m->flush(), true);

check('get miss', $m->get('k1'), false);
check('getResultCode NOTFOUND', $m->getResultCode(), Memcached::RES_NOTFOUND);
check('getResultMessage', $m->getResultMessage(), 'NOT FOUND');
check('set', $m->set('k1', 'v1'), true);
check('getResultCode SUCCESS', $m->getResultCode(), Memcached::RES_SUCCESS);
check('get hit', $m->get('k1'), 'v1');
check('set int', $m->set('ki', 42), true);
check('get int (flags kept)', $m->get('ki'), 42);
check('set array (serialized)', $m->set('ka', ['a' => [1, 2]]), true);
check('get array', $m->get('ka'), ['a' => [1, 2]]);
check('set with ttl', $m->set('kt', 'tv', 100), true);
check('get with ttl', $m->get('kt'), 'tv');
$big = str_repeat('x', 300000);
check('set big value', $m->set('kbig', $big), true);
check('get big value', $m->get('kbig'), $big);
check('setByKey', $m->setByKey('srv', 'kk', 'byk'), true);
check('getByKey', $m->getByKey('srv', 'kk'), 'byk');

check('add existing', $m->add('k1', 'other'), false);
// binary: status KEY_EXISTS; ASCII: NOT_STORED
check('getResultCode after add existing', $m->getResultCode(),
      $binary ? Memcached::RES_DATA_EXISTS : Memcached::RES_NOTSTORED);
check('add new', $m->add('k2', 'v2'), true);
check('addByKey', $m->addByKey('srv', 'k2b', 'v2b'), true);
check('get added', $m->get('k2'), 'v2');
check('replace missing', $m->replace('nokey', 'x'), false);
check('replace existing', $m->replace('k2', 'v2r'), true);
check('replaceByKey', $m->replaceByKey('srv', 'k2b', 'v2br'), true);
check('get replaced', [$m->get('k2'), $m->get('k2b')], ['v2r', 'v2br']);

check('delete existing', $m->delete('k2'), true);
check('delete missing', $m->delete('k2'), false);
check('getResultCode after delete missing', $m->getResultCode(), Memcached::RES_NOTFOUND);
check('deleteByKey', $m->deleteByKey('srv', 'k2b'), true);
check('get deleted', $m->get('k2'), false);

check('set counter', $m->set('cnt', 10), true);
check('increment', $m->increment('cnt'), 11);
check('increment by 5', $m->increment('cnt', 5), 16);
check('decrement', $m->decrement('cnt'), 15);
check('decrement by 20 (floors at 0)', $m->decrement('cnt', 20), 0);
check('incrementByKey', $m->incrementByKey('srv', 'cnt', 3), 3);
check('decrementByKey', $m->decrementByKey('srv', 'cnt', 1), 2);
check('increment missing', $m->increment('nocnt'), false);
if ($binary) {
    // the initial value rides in the binary request; ASCII has no such field
    check('increment missing, initial 100', $m->increment('nocnt', 1, 100), 100);
    check('increment after initial', $m->increment('nocnt', 1, 100), 101);
    check('decrement missing, initial 7', $m->decrement('nocnt2', 1, 7), 7);
    check('incrementByKey missing, initial 5', $m->incrementByKey('srv', 'nocnt3', 1, 5), 5);
    check('decrementByKey missing, initial 9', $m->decrementByKey('srv', 'nocnt4', 1, 9), 9);
    // created by the server, with flags 0: a plain string
    check('get counter created with an initial value', $m->get('nocnt'), '101');
}

check('set for append', $m->set('ap', 'mid'), true);
check('append', $m->append('ap', '-end'), true);
check('prepend', $m->prepend('ap', 'start-'), true);
check('appendByKey', $m->appendByKey('srv', 'ap', '!'), true);
check('prependByKey', $m->prependByKey('srv', 'ap', '>'), true);
check('get appended', $m->get('ap'), '>start-mid-end!');
check('append missing', $m->append('noap', 'x'), false);
check('prepend missing', $m->prepend('noap', 'x'), false);

$r = $m->get('k1', null, Memcached::GET_EXTENDED);
check('get extended value', $r['value'], 'v1');
$cas = $r['cas'];
check('get extended cas > 0', is_numeric($cas) && $cas > 0, true);
check('cas with right token', $m->cas($cas, 'k1', 'v1-cas'), true);
check('get after cas', $m->get('k1'), 'v1-cas');
check('cas with stale token', $m->cas($cas, 'k1', 'stale'), false);
check('getResultCode after stale cas', $m->getResultCode(), Memcached::RES_DATA_EXISTS);
$r = $m->getByKey('srv', 'k1', null, Memcached::GET_EXTENDED);
check('casByKey', $m->casByKey($r['cas'], 'srv', 'k1', 'v1-casbk'), true);
check('get after casByKey', $m->get('k1'), 'v1-casbk');

check('touch existing', $m->touch('k1', 100), true);
check('touch missing', $m->touch('nokey', 100), false);
check('touchByKey', $m->touchByKey('srv', 'k1', 200), true);
check('get after touch', $m->get('k1'), 'v1-casbk');

check('setMulti', $m->setMulti(['m1' => 'a', 'm2' => 'b', 'm3' => 'c']), true);
check('setMultiByKey', $m->setMultiByKey('srv', ['m4' => 'd']), true);
$got = $m->getMulti(['m1', 'm2', 'm3', 'nokey']);
check('getMulti', $got, ['m1' => 'a', 'm2' => 'b', 'm3' => 'c']);
check('getMulti preserve order', $m->getMulti(['m3', 'nokey', 'm1'], Memcached::GET_PRESERVE_ORDER),
      ['m3' => 'c', 'nokey' => null, 'm1' => 'a']);
check('getMultiByKey', $m->getMultiByKey('srv', ['m4', 'm1']), ['m4' => 'd', 'm1' => 'a']);
$ext = $m->getMulti(['m1'], Memcached::GET_EXTENDED);
check('getMulti extended', $ext['m1']['value'] === 'a' && $ext['m1']['cas'] > 0, true);
check('deleteMulti', $m->deleteMulti(['m1', 'nokey']), ['m1' => true, 'nokey' => Memcached::RES_NOTFOUND]);
check('deleteMultiByKey', $m->deleteMultiByKey('srv', ['m2']), ['m2' => true]);
check('getMulti after deleteMulti', $m->getMulti(['m1', 'm2', 'm3']), ['m3' => 'c']);

check('getDelayed', $m->getDelayed(['m3', 'm4', 'nokey']), true);
$rows = [];
while ($row = $m->fetch()) {
    $rows[$row['key']] = $row['value'];
}
ksort($rows);
check('fetch (after getDelayed)', $rows, ['m3' => 'c', 'm4' => 'd']);
check('getDelayedByKey', $m->getDelayedByKey('srv', ['m3']), true);
$all = $m->fetchAll();
check('fetchAll', [count($all), $all[0]['key'], $all[0]['value']], [1, 'm3', 'c']);
$seen = [];
check('getDelayed with callback', $m->getDelayed(['m3', 'm4'], false, function ($mc, $item) use (&$seen) {
    $seen[$item['key']] = $item['value'];
}), true);
ksort($seen);
check('getDelayed callback items', $seen, ['m3' => 'c', 'm4' => 'd']);
$cb = $m->get('rt', function ($mc, $key, &$value) {
    $value = 'from-cb';
    return true;
});
check('get with read-through callback', $cb, 'from-cb');
check('read-through callback stored it', $m->get('rt'), 'from-cb');

$stats = $m->getStats();
$name = "$host:$port";
check('getStats: one server', array_keys($stats), [$name]);
check('getStats: pid, version, curr_items',
      isset($stats[$name]['pid'], $stats[$name]['version'], $stats[$name]['curr_items']), true);
check('getStats: cmd_get counted', $stats[$name]['cmd_get'] > 0, true);
$items = $m->getStats('items');
check('getStats items: an array', is_array($items[$name] ?? null), true);
$ver = $m->getVersion();
check('getVersion: one server', array_keys($ver), [$name]);
check('getVersion: a version number', (bool)preg_match('/^\d+\.\d+/', $ver[$name]), true);

check('flushBuffers', $m->flushBuffers(), true);
check('getLastErrorMessage (no error yet)', is_string($m->getLastErrorMessage()), true);
check('flush with delay 0', $m->flush(0), true);
check('get after flush', $m->get('m3'), false);
check('quit', $m->quit(), true);
check('get after quit (reconnects)', $m->get('m3'), false);
check('set after quit', $m->set('after', 'quit'), true);
check('get after quit', $m->get('after'), 'quit');
check('resetServerList', $m->resetServerList(), true);
check('getServerList after reset', $m->getServerList(), []);
echo "ALL OK\n";
