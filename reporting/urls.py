from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from accounts.views import sign_in, sign_in_code
from reporting import views

urlpatterns = [
    path("", views.overview, name="dashboard"),
    # Password, then a code for users with two-factor sign-in (accounts.views).
    path("login/", sign_in, name="login"),
    path("login/code/", sign_in_code, name="login-code"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("monitors/new/", views.monitor_edit, name="dashboard-monitor-new"),
    path("monitors/<int:pk>/", views.monitor_detail, name="dashboard-monitor"),
    path("monitors/<int:pk>/edit/", views.monitor_edit, name="dashboard-monitor-edit"),
    path("monitors/<int:pk>/check/", views.monitor_check_now, name="dashboard-monitor-check"),
]
