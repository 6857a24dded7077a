"""Pages of the model runtime: provider settings, playground, usage. Each view module
keeps its own `urlpatterns`; this file only gathers them."""

from apps.providers.views import playground, provider_pages, usage

urlpatterns = [*provider_pages.urlpatterns, *playground.urlpatterns, *usage.urlpatterns]
