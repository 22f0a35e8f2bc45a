// The official Azure Storage SDK's side of the blob model store test
// (driven by test_blob_store_azurite.sh against Azurite):
//
//   node sdk_store.mjs verify CONN CONTAINER TYPE VERSION FILE POINTER
//       what `cultivate-ml upload`/`train --upload` left is usable without cultivate-ml:
//       TYPE/VERSION.model is listed with its size and sha256/version metadata, the pointer
//       is a plain copy of FILE naming VERSION, both download to FILE's bytes, and
//       training_data.csv (when present) carries sha256 and rows
//   node sdk_store.mjs publish CONN CONTAINER TYPE VERSION FILE POINTER
//       publishes FILE the way another tool would: TYPE/VERSION.model and the pointer,
//       each with sha256, version and model_type metadata
//
// Checks print "ok - ..." or "not ok - ..." and a closing "sdk-store MODE: N passed, M failed".
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import process from 'node:process';

import { BlobServiceClient } from '@azure/storage-blob';

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

async function verify(conn, container, type, version, file, pointer) {
  const want = readFileSync(file);
  const cc = BlobServiceClient.fromConnectionString(conn).getContainerClient(container);
  const name = `${type}/${version}.model`;
  let listed = null;
  for await (const item of cc.listBlobsFlat({ prefix: `${type}/`, includeMetadata: true })) {
    if (item.name === name) listed = item;
  }
  check(listed !== null, `SDK lists ${name}`);
  if (listed) {
    check(listed.properties.contentLength === want.length, `${name} has ${want.length} bytes`);
    check(listed.metadata.sha256 === sha256(want), `${name} sha256 metadata matches`);
    check(listed.metadata.version === version, `${name} version metadata`);
    check(listed.metadata.model_type === type, `${name} model_type metadata`);
  }
  const got = await cc.getBlobClient(name).downloadToBuffer();
  check(Buffer.compare(got, want) === 0, `SDK download of ${name} has the same bytes`);
  const ptr = cc.getBlobClient(pointer);
  const props = await ptr.getProperties();
  check(props.metadata.version === version, `${pointer} names ${version}`);
  check(props.metadata.sha256 === sha256(want), `${pointer} sha256 metadata matches`);
  const copy = await ptr.downloadToBuffer();
  check(Buffer.compare(copy, want) === 0, `${pointer} is a plain copy of the model file`);
  const td = cc.getBlobClient('training_data.csv');
  if (await td.exists()) {
    const tp = await td.getProperties();
    const data = await td.downloadToBuffer();
    check(tp.metadata.sha256 === sha256(data), 'training_data.csv sha256 metadata matches');
    check(/^[0-9]+$/.test(tp.metadata.rows || ''), `training_data.csv rows=${tp.metadata.rows}`);
  }
}

async function publish(conn, container, type, version, file, pointer) {
  const data = readFileSync(file);
  const cc = BlobServiceClient.fromConnectionString(conn).getContainerClient(container);
  await cc.createIfNotExists();
  const metadata = { sha256: sha256(data), version, model_type: type };
  const blobHTTPHeaders = { blobContentType: 'application/octet-stream' };
  await cc.getBlockBlobClient(`${type}/${version}.model`).uploadData(data, {
    metadata,
    blobHTTPHeaders,
    conditions: { ifNoneMatch: '*' },
  });
  await cc.getBlockBlobClient(pointer).uploadData(data, { metadata, blobHTTPHeaders });
  check(true, `SDK published ${type}/${version}.model and ${pointer}`);
}

async function main() {
  const [mode, ...args] = process.argv.slice(2);
  try {
    if (mode === 'verify' && args.length === 6) await verify(...args);
    else if (mode === 'publish' && args.length === 6) await publish(...args);
    else {
      console.error('usage: sdk_store.mjs verify|publish CONN CONTAINER TYPE VERSION FILE POINTER');
      process.exit(2);
    }
  } catch (e) {
    check(false, `${mode}: ${e.message}`);
  }
  console.log(`sdk-store ${mode}: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

main();
