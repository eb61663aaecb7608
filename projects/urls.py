"""The project pages, mounted at /dashboard/projects/."""

from __future__ import annotations

from django.urls import path

from projects import views

urlpatterns = [
    path("", views.project_list, name="projects"),
    path("switch/", views.project_switch, name="project-switch"),
    path("<int:pk>/", views.project_detail, name="project"),
    path("<int:pk>/settings/", views.project_settings, name="project-settings"),
    path("<int:pk>/delete/", views.project_remove, name="project-delete"),
    path("<int:pk>/members/<int:member_pk>/role/", views.member_role, name="project-member-role"),
    path(
        "<int:pk>/members/<int:member_pk>/remove/",
        views.member_delete,
        name="project-member-remove",
    ),
    path("<int:pk>/invite/", views.invite, name="project-invite"),
    path("<int:pk>/keys/", views.key_create, name="project-key-create"),
    path("<int:pk>/keys/<int:key_pk>/revoke/", views.key_revoke, name="project-key-revoke"),
    path("invitations/<str:token>/", views.invitation, name="project-invitation-accept"),
]
