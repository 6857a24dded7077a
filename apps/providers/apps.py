from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "apps.providers"
    label = "providers"

    def ready(self) -> None:
        from django.core import checks

        from apps.core.crypto import register_encrypted_field  # apps must be loaded first
        from apps.providers.catalog import validate_catalog

        @checks.register()
        def provider_catalog(app_configs, **kwargs):
            """A malformed provider YAML stops `migrate`/`serve`, naming file and field."""
            return [checks.Error(problem, id="providers.E001") for problem in validate_catalog()]

        for model in ("ProviderConfig", "ModelConfig", "CredentialSet"):
            register_encrypted_field(f"providers.{model}", "encrypted_credentials")
