"""What the Bicep compiler would check first, checked on the parse tree: every name a template uses is
declared, and main.bicep calls each module with the parameters it declares and reads only outputs it has.
"""

from __future__ import annotations

import pytest

from tests.infra.bicep_tree import INFRA, Bicep, bicep_files, object_items, prop, walk


def module_problems(main: Bicep) -> list[str]:
    """Unknown or missing module parameters, and reads of outputs a module does not declare."""
    assert main.path is not None
    problems = []
    targets = {}
    for module in main.modules():
        target = Bicep.load(main.path.parent / module.source)
        targets[module.symbol] = target
        declared = target.params()
        params_node = prop(module.body, "params")
        passed = {name for name, _ in object_items(params_node)} if params_node is not None else set()
        required = {name for name, param in declared.items() if param.default is None}
        problems += [f"module {module.symbol}: unknown parameter {name}" for name in sorted(passed - set(declared))]
        problems += [f"module {module.symbol}: missing parameter {name}" for name in sorted(required - passed)]
    for node in walk(main.root):
        # <module>.outputs.<name>
        if node.type == "member_expression" and node.named_children[0].type == "member_expression":
            inner = node.named_children[0]
            head, middle = inner.named_children[0], inner.named_children[-1]
            symbol = head.text.decode() if head.text else ""
            if symbol in targets and middle.text == b"outputs":
                output = node.named_children[-1].text.decode() if node.named_children[-1].text else ""
                if output not in targets[symbol].outputs():
                    problems.append(f"line {node.start_point[0] + 1}: module {symbol} has no output {output}")
    return problems


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_every_name_a_template_uses_is_declared(path) -> None:  # type: ignore[no-untyped-def]
    assert Bicep.load(path).undefined_identifiers() == []


def test_an_undeclared_name_is_caught() -> None:
    snippet = "param location string\nresource r 'A/b@1' = {\n  name: 'x'\n  location: locaton\n}\n"
    assert Bicep.from_text(snippet).undefined_identifiers() == ["line 4: locaton is not declared"]


def test_main_calls_every_module_with_exactly_its_parameters_and_reads_only_its_outputs(main: Bicep) -> None:
    assert module_problems(main) == []


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("    cosmosEndpoint: cosmos.outputs.endpoint\n", "", "module functionApp: missing parameter cosmosEndpoint"),
        (
            "    cosmosEndpoint: cosmos.outputs.endpoint\n",
            "    cosmosEndpiont: cosmos.outputs.endpoint\n",
            "module functionApp: unknown parameter cosmosEndpiont",
        ),
        ("cosmos.outputs.endpoint", "cosmos.outputs.endpiont", "module cosmos has no output endpiont"),
    ],
)
def test_module_interface_drift_is_caught(main: Bicep, old: str, new: str, expected: str) -> None:
    problems = module_problems(main.replaced(old, new))
    assert any(problem.endswith(expected) for problem in problems), problems
