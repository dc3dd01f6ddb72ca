"""A URLconf without the report page, to check the agent page only links to pages that exist."""

from django.contrib import admin
from django.urls import path

urlpatterns = [
    path("admin/", admin.site.urls),
]
