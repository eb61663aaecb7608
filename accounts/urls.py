from __future__ import annotations

from django.urls import path

from accounts import views

urlpatterns = [
    path("two-factor/", views.two_factor, name="two-factor"),
    path("two-factor/enrol/", views.two_factor_enrol, name="two-factor-enrol"),
    path("two-factor/recovery-codes/", views.two_factor_recovery, name="two-factor-recovery"),
    path("two-factor/disable/", views.two_factor_disable, name="two-factor-disable"),
]
