// Make the Cosmos emulator's JOIN skip an item whose joined path is missing, null or not an array, as Cosmos DB does.
//
// @zeit/cosmosdb-query compiles `JOIN p IN c.seal.parts` to `...(c.seal.parts || []).map(p => ...)`: a plain
// property chain, so an item whose `seal` is null (a recording not sealed yet) throws "Cannot read properties of
// null (reading 'parts')" and the whole query fails (a 400 to the client) instead of leaving that item out. Cosmos
// DB's JOIN is an inner join over the item's array: an item without one contributes no row. This rewrites each such
// chain of the generated code into `((v) => (Array.isArray(v) ? v : []))(c?.seal?.parts)` before it is run.
"use strict";

// `...(<identifier>(.name | ["name"])+ || []).map(` as the engine writes a JOIN over a document path.
const JOINED_PATH = /\.\.\.\(([A-Za-z_$][\w$]*)((?:\.[A-Za-z_$][\w$]*|\["(?:[^"\\]|\\.)*"\])+) \|\| \[\]\)\.map\(/g;

function guardJoins(code) {
  return code.replace(JOINED_PATH, (_, root, path) => {
    const safe = path.replace(/\.(?=[A-Za-z_$])/g, "?.").replace(/\[/g, "?.[");
    return `...((v) => (Array.isArray(v) ? v : []))(${root}${safe}).map(`;
  });
}

function install() {
  const executor = require("@zeit/cosmosdb-query/lib/executor");
  const execute = executor.default;
  if (execute.joinsGuarded) return;
  const wrapped = (collection, options) => execute(collection, { ...options, code: guardJoins(options.code) });
  wrapped.joinsGuarded = true;
  wrapped.linearised = execute.linearised; // the other rewrite's own guard stays visible through this wrapper
  executor.default = wrapped;
}

module.exports = { install, guardJoins };
