from django import forms
from django.contrib.auth.password_validation import validate_password

from apps.tenants.models import ApiKeyScope, Role, User


class SignupForm(forms.Form):
    name = forms.CharField(max_length=150, required=False, label="Your name")
    email = forms.EmailField(max_length=254)
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def __init__(self, *args, fixed_email: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if fixed_email:
            self.fields["email"].initial = fixed_email
            self.fields["email"].disabled = True

    def clean(self):
        cleaned = super().clean()
        password, email = cleaned.get("password"), cleaned.get("email")
        if password and email:
            try:
                validate_password(password, user=User(email=email, name=cleaned.get("name", "")))
            except forms.ValidationError as exc:
                self.add_error("password", exc)
        return cleaned


class LoginForm(forms.Form):
    email = forms.EmailField(max_length=254)
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


class WorkspaceNameForm(forms.Form):
    name = forms.CharField(max_length=100, label="Workspace name")


class DeleteWorkspaceForm(forms.Form):
    confirm_name = forms.CharField(max_length=100, label="Type the workspace name to confirm")


class InviteForm(forms.Form):
    email = forms.EmailField(max_length=254)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.NORMAL)


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, label="Key name")
    scope = forms.ChoiceField(
        choices=ApiKeyScope.choices, initial=ApiKeyScope.MANAGEMENT, label="Opens", required=False
    )

    def clean_scope(self) -> str:
        return self.cleaned_data["scope"] or ApiKeyScope.MANAGEMENT
