"""The operators' admin: projects with their members, API keys (never their secrets)
and invitations."""

from __future__ import annotations

from django.contrib import admin

from projects.models import ApiKey, Invitation, Membership, Project


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("name", "personal_of", "require_2fa", "created_at")
    search_fields = ("name",)
    raw_id_fields = ("personal_of",)
    inlines = [MembershipInline]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "project", "prefix", "read_only", "last_used_at", "revoked_at")
    # The hash is no secret, but nothing in the admin needs it.
    exclude = ("hashed",)
    readonly_fields = ("prefix", "created_by", "last_used_at")


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ("email", "project", "role", "expires_at", "accepted_at")
    exclude = ("hashed",)
