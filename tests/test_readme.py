"""The README is the front door: its permission table and settings list must match the code."""

import re
from pathlib import Path

from apps.tenants.models import Role
from apps.tenants.permissions import PERMISSIONS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
ENV_EXAMPLE = (Path(__file__).resolve().parent.parent / ".env.example").read_text()
SETTINGS = (Path(__file__).resolve().parent.parent / "config" / "settings.py").read_text()


def test_readme_permission_table_matches_the_permission_map():
    rows = {}
    for line in README.splitlines():
        match = re.match(r"\| `([a-z_.]+)` \|(.*)\|$", line)
        if match and match.group(1) in PERMISSIONS:
            cells = [cell.strip() for cell in match.group(2).split("|")]
            rows[match.group(1)] = {
                role for role, cell in zip(Role.values, cells, strict=True) if cell
            }
    assert rows == {action: set(roles) for action, roles in PERMISSIONS.items()}


def test_every_setting_is_in_the_readme_and_the_env_example():
    names = set(re.findall(r'env\.\w+\(\s*"([A-Z_]+)"', SETTINGS))
    assert names, "no settings found"
    missing_readme = sorted(n for n in names if f"`{n}`" not in README)
    missing_example = sorted(n for n in names if not re.search(rf"^#? ?{n}=", ENV_EXAMPLE, re.M))
    assert not missing_readme, missing_readme
    assert not missing_example, missing_example
