"""Who is using a public web app: a visitor is an end user (source "browser") of one app.

A visitor is recognised by a signed token that the page carries in a header (htmx) and in
the websocket URL, and remembered in the session so a reload finds the same
conversations. The token matters inside an iframe on another site, where browsers often
withhold cookies: the page still works there. It also stands in for the CSRF token on the
web app's own POSTs, since another site cannot set a custom header.

Everything a visitor reads goes through this module, filtered by app and end user: a
conversation or message of anyone else is "not found"."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.core import signing
from django.db.models import QuerySet

from apps.chat import selectors
from apps.chat.models import App, AppMode, Conversation, EndUser, Message, MessageFeedback
from apps.chat.services.end_users import end_user_get_or_create
from apps.core import ratelimit
from apps.core.errors import NotFound, PermissionDenied, RateLimited
from apps.tenants.models import Membership

VISITOR_HEADER = "X-Orrery-Visitor"
VISITOR_PARAM = "visitor"
_SALT = "orrery.chat.visitor"
NEW_VISITORS = 120  # new visitors a minute from one address
CHAT_MODES = (AppMode.CHAT, AppMode.AGENT_CHAT, AppMode.ADVANCED_CHAT)


class LoginRequired(PermissionDenied):
    code = "login_required"
    status = 401


@dataclass(frozen=True)
class Visitor:
    app: App
    end_user: EndUser

    @property
    def workspace(self):
        return self.app.workspace

    @property
    def token(self) -> str:
        return signing.Signer(salt=_SALT).sign_object([str(self.app.pk), str(self.end_user.pk)])


def site_app(*, code: str) -> App:
    """The app behind an enabled public link."""
    app = App.objects.select_related("workspace").filter(site_code=code, enable_site=True)
    app = app.first() if isinstance(code, str) and len(code) <= 64 else None
    if app is None:
        raise NotFound("This app link is not available.")
    return app


def site_path(app: App) -> str:
    kind = "chat" if app.mode in CHAT_MODES else "completion"
    return f"/{kind}/{app.site_code}"


def _session_key(app: App) -> str:
    return f"webapp:{app.pk}"


def _check_member(app: App, user) -> None:
    if not app.site_requires_login:
        return
    if user is None or not user.is_authenticated:
        raise LoginRequired("Sign in to use this app.")
    if not Membership.objects.for_workspace(app.workspace).filter(user=user).exists():
        raise PermissionDenied("This app is only for members of its workspace.")


def _from_token(app: App, token: str) -> EndUser | None:
    try:
        app_id, end_user_id = signing.Signer(salt=_SALT).unsign_object(token)
    except (signing.BadSignature, TypeError, ValueError):
        return None
    if app_id != str(app.pk):
        return None
    return EndUser.objects.for_workspace(app.workspace).filter(app=app, pk=end_user_id).first()


def visitor_resolve(
    *, app: App, session, user=None, token: str = "", create: bool = True, client: str = ""
):
    """The visitor of `app` making this request, made on first visit when `create`.

    Returns None when `create` is false and nobody is recognised. Raises LoginRequired or
    PermissionDenied when the app is for workspace members only."""
    _check_member(app, user)
    signed_in = user is not None and user.is_authenticated
    end_user = _from_token(app, token) if token else None
    if end_user is None and session is not None and session.get(_session_key(app)):
        end_user = (
            EndUser.objects.for_workspace(app.workspace)
            .filter(app=app, pk=session[_session_key(app)])
            .first()
        )
    if end_user is not None and app.site_requires_login and end_user.user_id != user.pk:
        end_user = None  # someone else's visitor on a shared computer
    if end_user is None and app.site_requires_login:
        # Members are one visitor per app whatever browser they use.
        end_user = end_user_get_or_create(
            app=app, source=EndUser.Source.BROWSER, session_id=f"user:{user.pk}", user=user
        )
    if end_user is None:
        if not create:
            return None
        # Each new browser is a row: a script requesting the link in a loop is slowed down.
        wait = ratelimit.hit("webapp-visitor", client or "unknown", limit=NEW_VISITORS, window=60)
        if wait:
            raise RateLimited(
                "Too many new visitors from your address: try again soon.", retry_after=wait
            )
        end_user = end_user_get_or_create(
            app=app,
            source=EndUser.Source.BROWSER,
            session_id=secrets.token_urlsafe(24),
            user=user if signed_in else None,
        )
    if session is not None and session.get(_session_key(app)) != str(end_user.pk):
        session[_session_key(app)] = str(end_user.pk)
    return Visitor(app=app, end_user=end_user)


# --- What a visitor may read ----------------------------------------------------------------


def visitor_conversations(*, visitor: Visitor) -> QuerySet[Conversation]:
    return (
        Conversation.objects.for_workspace(visitor.workspace)
        .filter(app=visitor.app, end_user=visitor.end_user)
        .order_by("-updated_at")
    )


def visitor_conversation(*, visitor: Visitor, conversation_id) -> Conversation:
    try:
        conversation = visitor_conversations(visitor=visitor).filter(pk=conversation_id).first()
    except (ValueError, TypeError, signing.BadSignature):
        conversation = None
    except Exception:  # a malformed UUID raises ValidationError
        conversation = None
    if conversation is None:
        raise NotFound("No such conversation.")
    return conversation


def visitor_messages(*, visitor: Visitor) -> QuerySet[Message]:
    return Message.objects.for_workspace(visitor.workspace).filter(
        app=visitor.app, end_user=visitor.end_user
    )


def visitor_message(*, visitor: Visitor, message_id) -> Message:
    try:
        message = visitor_messages(visitor=visitor).filter(pk=message_id).first()
    except Exception:  # a malformed UUID raises ValidationError
        message = None
    if message is None:
        raise NotFound("No such message.")
    return message


def conversation_thread(*, conversation: Conversation) -> list[Message]:
    """The turns shown for a conversation: the branch that ends at the newest turn."""
    return selectors.message_branch(conversation=conversation)


def attach_ratings(messages: list[Message]) -> None:
    """Set `user_rating` (like, dislike or "") on each message: the visitor's own feedback."""
    ratings = dict(
        MessageFeedback.objects.filter(
            message__in=[m.pk for m in messages], from_source=MessageFeedback.Source.USER
        ).values_list("message_id", "rating")
    )
    for message in messages:
        message.user_rating = ratings.get(message.pk, "")
