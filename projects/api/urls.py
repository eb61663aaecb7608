from __future__ import annotations

from rest_framework.routers import SimpleRouter

from projects.api.views import ApiKeyViewSet, InvitationViewSet, MembershipViewSet, ProjectViewSet

router = SimpleRouter()
router.register("projects", ProjectViewSet, basename="project")
router.register("members", MembershipViewSet, basename="member")
router.register("api-keys", ApiKeyViewSet, basename="api-key")
router.register("invitations", InvitationViewSet, basename="invitation")

urlpatterns = router.urls
