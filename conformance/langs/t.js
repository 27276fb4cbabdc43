const http = require('http'), net = require('net'), fs = require('fs'), cp = require('child_process'), dgram = require('dgram'), os = require('os'), zlib = require('zlib'), path = require('path');
const { Worker, isMainThread, parentPort } = require('worker_threads');
if (!isMainThread) { parentPort.postMessage(21 * 2); return; }
(async () => {
  const srv = http.createServer((q, r) => r.end('hi ' + q.url)).listen(0, '127.0.0.1');
  await new Promise(r => srv.on('listening', r));
  const body = await new Promise((res, rej) => http.get(`http://127.0.0.1:${srv.address().port}/x`, r => { let b = ''; r.on('data', c => b += c); r.on('end', () => res(b)); }).on('error', rej));
  console.log('http', body); srv.close();
  console.log('exec', cp.execSync('echo child; echo err 1>&2', {stdio: ['pipe', 'pipe', 'ignore']}).toString().trim());
  const r = cp.spawnSync('sh', ['-c', 'exit 5']); console.log('spawn', r.status);
  const w = new Worker(__filename); console.log('worker', await new Promise(r => w.on('message', r)));
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'n-'));
  const watcher = fs.watch(d); const ev = new Promise(r => watcher.on('change', (e, f) => r(e + ' ' + f)));
  fs.writeFileSync(path.join(d, 'f.txt'), 'abc'); console.log('watch', await ev); watcher.close();
  console.log('read', fs.readFileSync(path.join(d, 'f.txt'), 'utf8'), fs.readdirSync(d));
  const s = dgram.createSocket('udp4'); s.bind(0, '127.0.0.1');
  await new Promise(r => s.on('listening', r));
  const msg = new Promise(r => s.on('message', m => r(m.toString())));
  const c = dgram.createSocket('udp4'); c.send('ping', s.address().port, '127.0.0.1'); console.log('udp', await msg); s.close(); c.close();
  console.log('zlib', zlib.gunzipSync(zlib.gzipSync(Buffer.alloc(100000, 'a'))).length);
  const ns = net.createServer(k => k.pipe(k)).listen(0, '::1'); await new Promise(r => ns.on('listening', r));
  const cl = net.connect(ns.address().port, '::1'); cl.write('echo6'); console.log('tcp6', (await new Promise(r => cl.once('data', r))).toString()); cl.end(); ns.close();
  const st = Date.now(); await new Promise(r => setTimeout(r, 200)); console.log('timer', Date.now() - st >= 195);
  const p = cp.spawn('cat'); p.stdin.end('piped'); let o = ''; p.stdout.on('data', x => o += x); await new Promise(r => p.on('close', r)); console.log('cat', o);
  console.log('cpus', os.cpus().length > 0, 'done');
})();
