"""A newcomer signs up, invites a colleague, and the colleague joins: all in a real browser."""

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import shot

pytestmark = pytest.mark.browser

PASSWORD = "orbit-Correct-Horse-42"
OWNER_EMAIL = "ada@example.com"
EDITOR_EMAIL = "grace@example.com"
WORKSPACE = "Ada Lovelace's workspace"  # named after its owner at sign-up


def test_sign_up_invite_and_join(browser_page, live_server_url, transactional_db):
    page, base = browser_page, live_server_url

    # Ada signs up and lands on an empty Apps page in her own workspace.
    page.goto(f"{base}/signup/")
    expect(page.get_by_role("heading", name="Create your account")).to_be_visible()
    shot(page, "signup")
    page.get_by_label("Your name").fill("Ada Lovelace")
    page.get_by_label("Email").fill(OWNER_EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(f"{base}/apps/")
    expect(page.get_by_text("Welcome to Orrery, Ada Lovelace.")).to_be_visible()
    expect(page.get_by_test_id("workspace-switcher")).to_have_text(WORKSPACE)
    expect(page.get_by_role("heading", name="No apps yet")).to_be_visible()
    shot(page, "apps-empty")

    # Settings, then Members: she invites Grace as an Editor and gets a link to share.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    expect(page).to_have_url(f"{base}/settings/")
    expect(page.get_by_label("Workspace name", exact=True)).to_have_value(WORKSPACE)
    shot(page, "settings")
    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Members").click()
    expect(page).to_have_url(f"{base}/settings/members/")
    page.get_by_label("Email").fill(EDITOR_EMAIL)
    page.get_by_label("Role", exact=True).select_option(label="Editor")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_text(f"Invitation sent to {EDITOR_EMAIL}.")).to_be_visible()
    link = page.locator("[data-testid=invitation-link] code").inner_text().strip()
    assert link.startswith(f"{base}/invite/")
    shot(page, "members-invited")

    # She creates an API key named "ci"; its secret is shown once.
    page.get_by_role("navigation", name="Settings").get_by_role("link", name="API keys").click()
    page.get_by_label("Key name").fill("ci")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("[data-testid=new-api-key] code").inner_text().strip()
    assert key.startswith("orr-")
    expect(page.get_by_role("cell", name="ci", exact=True)).to_be_visible()
    shot(page, "api-keys")

    # She signs out from the user menu.
    page.get_by_label("Account").click()  # the <summary> of the user menu
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{base}/login/")
    expect(page.get_by_text("You are signed out.")).to_be_visible()

    # Grace opens the link and creates her account; the email is fixed by the invitation.
    page.goto(link)
    expect(page.get_by_role("heading", name=f"Join {WORKSPACE}")).to_be_visible()
    email = page.get_by_label("Email")
    expect(email).to_have_value(EDITOR_EMAIL)
    expect(email).to_be_disabled()
    shot(page, "invitation")
    page.get_by_label("Your name").fill("Grace Hopper")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account and join").click()

    # She lands on the members page of Ada's workspace, as an Editor.
    expect(page).to_have_url(f"{base}/settings/members/")
    expect(page.get_by_text(f"You joined {WORKSPACE}.")).to_be_visible()
    expect(page.get_by_test_id("workspace-switcher")).to_have_text(WORKSPACE)
    members = page.get_by_test_id("member-list")
    expect(members).to_contain_text(OWNER_EMAIL)
    grace_row = members.get_by_role("row").filter(has_text=EDITOR_EMAIL)
    expect(grace_row).to_contain_text("Editor")
    expect(page.get_by_role("link", name="API keys")).to_have_count(0)
    shot(page, "members-second-user")


def test_login_page_on_a_phone(browser_page, live_server_url, transactional_db):
    page = browser_page
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server_url}/login/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("button", name="Sign in")).to_be_in_viewport()
    shot(page, "login-phone")
