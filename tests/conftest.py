"""Shared fixtures: people, workspaces (two of them, for isolation tests), and clients."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from django.core.cache import cache
from django.test import Client

from apps.tenants import services
from apps.tenants.models import Membership, Role, User, Workspace
from tests.live_server import benchmark_env, live_server_url  # noqa: F401 - fixtures for every package

PASSWORD = "orbit-Correct-Horse-42"
_seq = itertools.count(1)


@pytest.fixture(scope="session", autouse=True)
def _no_persistent_connections():
    """Connections opened by worker threads must not outlive the tests that opened them,
    or the test database cannot be dropped at the end."""
    from django.conf import settings

    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The real PBKDF2 costs ~0.3 s a password: fine for people, slow for hundreds of tests.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit counters and cooldowns must not leak from one test into the next."""
    cache.clear()
    yield
    cache.clear()


def make_user(email: str | None = None, name: str = "") -> User:
    return services.user_create(
        email=email or f"person{next(_seq)}@example.com", password=PASSWORD, name=name
    )


def add_member(workspace: Workspace, role: str, email: str | None = None) -> Membership:
    user = User.objects.create_user(
        email=email or f"member{next(_seq)}@example.com", password=PASSWORD
    )
    return Membership.objects.create(workspace=workspace, user=user, role=role)


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@dataclass
class Team:
    """A workspace with one member of every role."""

    workspace: Workspace
    owner: User
    members: dict[str, Membership]

    def client(self, role: str = Role.OWNER) -> Client:
        return client_for(self.members[role].user)


def make_team(workspace_name: str, email_prefix: str) -> Team:
    owner = make_user(f"{email_prefix}-owner@example.com", name=f"{email_prefix} owner")
    workspace = owner.current_workspace
    workspace.name = workspace_name
    workspace.save(update_fields=["name"])
    members = {Role.OWNER: Membership.objects.get(workspace=workspace, user=owner)}
    for role in (Role.ADMIN, Role.EDITOR, Role.NORMAL, Role.DATASET_OPERATOR):
        members[role] = add_member(workspace, role, f"{email_prefix}-{role}@example.com")
    return Team(workspace=workspace, owner=owner, members=members)


@pytest.fixture
def team(db) -> Team:
    return make_team("Blue Harbour", "blue")


@pytest.fixture
def other_team(db) -> Team:
    """A second workspace whose data must never show up for `team`."""
    return make_team("Crimson Vault", "crimson")
