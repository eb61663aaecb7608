from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from reporting import views

urlpatterns = [
    path("", views.overview, name="dashboard"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="reporting/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("monitors/new/", views.monitor_edit, name="dashboard-monitor-new"),
    path("monitors/<int:pk>/", views.monitor_detail, name="dashboard-monitor"),
    path("monitors/<int:pk>/edit/", views.monitor_edit, name="dashboard-monitor-edit"),
    path("monitors/<int:pk>/check/", views.monitor_check_now, name="dashboard-monitor-check"),
]
