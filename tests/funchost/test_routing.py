"""HTTP trigger route templates and the router's choice between them."""

from __future__ import annotations

import pytest

from devstack.funchost.routing import MethodNotAllowed, RouteMatch, Router, RouteTemplate, RouteTemplateError


def values(template: str, path: str, prefix: str = "api") -> dict[str, str] | None:
    return RouteTemplate.compile(template, prefix).match(path)


def test_parameters_literals_and_prefix_match_case_insensitively() -> None:
    assert values("items/{id}", "/api/items/42") == {"id": "42"}
    assert values("Items/{id}", "/API/items/42/") == {"id": "42"}
    assert values("items/{id}", "/items/42") is None
    assert values("items/{id}", "/api/items/42/more") is None
    assert values("health", "/health", prefix="") == {}


def test_route_values_are_percent_decoded() -> None:
    assert values("files/{name}", "/api/files/a%20b%2Fc") == {"name": "a b/c"}


def test_optional_parameters_and_defaults() -> None:
    assert values("items/{id?}", "/api/items") == {}
    assert values("items/{id?}", "/api/items/7") == {"id": "7"}
    assert values("items/{id:int?}", "/api/items/x") is None
    assert values("page/{n=1}", "/api/page") == {"n": "1"}
    assert values("page/{n:int=1}", "/api/page/3") == {"n": "3"}


@pytest.mark.parametrize(
    ("template", "good", "bad"),
    [
        ("{v:int}", "-12", "1.5"),
        ("{v:int}", "2147483647", "2147483648"),
        ("{v:long}", "2147483648", "x"),
        ("{v:bool}", "True", "yes"),
        ("{v:guid}", "0f8fad5b-d9cb-469f-a165-70867728950e", "0f8fad5b"),
        ("{v:alpha}", "abcXYZ", "abc1"),
        ("{v:datetime}", "2024-01-02", "yesterday"),
        ("{v:double}", "1.5", "one"),
        ("{v:min(10)}", "10", "9"),
        ("{v:max(10)}", "10", "11"),
        ("{v:range(1,3)}", "2", "4"),
        ("{v:length(3)}", "abc", "abcd"),
        ("{v:length(2,3)}", "ab", "a"),
        ("{v:minlength(2)}", "ab", "a"),
        ("{v:maxlength(2)}", "ab", "abc"),
        (r"{v:regex(^\d{{3}}$)}", "123", "1234"),
        ("{v:int:min(5)}", "6", "4"),
    ],
)
def test_constraints_accept_and_reject(template: str, good: str, bad: str) -> None:
    assert values(template, f"/api/{good}") == {"v": good}
    assert values(template, f"/api/{bad}") is None


def test_catch_all_takes_the_rest_of_the_path_and_may_be_empty() -> None:
    assert values("files/{*path}", "/api/files/a/b/c.txt") == {"path": "a/b/c.txt"}
    assert values("files/{**path}", "/api/files") == {}


def test_several_parameters_in_one_segment() -> None:
    assert values("files/{name}.{ext}", "/api/files/report.final.pdf") == {"name": "report", "ext": "final.pdf"}


@pytest.mark.parametrize("template", ["items/{id", "items/id}", "{*rest}/more", "items/{id:nosuch}", "{a-b}"])
def test_malformed_templates_are_rejected(template: str) -> None:
    with pytest.raises(RouteTemplateError):
        RouteTemplate.compile(template, "api")


def test_router_prefers_literals_over_parameters_over_catch_all() -> None:
    router: Router[str] = Router()
    router.add(RouteTemplate.compile("items/{*rest}", "api"), None, "catch-all")
    router.add(RouteTemplate.compile("items/{id}", "api"), None, "parameter")
    router.add(RouteTemplate.compile("items/{id:int}", "api"), None, "constrained")
    router.add(RouteTemplate.compile("items/special", "api"), None, "literal")

    def target(path: str) -> str:
        found = router.match("GET", path)
        assert isinstance(found, RouteMatch)
        return found.target

    assert target("/api/items/special") == "literal"
    assert target("/api/items/5") == "constrained"
    assert target("/api/items/five") == "parameter"
    assert target("/api/items/a/b") == "catch-all"


def test_router_reports_method_not_allowed_with_the_allowed_methods() -> None:
    router: Router[str] = Router()
    router.add(RouteTemplate.compile("items/{id}", "api"), ["get", "POST"], "items")
    assert isinstance(router.match("GET", "/api/items/1"), RouteMatch)
    assert router.match("DELETE", "/api/items/1") == MethodNotAllowed(frozenset({"GET", "POST"}))
    assert router.match("GET", "/api/other") is None
