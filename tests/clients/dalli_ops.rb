# Every operation ruby-dalli (Debian's 3.0.6; binary protocol only) offers,
# each result checked.
# Usage: ruby dalli_ops.rb HOST PORT
# Prints "ok <op>" per operation and "ALL OK" at the end; exits 1 at the
# first wrong result.  Run by test_dalli.py against memcached and cairn.

require 'dalli'
require 'logger'

host, port = ARGV[0], ARGV[1]
Dalli.logger = Logger.new($stderr)
Dalli.logger.level = Logger::ERROR

def check(name, got, want)
  unless got == want
    puts "FAIL #{name}: got #{got.inspect}, expected #{want.inspect}"
    exit 1
  end
  puts "ok #{name}"
end

dc = Dalli::Client.new("#{host}:#{port}", socket_timeout: 5, socket_max_failures: 1,
                                          down_retry_delay: 60)
check('alive! (a server answers)', !dc.alive!.nil?, true)
check('flush', dc.flush.all? { |r| r == true }, true)

check('get miss', dc.get('k1'), nil)
check('set', dc.set('k1', 'v1').is_a?(Integer), true) # the new item's CAS
check('get hit', dc.get('k1'), 'v1')
check('set object (Marshal)', dc.set('ko', { 'a' => [1, 2] }) != false, true)
check('get object', dc.get('ko'), { 'a' => [1, 2] })
check('set raw', dc.set('kr', "\x00\x01raw".b, nil, raw: true) != false, true)
check('get raw', dc.get('kr', raw: true), "\x00\x01raw".b)
check('set with ttl', dc.set('kt', 'tv', 100) != false, true)
check('get with ttl', dc.get('kt'), 'tv')
big = 'x' * 300_000
check('set big value', dc.set('kbig', big) != false, true)
check('get big value', dc.get('kbig'), big)

check('add existing', dc.add('k1', 'other'), false)
check('add new', dc.add('k2', 'v2').is_a?(Integer), true)
check('get added', dc.get('k2'), 'v2')
# Dalli 3.0.6 returns the reply's CAS field for a replace of a missing key
# (status 1, KEY_NOT_FOUND, CAS 0): 0, not false; the key stays missing.
check('replace missing', dc.replace('nokey', 'x'), 0)
check('replace missing stored nothing', dc.get('nokey'), nil)
check('replace existing', dc.replace('k2', 'v2b').is_a?(Integer), true)
check('get replaced', dc.get('k2'), 'v2b')

check('delete existing', dc.delete('k2'), true)
check('delete missing', dc.delete('k2'), nil) # status 1 (KEY_NOT_FOUND) -> nil
check('get deleted', dc.get('k2'), nil)

check('incr missing, no default', dc.incr('cnt'), nil)
check('incr missing, default 10', dc.incr('cnt', 1, nil, 10), 10)
check('incr', dc.incr('cnt'), 11)
check('incr by 5', dc.incr('cnt', 5), 16)
check('decr', dc.decr('cnt'), 15)
check('decr by 20 (floors at 0)', dc.decr('cnt', 20), 0)
check('decr missing, default 7', dc.decr('cnt2', 1, nil, 7), 7)
check('get counter (raw)', dc.get('cnt', raw: true).strip, '0')

check('set for append', dc.set('ap', 'mid', nil, raw: true) != false, true)
check('append', dc.append('ap', '-end'), true)
check('prepend', dc.prepend('ap', 'start-'), true)
check('get appended', dc.get('ap', raw: true), 'start-mid-end')
check('append missing', dc.append('noap', 'x'), false)
check('prepend missing', dc.prepend('noap', 'x'), false)

check('cas missing', dc.cas('nokey') { |v| v + 'x' }, nil)
check('cas existing', dc.cas('k1') { |v| v + '-cas' }.is_a?(Integer), true)
check('get after cas', dc.get('k1'), 'v1-cas')
check('cas! missing (sets)', dc.cas!('newcas') { |v| "was #{v.inspect}" }.is_a?(Integer), true)
check('get after cas!', dc.get('newcas'), 'was nil')

