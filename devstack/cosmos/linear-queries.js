// Make the Cosmos emulator's queries linear in the size of a container.
//
// @zeit/cosmosdb-query (the query engine of @vercel/cosmosdb-server) compiles SQL to JavaScript that builds
// its intermediate arrays with `reduce(($, c) => [...$, { c }], [])`: every document copies the whole array
// built so far, so one query over n documents costs O(n^2) (3.5 s at 20,000 documents, 129 s at 100,000).
// This rewrites each `[...$, <items>]` of the generated code into `($.push(<items>), $)` before it is
// compiled. The accumulator is always a fresh `[]` literal of that reduce, so mutating it is safe and the
// results are the same. Cosmos DB itself answers these queries from its indexes; this only keeps the local
// emulator from being what makes searches and sweeps slow.
"use strict";

const SPREAD_ACCUMULATOR = "[...$, ";

function closingBracket(code, open) {
  let depth = 0;
  let quote = null;
  for (let i = open; i < code.length; i += 1) {
    const ch = code[i];
    if (quote) {
      if (ch === "\\") i += 1;
      else if (ch === quote) quote = null;
      continue;
    }
    if (ch === '"' || ch === "'" || ch === "`") quote = ch;
    else if (ch === "[" || ch === "(" || ch === "{") depth += 1;
    else if (ch === "]" || ch === ")" || ch === "}") {
      depth -= 1;
      if (depth === 0) return i;
    }
  }
  return -1;
}

function linearise(code) {
  let out = code;
  for (let at = out.indexOf(SPREAD_ACCUMULATOR); at !== -1; at = out.indexOf(SPREAD_ACCUMULATOR, at)) {
    const end = closingBracket(out, at);
    if (end === -1) return code; // not the shape we know: leave the query as the engine wrote it
    const items = out.slice(at + SPREAD_ACCUMULATOR.length, end);
    out = `${out.slice(0, at)}($.push(${items}), $)${out.slice(end + 1)}`;
  }
  return out;
}

function install() {
  const executor = require("@zeit/cosmosdb-query/lib/executor");
  const execute = executor.default;
  if (execute.linearised) return;
  const wrapped = (collection, options) => execute(collection, { ...options, code: linearise(options.code) });
  wrapped.linearised = true;
  executor.default = wrapped;
}

module.exports = { install, linearise };
