// Make the Cosmos emulator answer a point read of a missing item with 404 NotFound, as Cosmos DB does.
//
// @vercel/cosmosdb-server's read-document handler looks the document up and then reads its partition-key
// fields without checking that it exists, so a missing item answers 500 (a TypeError inside the server).
// Code written against Cosmos DB reads an item by id and treats 404 as "not there"; this wraps the handler
// so the emulator gives that answer. It must be installed before the server's routes are loaded (they keep
// a reference to the handler), i.e. before `require("@vercel/cosmosdb-server")`.
"use strict";

function install() {
  const handler = require("@vercel/cosmosdb-server/lib/handler/read-document");
  const original = handler.default;
  if (original.missingReadsAre404) return;
  const partitionFromHeader = require("@vercel/cosmosdb-server/lib/utils/get-partition-from-header");
  const trueHeader = require("@vercel/cosmosdb-server/lib/true-header").default;
  const wrapped = (account, req, res, params) => {
    const collection = account.database(params.dbId).collection(params.collId);
    if (collection.read() && !trueHeader(req, "x-ms-documentdb-query-enablecrosspartition")) {
      const partitionKey = partitionFromHeader.parsePartitionKey(partitionFromHeader.default(req), params.docId);
      if (collection.document(params.docId, partitionKey).read() === undefined) {
        res.statusCode = 404;
        return { code: "NotFound", message: "Entity with the specified id does not exist in the system." };
      }
    }
    return original(account, req, res, params);
  };
  wrapped.missingReadsAre404 = true;
  handler.default = wrapped;
}

module.exports = { install };
