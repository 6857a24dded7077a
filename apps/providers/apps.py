from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "apps.providers"
    label = "providers"

    def ready(self) -> None:
        from apps.core.crypto import register_encrypted_field  # apps must be loaded first

        for model in ("ProviderConfig", "ModelConfig", "CredentialSet"):
            register_encrypted_field(f"providers.{model}", "encrypted_credentials")
