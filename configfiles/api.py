"""The configuration endpoints: ``GET /api/v1/config/export`` and
``POST /api/v1/config/apply`` (the signed-in user's own objects)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from configfiles.apply import ApplyBusyError, config_apply
from configfiles.document import ConfigFileError, Problem, dump
from configfiles.export import config_export
from configfiles.models import ConfigApply
from configfiles.scope import Scope, scope_for_project
from projects.api.fields import ProjectField
from projects.api.permissions import require_change
from projects.models import Project
from projects.roles import Area
from projects.selectors import default_project_id


class _FileRenderer(BaseRenderer):
    """A document as a configuration file (errors are rendered as JSON instead, by the
    view)."""

    charset = "utf-8"
    syntax = "yaml"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        return dump(data, syntax=self.syntax).encode()


class YAMLFileRenderer(_FileRenderer):
    media_type = "application/yaml"
    format = "yaml"


class JSONFileRenderer(_FileRenderer):
    media_type = "application/json"
    format = "json"
    syntax = "json"


# Far more than any real configuration (10,000 monitors export to about 2 MiB).
MAX_FILE_BYTES = 5 * 1024 * 1024


class FileParser(BaseParser):
    """The request body as text: a YAML or JSON file, whatever its content type says."""

    media_type = "*/*"

    def parse(
        self, stream: Any, media_type: str | None = None, parser_context: Any = None
    ) -> dict[str, str]:
        raw = stream.read(MAX_FILE_BYTES + 1) if stream is not None else b""
        if len(raw) > MAX_FILE_BYTES:
            raise ParseError(f"The file is larger than {MAX_FILE_BYTES // 1024 // 1024} MiB.")
        try:
            return {"text": raw.decode("utf-8")}
        except UnicodeDecodeError as exc:
            raise ParseError("The file is not UTF-8 text.") from exc


class ProblemSerializer(serializers.Serializer[Any]):
    line = serializers.IntegerField(allow_null=True, help_text="1-based line in the file")
    path = serializers.CharField(
        help_text='where in the file, e.g. monitors[2] "API".interval_seconds'
    )
    message = serializers.CharField()


# The body's key is "errors", which a Serializer subclass cannot declare (it is the
# serializer's own attribute); the schema gets it from an inline serializer.
ProblemsSerializer = inline_serializer("ConfigProblems", {"errors": ProblemSerializer(many=True)})


class ChangeSerializer(serializers.Serializer[Any]):
    action = serializers.ChoiceField(choices=["create", "update", "delete"])
    kind = serializers.CharField()
    name = serializers.CharField()
    details = serializers.ListField(child=serializers.CharField())


class ApplyReportSerializer(serializers.Serializer[Any]):
    dry_run = serializers.BooleanField()
    changed = serializers.BooleanField()
    changes = ChangeSerializer(many=True)
    unchanged = serializers.IntegerField()
    kept = serializers.ListField(child=serializers.CharField(), help_text="not in the file, kept")
    summary = serializers.CharField()


class ExportParams(serializers.Serializer[Any]):
    project = ProjectField(
        help_text="The project's id; default: an API key's project, else your personal one."
    )


class ApplyParams(ExportParams):
    dry_run = serializers.BooleanField(
        required=False, default=False, help_text="report, change nothing"
    )
    prune = serializers.BooleanField(
        required=False, default=False, help_text="delete what the file does not name"
    )


def _scope(request: Request, params: ExportParams) -> Scope:
    """The project the query names (one the caller sees, else a 400 naming ``project``),
    or the default one; its new objects are created by the caller."""
    assert isinstance(request.user, User)
    project = params.validated_data.get("project")
    if project is None:
        project = Project.objects.get(pk=default_project_id(request.user))
    return scope_for_project(project, actor=request.user)


def _problems(exc: ConfigFileError, code: int) -> Response:
    return Response({"errors": [p.as_dict() for p in exc.problems]}, status=code)


class ConfigExportView(APIView):
    renderer_classes = [YAMLFileRenderer, JSONFileRenderer]

    @extend_schema(
        summary="Your monitors, tags, alert rules, channels and windows as a file",
        parameters=[
            OpenApiParameter(
                "format", OpenApiTypes.STR, enum=["yaml", "json"], description="default yaml"
            ),
            ExportParams,
        ],
        responses={
            # The YAML file holds the same mapping as the JSON one.
            (200, "application/yaml"): OpenApiTypes.OBJECT,
            (200, "application/json"): OpenApiTypes.OBJECT,
            409: OpenApiResponse(ProblemsSerializer, description="two objects share a name"),
        },
    )
    def get(self, request: Request) -> Response:
        params = ExportParams(data=request.query_params, context={"request": request})
        params.is_valid(raise_exception=True)
        try:
            return Response(config_export(scope=_scope(request, params)))
        except ConfigFileError as exc:
            self._errors_as_json(request)
            return _problems(exc, status.HTTP_409_CONFLICT)

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        self._errors_as_json(self.request)
        return response

    @staticmethod
    def _errors_as_json(request: Request) -> None:
        # An error body is JSON and says so, whichever file format was asked for.
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = "application/json"


class ConfigApplyView(APIView):
    parser_classes = [FileParser]
    renderer_classes = [JSONRenderer]

    @extend_schema(
        summary="Make your objects match a YAML or JSON file (dry_run=1 to preview)",
        parameters=[ApplyParams],
        request={"application/yaml": OpenApiTypes.STR, "application/json": OpenApiTypes.OBJECT},
        responses={
            200: ApplyReportSerializer,
            400: OpenApiResponse(
                ProblemsSerializer, description="line-numbered errors; nothing changed"
            ),
            409: OpenApiResponse(
                ProblemsSerializer, description="another apply to your objects is running"
            ),
        },
    )
    def post(self, request: Request) -> Response:
        assert isinstance(request.user, User)
        params = ApplyParams(data=request.query_params, context={"request": request})
        params.is_valid(raise_exception=True)
        scope = _scope(request, params)
        # Applying changes channels and windows too: an admin's work (or a read-write key).
        require_change(request.user, scope.project.pk, Area.CONFIG)
        try:
            report = config_apply(
                scope=scope,
                text=request.data.get("text", "") if isinstance(request.data, dict) else "",
                prune=params.validated_data["prune"],
                dry_run=params.validated_data["dry_run"],
                applied_by=request.user,
                source=ConfigApply.Source.API,
            )
        except ConfigFileError as exc:
            return _problems(exc, status.HTTP_400_BAD_REQUEST)
        except ApplyBusyError as exc:
            busy = ConfigFileError([Problem(None, "", str(exc))])
            return _problems(busy, status.HTTP_409_CONFLICT)
        return Response(report.as_dict())
