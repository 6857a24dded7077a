from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from apps.providers.gateway import gateway_api
from apps.tenants.views import accounts, workspace
from config.api import api
from config.service_api import service_api

password_reset = [
    path(
        "password-reset/",
        accounts.RateLimitedPasswordResetView.as_view(
            template_name="tenants/password_reset.html",
            email_template_name="tenants/email/password_reset.txt",
            subject_template_name="tenants/email/password_reset_subject.txt",
        ),
        name="password_reset",
    ),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="tenants/password_reset_sent.html"),
        name="password_reset_done",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="tenants/password_reset_confirm.html"
        ),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="tenants/password_reset_complete.html"
        ),
        name="password_reset_complete",
    ),
]

urlpatterns = [
    path("", workspace.home_view, name="home"),
    path("signup/", accounts.signup_view, name="signup"),
    path("login/", accounts.login_view, name="login"),
    path("logout/", accounts.logout_view, name="logout"),
    *password_reset,
    path("invite/<str:token>/", accounts.invitation_accept_view, name="invitation_accept"),
    path("workflows/", workspace.section_view, {"section": "workflows"}, name="workflows"),
    path("tools/", workspace.section_view, {"section": "tools"}, name="tools"),
    path("settings/", workspace.settings_view, name="settings"),
    path("settings/delete/", workspace.workspace_delete_view, name="workspace_delete"),
    path("settings/members/", workspace.members_view, name="members"),
    path(
        "settings/members/<uuid:membership_id>/role/",
        workspace.member_role_view,
        name="member_role",
    ),
    path(
        "settings/members/<uuid:membership_id>/remove/",
        workspace.member_remove_view,
        name="member_remove",
    ),
    path("settings/leave/", workspace.member_leave_view, name="member_leave"),
    path(
        "settings/invitations/<uuid:invitation_id>/revoke/",
        workspace.invitation_revoke_view,
        name="invitation_revoke",
    ),
    path("settings/api-keys/", workspace.api_keys_view, name="api_keys"),
    path(
        "settings/api-keys/<uuid:api_key_id>/revoke/",
        workspace.api_key_revoke_view,
        name="api_key_revoke",
    ),
    path("workspaces/new/", workspace.workspace_create_view, name="workspace_create"),
    path(
        "workspaces/<uuid:workspace_id>/switch/",
        workspace.workspace_switch_view,
        name="workspace_switch",
    ),
    path("", include("apps.providers.urls")),
    path("", include("apps.chat.urls")),
    path("", include("apps.datasets.urls")),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("v1/", service_api.urls),  # Dify's Service and Knowledge APIs first …
    path("v1/", gateway_api.urls),  # … then the OpenAI-compatible gateway
]

handler404 = "apps.core.views.not_found"
handler403 = "apps.core.views.forbidden"
handler500 = "apps.core.views.server_error"
