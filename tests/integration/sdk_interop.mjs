// The official Azure Storage SDK's side of the interoperability test
// (driven by test_blob_azurite.sh against Azurite):
//
//   node sdk_interop.mjs verify CONN CONTAINER NAME FILE
//       lists and downloads a blob the C client uploaded: same bytes, sha256 metadata visible
//   node sdk_interop.mjs upload CONN CONTAINER NAME FILE
//       uploads FILE in blocks with sha256 metadata, for the C client to download
//   node sdk_interop.mjs sas CONN
//       prints an account SAS token (blob service, read/write/delete/list/add/create)
//   node sdk_interop.mjs identity-server PORT_FILE HEADER
//       a stand-in for the App Service managed identity endpoint: answers
//       GET ?resource=...&api-version=2019-08-01 carrying X-IDENTITY-HEADER: HEADER with an
//       unsigned JWT for https://storage.azure.com (what Azurite's --oauth basic checks)
//
// Checks print "ok - ..." or "not ok - ..." and a closing "sdk MODE: N passed, M failed".
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import process from 'node:process';

import {
  AccountSASPermissions,
  AccountSASResourceTypes,
  AccountSASServices,
  BlobServiceClient,
  SASProtocol,
  StorageSharedKeyCredential,
  generateAccountSASQueryParameters,
} from '@azure/storage-blob';

let passed = 0;
let failed = 0;
function check(cond, what) {
  if (cond) {
    passed += 1;
    console.log(`ok - ${what}`);
  } else {
    failed += 1;
    console.log(`not ok - ${what}`);
  }
}

function sha256(buf) {
  return createHash('sha256').update(buf).digest('hex');
}

// AccountName and AccountKey out of a connection string (for the SAS credential).
function parseConn(conn) {
  const out = {};
  for (const part of conn.split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim().toLowerCase()] = part.slice(i + 1).trim();
  }
  return out;
}

async function verify(conn, container, name, file) {
  const want = readFileSync(file);
  const service = BlobServiceClient.fromConnectionString(conn);
  const cc = service.getContainerClient(container);
  let listed = null;
  for await (const item of cc.listBlobsFlat({ prefix: name, includeMetadata: true })) {
    if (item.name === name) listed = item;
  }
  check(listed !== null, `SDK lists ${name}`);
  if (listed) {
    check(listed.properties.contentLength === want.length,
      `listed length ${listed.properties.contentLength} == ${want.length}`);
    check(listed.metadata && listed.metadata.sha256 === sha256(want),
      'listed sha256 metadata matches the file');
  }
  const blob = cc.getBlobClient(name);
  const props = await blob.getProperties();
  check(props.metadata.sha256 === sha256(want), 'getProperties shows sha256 metadata');
  check(props.contentType === 'application/x-cultivate-model',
    `content type set by the C client (${props.contentType})`);
  const got = await blob.downloadToBuffer();
  check(Buffer.compare(got, want) === 0, `SDK download of ${name} has the same bytes`);
}

async function upload(conn, container, name, file) {
  const data = readFileSync(file);
  const service = BlobServiceClient.fromConnectionString(conn);
  const cc = service.getContainerClient(container);
  await cc.createIfNotExists();
  const block = cc.getBlockBlobClient(name);
  // Small blocks so that the SDK uses Put Block + Put Block List too.
  await block.uploadData(data, {
    blockSize: 16 * 1024,
    maxSingleShotSize: 16 * 1024,
    metadata: { sha256: sha256(data), source: 'sdk' },
    blobHTTPHeaders: { blobContentType: 'application/octet-stream' },
  });
  const list = await block.getBlockList('committed');
  check(list.committedBlocks.length > 1, `SDK uploaded ${list.committedBlocks.length} blocks`);
}

function sas(conn) {
  const c = parseConn(conn);
  const cred = new StorageSharedKeyCredential(c.accountname || 'devstoreaccount1', c.accountkey);
  const now = Date.now();
  const token = generateAccountSASQueryParameters({
    permissions: AccountSASPermissions.parse('rwdlac'),
    services: AccountSASServices.parse('b').toString(),
    resourceTypes: AccountSASResourceTypes.parse('sco').toString(),
    protocol: SASProtocol.HttpsAndHttp,
    startsOn: new Date(now - 5 * 60 * 1000),
    expiresOn: new Date(now + 60 * 60 * 1000),
  }, cred).toString();
  process.stdout.write(`${token}\n`);
}

function b64url(obj) {
  return Buffer.from(JSON.stringify(obj)).toString('base64url');
}

function identityServer(portFile, header) {
  let served = 0;
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const ok = req.method === 'GET'
      && req.headers['x-identity-header'] === header
      && url.searchParams.get('api-version') === '2019-08-01'
      && url.searchParams.get('resource') === 'https://storage.azure.com/';
    if (!ok) {
      res.writeHead(400, { 'Content-Type': 'application/json' });
      res.end('{"error":"bad request"}');
      return;
    }
    served += 1;
    const now = Math.floor(Date.now() / 1000);
    const jwt = [
      b64url({ typ: 'JWT', alg: 'RS256' }),
      b64url({
        aud: 'https://storage.azure.com',
        iss: 'https://sts.windows.net/00000000-0000-0000-0000-000000000000/',
        iat: now - 60,
        nbf: now - 60,
        exp: now + 3600,
        oid: '11111111-1111-1111-1111-111111111111',
        tid: '00000000-0000-0000-0000-000000000000',
        n: served,
      }),
      'c2lnbmF0dXJl',
    ].join('.');
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({
      access_token: jwt,
      expires_on: String(now + 3600),
      resource: 'https://storage.azure.com/',
      token_type: 'Bearer',
      client_id: '22222222-2222-2222-2222-222222222222',
    }));
  });
  server.listen(0, '127.0.0.1', () => {
    writeFileSync(portFile, String(server.address().port));
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function main() {
  const [mode, ...args] = process.argv.slice(2);
  if (mode === 'identity-server' && args.length === 2) {
    identityServer(args[0], args[1]);
    return;
  }
  if (mode === 'sas' && args.length === 1) {
    sas(args[0]);
    return;
  }
  try {
    if (mode === 'verify' && args.length === 4) await verify(...args);
    else if (mode === 'upload' && args.length === 4) await upload(...args);
    else {
      console.error('usage: sdk_interop.mjs verify|upload CONN CONTAINER NAME FILE | sas CONN'
        + ' | identity-server PORT_FILE HEADER');
      process.exit(2);
    }
  } catch (e) {
    check(false, `${mode}: ${e.message}`);
  }
  console.log(`sdk ${mode}: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

main();
