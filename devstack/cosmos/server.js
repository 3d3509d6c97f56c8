// The local Cosmos DB emulator (@vercel/cosmosdb-server) over TLS with a certificate generated at setup.
// Usage: node devstack/cosmos/server.js --host 127.0.0.1 --port 8081 --cert CERT.pem --key KEY.pem
"use strict";
const fs = require("fs");

require("./missing-reads").install(); // before the server's routes are loaded
const { createHttpsServer } = require("@vercel/cosmosdb-server");

require("./linear-queries").install();
require("./join-missing-arrays").install();

const args = {};
const argv = process.argv.slice(2);
while (argv.length) {
  const key = argv.shift();
  args[key.replace(/^--/, "")] = argv.shift();
}
for (const required of ["host", "port", "cert", "key"]) {
  if (!args[required]) {
    console.error(`missing --${required}`);
    process.exit(2);
  }
}
// keepAlive: the server otherwise answers every request with `Connection: close`, so each Cosmos call from
// the SDK paid a new TLS handshake (about a millisecond of client CPU, a third of a busy Function App's
// samples), which Azure Cosmos DB's keep-alive connections do not. Idle connections are kept 65 s (Node's
// default is 5 s), longer than the SDK's pool lets one idle, so a reused connection is never closed under it.
const server = createHttpsServer({
  cert: fs.readFileSync(args.cert),
  key: fs.readFileSync(args.key),
  keepAlive: true,
});
server.keepAliveTimeout = 65000;
server.headersTimeout = 66000;
server.listen(parseInt(args.port, 10), args.host, () => {
  console.log(`cosmos emulator ready at https://${args.host}:${args.port}`);
});
const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
