from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include(("runner.api.urls", "api"))),
]

handler404 = "runner.api.errors.not_found"
handler500 = "runner.api.errors.server_error"