val, cas = dc.get_cas('k1')
check('get_cas value', val, 'v1-cas')
check('get_cas cas > 0', cas.is_a?(Integer) && cas > 0, true)
check('get_cas miss', dc.get_cas('nokey'), [nil, 0])
newcas = dc.set_cas('k1', 'v1-setcas', cas)
check('set_cas right token', newcas.is_a?(Integer) && newcas != cas, true)
check('set_cas stale token', dc.set_cas('k1', 'stale', cas), false)
check('get after set_cas', dc.get('k1'), 'v1-setcas')
check('replace_cas stale token', dc.replace_cas('k1', 'stale', cas), false)
rcas = dc.replace_cas('k1', 'v1-replcas', newcas)
check('replace_cas right token', rcas.is_a?(Integer), true)
check('get after replace_cas', dc.get('k1'), 'v1-replcas')
check('delete_cas stale token', dc.delete_cas('k1', newcas), false)
check('get after stale delete_cas', dc.get('k1'), 'v1-replcas')
check('delete_cas right token', dc.delete_cas('k1', rcas), true)
check('get after delete_cas', dc.get('k1'), nil)

dc.set('k1', 'v1')
check('touch existing', dc.touch('k1', 100), true)
check('touch missing', dc.touch('nokey', 100), nil)
check('gat existing', dc.gat('k1', 100), 'v1')
check('gat missing', dc.gat('nokey', 100), nil)

dc.multi do
  dc.set('m1', 'a')
  dc.set('m2', 'b')
  dc.set('m3', 'c')
  dc.delete('m3')
  dc.add('m4', 'd')
end
check('quiet multi block (set/delete/add)', dc.get_multi('m1', 'm2', 'm3', 'm4', 'nokey'),
      { 'm1' => 'a', 'm2' => 'b', 'm4' => 'd' })
check('get_multi array', dc.get_multi(%w[m1 m2]), { 'm1' => 'a', 'm2' => 'b' })
seen = {}
dc.get_multi('m1', 'm4', 'nokey') { |k, v| seen[k] = v }
check('get_multi with block', seen, { 'm1' => 'a', 'm4' => 'd' })
cases = dc.get_multi_cas('m1', 'm2', 'nokey')
check('get_multi_cas keys', cases.keys.sort, %w[m1 m2])
check('get_multi_cas values', cases['m1'][0], 'a')
check('get_multi_cas cas > 0', cases['m2'][1].is_a?(Integer) && cases['m2'][1] > 0, true)

calls = 0
check('fetch miss runs the block', dc.fetch('f1', 100) { calls += 1; 'fv' }, 'fv')
check('fetch hit does not', dc.fetch('f1', 100) { calls += 1; 'other' }, 'fv')
check('fetch block calls', calls, 1)
check('fetch without block', dc.fetch('nokey'), nil)

check('with (connection yielded)', dc.with { |c| c.get('m1') }, 'a')

stats = dc.stats
check('stats: one server', stats.keys, ["#{host}:#{port}"])
st = stats.values.first
check('stats: pid, version, curr_items', %w[pid version curr_items].all? { |k| st.key?(k) }, true)
check('stats: cmd_get counted', st['cmd_get'].to_i > 0, true)
items = dc.stats(:items).values.first
check('stats items: a hash', items.is_a?(Hash), true)
slabs = dc.stats(:slabs).values.first
check('stats slabs: a hash', slabs.is_a?(Hash), true)
check('reset_stats', dc.reset_stats, [true])
check('stats after reset: cmd_get 0', dc.stats.values.first['cmd_get'], '0')

ver = dc.version
check('version: one server', ver.keys, ["#{host}:#{port}"])
check('version: a version number', ver.values.first.to_s.match?(/\A\d+\.\d+/), true)

check('flush with delay 0', dc.flush(0).all? { |r| r == true }, true)
check('get after flush', dc.get('m1'), nil)
check('flush_all alias', dc.flush_all.all? { |r| r == true }, true)
dc.close
check('get after close (reconnects)', dc.get('m1'), nil)
dc.close
puts 'ALL OK'
