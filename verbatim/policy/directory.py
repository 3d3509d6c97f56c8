"""Users and group memberships, as the policy code needs them: Entra ID through Graph, or a dict in tests.

Teams applies a group policy assignment to the group's *direct* members only, while "who must be
recorded" follows nested groups too (`transitiveMembers`); both views are here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from verbatim.graph import GraphClient, GraphNotFound

USER_FIELDS = "id,userPrincipalName,displayName,usageLocation,country"


class DirectoryUser(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    user_principal_name: str
    display_name: str | None = None
    usage_location: str | None = None  # ISO 3166-1 alpha-2, what Teams uses for the user's country
    country: str | None = None  # free text in Entra; used only when it is a two-letter code

    @property
    def country_code(self) -> str | None:
        for value in (self.usage_location, self.country):
            if value and len(value.strip()) == 2 and value.strip().isalpha():
                return value.strip().upper()
        return None

    @classmethod
    def from_graph(cls, item: dict[str, Any]) -> DirectoryUser:
        return cls(
            id=str(item["id"]),
            user_principal_name=str(item.get("userPrincipalName") or item["id"]),
            display_name=item.get("displayName"),
            usage_location=item.get("usageLocation"),
            country=item.get("country"),
        )


class Directory(Protocol):
    def user(self, id_or_upn: str) -> DirectoryUser | None:
        """One user by object id or UPN; None when there is no such user."""
        ...

    def users(self) -> Iterable[DirectoryUser]:
        """Every user of the tenant."""
        ...

    def members(self, group_id: str) -> list[DirectoryUser]:
        """The group's direct user members (whom a group policy assignment reaches)."""
        ...

    def transitive_members(self, group_id: str) -> list[DirectoryUser]:
        """The group's user members, nested groups included."""
        ...


class InMemoryDirectory:
    """Users and groups held in memory; a group's members are user ids or ids of nested groups."""

    def __init__(self, users: Iterable[DirectoryUser] = (), groups: dict[str, list[str]] | None = None) -> None:
        self._users = {user.id: user for user in users}
        self.groups: dict[str, list[str]] = {key: list(value) for key, value in (groups or {}).items()}

    def user(self, id_or_upn: str) -> DirectoryUser | None:
        wanted = id_or_upn.casefold()
        for user in self._users.values():
            if user.id.casefold() == wanted or user.user_principal_name.casefold() == wanted:
                return user
        return None

    def users(self) -> Iterable[DirectoryUser]:
        return list(self._users.values())

    def members(self, group_id: str) -> list[DirectoryUser]:
        return [self._users[m] for m in self.groups.get(group_id, []) if m in self._users]

    def transitive_members(self, group_id: str) -> list[DirectoryUser]:
        seen_groups: set[str] = set()
        found: dict[str, DirectoryUser] = {}

        def walk(group: str) -> None:
            if group in seen_groups:
                return
            seen_groups.add(group)
            for member in self.groups.get(group, []):
                if member in self._users:
                    found.setdefault(member, self._users[member])
                elif member in self.groups:
                    walk(member)

        walk(group_id)
        return list(found.values())

    def add_member(self, group_id: str, member_id: str) -> None:
        self.groups.setdefault(group_id, []).append(member_id)


class GraphDirectory:
    """Entra ID through the Graph client (`verbatim.graph.GraphClient`): paging, Retry-After, errors."""

    def __init__(self, graph: GraphClient) -> None:
        self._graph = graph

    def user(self, id_or_upn: str) -> DirectoryUser | None:
        try:
            item = self._graph.get_json(f"/users/{id_or_upn}", params={"$select": USER_FIELDS})
        except GraphNotFound:
            return None
        return DirectoryUser.from_graph(item)

    def users(self) -> Iterable[DirectoryUser]:
        return [DirectoryUser.from_graph(item) for item in self._graph.iter_items("/users", params=_user_params())]

    def members(self, group_id: str) -> list[DirectoryUser]:
        return list(_only_users(self._graph.iter_items(f"/groups/{group_id}/members", params=_user_params())))

    def transitive_members(self, group_id: str) -> list[DirectoryUser]:
        items = self._graph.iter_items(f"/groups/{group_id}/transitiveMembers", params=_user_params())
        return list(_only_users(items))


def _user_params() -> dict[str, str | int]:
    return {"$select": USER_FIELDS, "$top": 999}


def _only_users(items: Iterable[dict[str, Any]]) -> Iterator[DirectoryUser]:
    seen: set[str] = set()
    for item in items:
        kind = str(item.get("@odata.type", "#microsoft.graph.user"))
        if kind.lower() != "#microsoft.graph.user" or item["id"] in seen:
            continue
        seen.add(item["id"])
        yield DirectoryUser.from_graph(item)
