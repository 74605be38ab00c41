// Drives ssh2 and ssh2-sftp-client against a server for e2e/node_test.go:
// node client.js PORT USER PASSWORD LOCALDIR. Prints one JSON object.
'use strict';
const fs = require('fs');
const path = require('path');
const { Client } = require('ssh2');
const SftpClient = require('ssh2-sftp-client');

const [port, user, password, local] = [Number(process.argv[2]), process.argv[3], process.argv[4], process.argv[5]];
const conf = { host: '127.0.0.1', port, username: user, password, readyTimeout: 20000 };

function errText(e) { return `${e.code}: ${e.message}`; }

// exec runs one command on a connection and collects its output.
function exec(conn, cmd, input) {
  return new Promise((resolve, reject) => {
    conn.exec(cmd, (err, stream) => {
      if (err) return reject(err);
      let out = '', errOut = '', code = null;
      stream.on('data', (d) => { out += d; });
      stream.stderr.on('data', (d) => { errOut += d; });
      stream.on('exit', (c) => { code = c; });
      stream.on('close', () => resolve([code, out, errOut]));
      if (input !== undefined) stream.end(input); else stream.end();
    });
  });
}

// scpUpload sends one file with the scp sink protocol ("scp -t"), as
// tools built on ssh2 do by hand.
function scpUpload(conn, name, data) {
  return new Promise((resolve, reject) => {
    conn.exec(`scp -t ${name}`, (err, stream) => {
      if (err) return reject(err);
      const acks = [];
      let step = 0, errOut = '', code = null;
      stream.stderr.on('data', (d) => { errOut += d; });
      stream.on('exit', (c) => { code = c; });
      stream.on('data', (d) => {
        for (const b of d) {
          acks.push(b);
          if (b !== 0) continue;
          step++;
          if (step === 1) stream.write(`C0640 ${data.length} ${path.basename(name)}\n`);
          else if (step === 2) { stream.write(data); stream.write(Buffer.from([0])); }
          else if (step === 3) stream.end();
        }
      });
      stream.on('close', () => resolve({ code, acks, errOut }));
    });
  });
}

function connect(extra) {
  return new Promise((resolve, reject) => {
    const c = new Client();
    c.on('ready', () => resolve(c)).on('error', reject).connect({ ...conf, ...extra });
  });
}

async function main() {
  const res = {};
  const sftp = new SftpClient();
  await sftp.connect(conf);
  await sftp.mkdir('/d/e/f', true);
  await sftp.fastPut(path.join(local, 'big.bin'), '/d/big.bin', { concurrency: 64, chunkSize: 32768 });
  await sftp.fastGet('/d/big.bin', path.join(local, 'big.fast'), { concurrency: 64, chunkSize: 32768 });
  await sftp.put(Buffer.from('hello\n'), '/d/hello.txt');
  await sftp.append(Buffer.from('more\n'), '/d/hello.txt');
  res.hello = (await sftp.get('/d/hello.txt')).toString();
  await sftp.uploadDir(path.join(local, 'tree'), '/up');
  await sftp.downloadDir('/up', path.join(local, 'down'));
  await sftp.rename('/d/hello.txt', '/d/renamed.txt');
  try { await sftp.rename('/d/renamed.txt', '/d/big.bin'); } catch (e) { res.rename_over = errText(e); }
  await sftp.posixRename('/d/renamed.txt', '/d/posix.txt');
  res.exists = [await sftp.exists('/d/posix.txt'), await sftp.exists('/d/e'), await sftp.exists('/d/nothere')];
  const st = await sftp.stat('/d/big.bin');
  res.stat = [st.size, st.isFile, st.isDirectory];
  await sftp.chmod('/d/posix.txt', 0o600);
  res.mode = ((await sftp.stat('/d/posix.txt')).mode & 0o7777).toString(8);
  res.list = (await sftp.list('/d')).map((e) => `${e.type}${e.name}`).sort();
  res.realpath = await sftp.realPath('d/e/../e');
  res.cwd = await sftp.cwd();
  try { await sftp.get('/d/nothere'); } catch (e) { res.get_missing = errText(e); }
  try { await sftp.rmdir('/d'); } catch (e) { res.rmdir_nonempty = errText(e); }
  await sftp.rmdir('/d', true);
  res.after_rmdir = (await sftp.list('/')).map((e) => e.name).sort();
  await sftp.end();

  const conn = await connect({});
  res.exec_refused = await exec(conn, 'md5sum up/f1');
  res.scp = await scpUpload(conn, 'scp.txt', Buffer.from('via scp\n'));
  res.scp_outside = await scpUpload(conn, '../outside.txt', Buffer.from('x'));
  res.shell = await new Promise((resolve, reject) => {
    conn.shell(false, (err, stream) => {
      if (err) return reject(err);
      let out = '';
      stream.on('data', (d) => { out += d; });
      stream.stderr.on('data', (d) => { out += d; });
      stream.on('close', () => resolve(out));
    });
  });
  conn.end();

  try { await connect({ password: 'wrong' }); res.wrong_password = 'connected'; } catch (e) { res.wrong_password = e.level + ': ' + e.message; }
  console.log(JSON.stringify(res));
}

main().catch((e) => { console.error(e); process.exit(1); });
