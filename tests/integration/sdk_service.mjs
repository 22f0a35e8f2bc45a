// The official Azure Storage SDK's side of the service's blob storage test
// (test_storage_service.sh): looks at and tampers with a container behind the service's back.
//
//   node sdk_service.mjs blobs CONN CONTAINER
//       prints one JSON object: {"NAME": {"size": N, "metadata": {...}}, ...}
//   node sdk_service.mjs get CONN CONTAINER NAME
//       prints the blob's content
//   node sdk_service.mjs put CONN CONTAINER NAME FILE [KEY=VALUE ...]
//       overwrites NAME with FILE's bytes (unconditionally), with exactly that metadata;
//       prints the new ETag (without quotes)
//
// Exits 1 with a message on any failure.
import { readFileSync } from 'node:fs';
import process from 'node:process';

import { BlobServiceClient } from '@azure/storage-blob';

async function main() {
  const [mode, conn, container, name, file, ...meta] = process.argv.slice(2);
  const cc = BlobServiceClient.fromConnectionString(conn || '').getContainerClient(container || '');
  if (mode === 'blobs' && container) {
    const out = {};
    for await (const item of cc.listBlobsFlat({ includeMetadata: true })) {
      out[item.name] = { size: item.properties.contentLength, metadata: item.metadata || {} };
    }
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } else if (mode === 'get' && name) {
    process.stdout.write(await cc.getBlobClient(name).downloadToBuffer());
  } else if (mode === 'put' && file) {
    const metadata = {};
    for (const kv of meta) {
      const i = kv.indexOf('=');
      metadata[kv.slice(0, i)] = kv.slice(i + 1);
    }
    const r = await cc.getBlockBlobClient(name).uploadData(readFileSync(file), {
      metadata,
      blobHTTPHeaders: { blobContentType: 'application/x-cultivate-model' },
    });
    process.stdout.write(`${r.etag.replace(/"/g, '')}\n`);
  } else {
    console.error('usage: sdk_service.mjs blobs|get|put CONN CONTAINER [NAME [FILE [K=V ...]]]');
    process.exit(2);
  }
}

main().catch((e) => {
  console.error(`sdk_service: ${e.message}`);
  process.exit(1);
});
