"""Sign up, sign in, sign out, and invitation links."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, login, logout
from django.contrib.auth.views import PasswordResetView
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.core import ratelimit
from apps.core.errors import DomainError, NotFound
from apps.core.pages import client_ip, safe_next
from apps.tenants import services
from apps.tenants.forms import LoginForm, SignupForm
from apps.tenants.models import User

BAD_LOGIN = "That email and password do not match an account."


def _too_many(seconds: int) -> str:
    minutes = max(1, round(seconds / 60))
    return f"Too many sign-in attempts. Try again in {minutes} minute{'s' * (minutes != 1)}."


def login_view(request):
    if request.user.is_authenticated:
        return redirect(safe_next(request, "/"))
    form = LoginForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            email = form.cleaned_data["email"].lower()
            window = settings.ORRERY_LOGIN_LIMIT_WINDOW
            wait = ratelimit.hit(
                "login-ip",
                client_ip(request),
                limit=settings.ORRERY_LOGIN_LIMIT_PER_IP,
                window=window,
            ) or ratelimit.blocked(
                "login-account", email, limit=settings.ORRERY_LOGIN_LIMIT_PER_ACCOUNT, window=window
            )
            if wait:
                form.add_error(None, _too_many(wait))
                status = 429
            else:
                user = authenticate(request, email=email, password=form.cleaned_data["password"])
                if user is None:
                    ratelimit.hit(
                        "login-account",
                        email,
                        limit=settings.ORRERY_LOGIN_LIMIT_PER_ACCOUNT,
                        window=window,
                    )
                    form.add_error(None, BAD_LOGIN)
                else:
                    ratelimit.reset("login-account", email, window=window)
                    login(request, user)
                    return redirect(safe_next(request, "/"))
    context = {"form": form, "next": safe_next(request, "")}
    return render(request, "tenants/login.html", context, status=status)


def signup_view(request):
    if request.user.is_authenticated:
        return redirect("home")
    if not settings.ORRERY_SIGNUP_ENABLED:
        return render(request, "tenants/signup_closed.html", status=403)
    form = SignupForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            user = _create_account(request, form)
            if user:
                messages.success(request, f"Welcome to Orrery, {user.display_name}.")
                return redirect("home")
    return render(request, "tenants/signup.html", {"form": form}, status=status)


def _create_account(request, form: SignupForm, email: str | None = None) -> User | None:
    ip = client_ip(request)
    if wait := ratelimit.hit("signup-ip", ip, limit=20, window=3600):
        form.add_error(
            None, f"Too many sign-ups from your address. Try again in {wait // 60 + 1} min."
        )
        return None
    try:
        user = services.user_create(
            email=email or form.cleaned_data["email"],
            password=form.cleaned_data["password"],
            name=form.cleaned_data["name"],
        )
    except DomainError as exc:
        form.add_error(None, exc.message)
        return None
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return user


@require_POST
def logout_view(request):
    logout(request)  # flushes the server-side session
    messages.info(request, "You are signed out.")
    return redirect("login")


def invitation_accept_view(request, token: str):
    try:
        invitation = services.invitation_check(token=token)
    except NotFound as exc:
        return render(
            request, "tenants/invitation_invalid.html", {"reason": exc.message}, status=404
        )
    except DomainError as exc:
        return render(
            request, "tenants/invitation_invalid.html", {"reason": exc.message}, status=410
        )

    user = request.user if request.user.is_authenticated else None
    has_account = user is None and User.objects.filter(email__iexact=invitation.email).exists()
    form = SignupForm(request.POST or None, fixed_email=invitation.email)
    status = 200
    if request.method == "POST":
        if user is None and not has_account:
            status = 400
            if form.is_valid():
                user = _create_account(request, form, email=invitation.email)
        if user is not None:
            try:
                services.invitation_accept(token=token, user=user)
            except DomainError as exc:
                messages.error(request, exc.message)
                status = 403
            else:
                messages.success(request, f"You joined {invitation.workspace.name}.")
                return redirect("members")
        elif has_account:
            return HttpResponseNotAllowed(["GET"])
    context = {"invitation": invitation, "form": form, "has_account": has_account, "token": token}
    return render(request, "tenants/invitation_accept.html", context, status=status)


class RateLimitedPasswordResetView(PasswordResetView):
    """Django's reset flow, with a cap on how many reset mails one address can trigger."""

    def form_valid(self, form):
        if wait := ratelimit.hit(
            "password-reset-ip", client_ip(self.request), limit=10, window=3600
        ):
            form.add_error(None, f"Too many reset requests. Try again in {wait // 60 + 1} min.")
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().form_valid(form)
