"""The one permission map: which role may do which action. Views, the API and
templates all ask `can(role, action)`; the README documents this table."""

from apps.tenants.models import Role

_ALL = frozenset(Role.values)
_MANAGERS = frozenset({Role.OWNER, Role.ADMIN})
_BUILDERS = _MANAGERS | {Role.EDITOR}

PERMISSIONS: dict[str, frozenset[str]] = {
    "workspace.view": _ALL,
    "workspace.update": _MANAGERS,
    "workspace.delete": frozenset({Role.OWNER}),
    "members.view": _ALL,
    "members.manage": _MANAGERS,
    "api_keys.manage": _MANAGERS,
    "providers.manage": _MANAGERS,
    "usage.view": _BUILDERS,
    "apps.use": _ALL - {Role.DATASET_OPERATOR},
    "apps.edit": _BUILDERS,
    "workflows.edit": _BUILDERS,
    "tools.manage": _BUILDERS,
    "knowledge.view": _BUILDERS | {Role.DATASET_OPERATOR},
    "knowledge.manage": _BUILDERS | {Role.DATASET_OPERATOR},
}


def can(role: str | None, action: str) -> bool:
    if action not in PERMISSIONS:
        raise KeyError(f"Unknown action {action!r}; add it to PERMISSIONS.")
    return role in PERMISSIONS[action]


def allowed_actions(role: str | None) -> dict[str, bool]:
    """For templates: {"members_manage": True, ...} (dots become underscores)."""
    return {action.replace(".", "_"): role in roles for action, roles in PERMISSIONS.items()}
