"""The studio's debug and preview pane: the web app's consumer, for a signed-in editor, run
against the configuration on the page (saved or not) rather than the app's saved one.

ws/studio/<app_id>/debug/ — the page's config form travels with every message; it is read
by the same ConfigForm that saves it, so the preview refuses what a save would refuse."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace

from apps.chat.consumers import Actor, WebAppConsumer, error_fragment
from apps.chat.models import App, FromSource
from apps.chat.views.studio_forms import ConfigForm
from apps.core.errors import DomainError, NotFound, PermissionDenied
from apps.core.offload import offload
from apps.tenants.permissions import can
from apps.tenants.selectors import membership_list_for_user

CONFIG_ERROR = "The preview cannot run this configuration: {}"


class StudioDebugConsumer(WebAppConsumer):
    _override: dict | None = None

    def authorize(self) -> Actor:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            raise PermissionDenied("Sign in first.")
        try:
            app_id = uuid.UUID(str(self.scope["url_route"]["kwargs"]["app_id"]))
        except ValueError:
            raise NotFound("No such app.") from None
        app = App.objects.select_related("workspace").filter(pk=app_id).first()
        membership = (
            membership_list_for_user(user=user).filter(workspace_id=app.workspace_id).first()
            if app
            else None
        )
        if membership is None:
            raise NotFound("No such app.")
        if not can(membership.role, "apps.edit"):
            raise PermissionDenied("Only editors preview an app.")
        self.membership = membership
        return Actor(
            app=app,
            from_source=FromSource.DEBUGGER,
            end_user=None,
            user=user,
            base_path=f"/apps/{app.pk}/debug",
        )

    def _conversations(self):
        # Each member previews in conversations of their own: another's is "not found".
        return (
            super()._conversations().filter(from_source=FromSource.DEBUGGER, user=self.actor.user)
        )

    def _messages(self):
        return super()._messages().filter(from_source=FromSource.DEBUGGER, user=self.actor.user)

    def _read_config(self, data: dict) -> dict:
        app = (
            App.objects.for_workspace(self.membership.workspace)
            .filter(pk=self.actor.app.pk)
            .first()
        )
        if app is None:
            raise NotFound("This app was deleted.")
        self.actor = replace(self.actor, app=app)  # the latest name, mode and limits
        result = ConfigForm(app=app, membership=self.membership, data=data).read()
        if not result.valid:
            first = next(iter(result.errors.values()))
            raise DomainError(CONFIG_ERROR.format(first))
        return result.config

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        # The configuration is read in a thread (it looks up models and knowledge bases)
        # before the web app's consumer starts the turn with it.
        self._override = None
        try:
            data = json.loads(text_data or "")
        except ValueError:
            data = None
        if isinstance(data, dict) and (data.get("action") or "send") in ("send", "regenerate"):
            try:
                self._override = await offload(self._read_config)(data)
            except DomainError as exc:
                await self.send(error_fragment(exc.message))
                return
        await super().receive(text_data=text_data, bytes_data=bytes_data)

    def config_override(self, data: dict) -> dict | None:
        return self._override
