from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "apps.chat"
    label = "chat"

    def ready(self) -> None:
        # Providers must not import chat: the gateway learns about app keys from us.
        from apps.chat import openai_compat
        from apps.providers.gateway import register_app_chat_handler

        register_app_chat_handler(openai_compat.handle)
