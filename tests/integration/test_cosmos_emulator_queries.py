"""The devstack's Cosmos emulator answers queries with the same results after its queries are linearised.

`devstack/cosmos/linear-queries.js` rewrites the query engine's O(n^2) array building; these queries run
through the real emulator process (which installs the rewrite) and through the engine without it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from devstack.emulators import REPO_ROOT
from verbatim.platform import clients
from verbatim.platform.settings import Settings

QUERIES = [
    ("SELECT * FROM c WHERE c.user = @u ORDER BY c.at DESC", [{"name": "@u", "value": "u3"}]),
    ("SELECT VALUE t.name FROM c JOIN t IN c.tags WHERE c.user = @u", [{"name": "@u", "value": "u3"}]),
    ("SELECT c.id, k.n FROM c JOIN k IN c.kids WHERE c.user = @u", [{"name": "@u", "value": "u3"}]),
    ("SELECT TOP 3 c.id FROM c WHERE c.at >= 40 ORDER BY c.at", []),
    ("SELECT VALUE COUNT(1) FROM c WHERE ARRAY_CONTAINS(c.tags, {'name': 'a1'}, true)", []),
]


def _documents() -> list[dict[str, object]]:
    return [
        {
            "id": f"d{i:03d}",
            "pk": "p",
            "user": f"u{i % 7}",
            "at": i,
            "tags": [{"name": f"a{i % 3}"}, {"name": "b"}],
            **({"kids": [{"n": i}, {"n": -i}]} if i % 4 else {}),
        }
        for i in range(120)
    ]


def _reference(sql: str, parameters: list[dict[str, object]], documents: list[dict[str, object]]) -> list[object]:
    """The query engine's own answer, without the rewrite (plain node, no emulator)."""
    script = (
        "const { default: query } = require('@zeit/cosmosdb-query');"
        "const [sql, parameters, docs] = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "process.stdout.write(JSON.stringify(query(sql).exec(docs, { parameters }).result));"
    )
    out = subprocess.run(
        ["node", "-e", script],
        input=json.dumps([sql, parameters, documents]),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=True,
    )
    result: list[object] = json.loads(out.stdout)
    return result


@pytest.mark.parametrize(("sql", "parameters"), QUERIES)
def test_linearised_emulator_queries_give_the_engines_own_results(
    stack_env: Settings, sql: str, parameters: list[dict[str, object]]
) -> None:
    container = clients.cosmos_database(stack_env).get_container_client("control")
    stored = _documents()
    for document in stored:
        container.upsert_item(document)

    answer = list(container.query_items(sql, parameters=parameters, enable_cross_partition_query=True))
    expected = _reference(sql, parameters, stored)

    def strip(rows: list[object]) -> list[object]:
        return [
            {k: v for k, v in row.items() if not k.startswith("_")} if isinstance(row, dict) else row for row in rows
        ]

    if "ORDER BY" in sql:
        assert strip(answer) == strip(expected)
    else:  # storage order is the emulator's business: compare as multisets
        assert sorted(map(json.dumps, strip(answer))) == sorted(map(json.dumps, strip(expected)))
    assert answer, "the query should match something"


def test_the_rewrite_is_installed_by_the_emulator_entry_point() -> None:
    server = (Path(REPO_ROOT) / "devstack" / "cosmos" / "server.js").read_text()

    assert 'require("./linear-queries").install()' in server
    assert 'require("./join-missing-arrays").install()' in server
