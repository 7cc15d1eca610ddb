"""API v1 for the tenant's people and functional identities: service IDs (never their keys)
and members."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from accounts import roles, selectors, services
from accounts.roles import Role
from api.base import KeywardApiView
from api.schema import responses
from common.request import context_of


class ServiceIdOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices)
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class ServiceIdCreateInputSerializer(serializers.Serializer):
    name = serializers.SlugField(max_length=64)
    role = serializers.ChoiceField(choices=Role.choices)
    description = serializers.CharField(max_length=300, required=False, allow_blank=True)


class ServiceIdUpdateInputSerializer(serializers.Serializer):
    description = serializers.CharField(max_length=300, required=False, allow_blank=True)
    role = serializers.ChoiceField(choices=Role.choices, required=False)
    is_active = serializers.BooleanField(required=False)


class MemberOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField(source="user.email")
    full_name = serializers.CharField(source="user.full_name")
    role = serializers.ChoiceField(choices=Role.choices)
    created_at = serializers.DateTimeField()


class ServiceIdListApi(KeywardApiView):
    """List the tenant's service IDs, or create one (never its keys)."""

    required_scopes = {"GET": ["service_ids:read"], "POST": ["service_ids:write"]}

    @extend_schema(
        operation_id="service_ids_list",
        tags=["service-ids"],
        responses=responses(200, ServiceIdOutputSerializer(many=True)),
    )
    def get(self, request):
        service_ids = selectors.service_id_list(request.auth.principal)
        return Response(ServiceIdOutputSerializer(service_ids, many=True).data)

    @extend_schema(
        operation_id="service_ids_create",
        tags=["service-ids"],
        description=(
            f"Create a service ID. A key grants only the lowest role (`{roles.lowest()}`): any "
            "other role is a 403 `permission_denied`; grant it in the portal, behind a fresh "
            "second factor. Names are unique in the tenant, ignoring case (a 400 otherwise)."
        ),
        request=ServiceIdCreateInputSerializer,
        responses=responses(201, ServiceIdOutputSerializer, 400, 415),
    )
    def post(self, request):
        data = ServiceIdCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        service_id = services.service_id_create(
            actor=request.auth.principal, context=context_of(request), **data.validated_data
        )
        return Response(ServiceIdOutputSerializer(service_id).data, status=status.HTTP_201_CREATED)


class ServiceIdDetailApi(KeywardApiView):
    """Show a service ID, or change its description, role or active flag."""

    required_scopes = {"GET": ["service_ids:read"], "PATCH": ["service_ids:write"]}

    @extend_schema(
        operation_id="service_ids_retrieve",
        tags=["service-ids"],
        responses=responses(200, ServiceIdOutputSerializer, 404),
    )
    def get(self, request, pk: int):
        service_id = selectors.service_id_get(request.auth.principal, pk)
        return Response(ServiceIdOutputSerializer(service_id).data)

    @extend_schema(
        operation_id="service_ids_partial_update",
        tags=["service-ids"],
        description=(
            "Change a service ID's description, role or active flag. A key may lower or keep a "
            "role and disable; it never raises a role, and enables only a service ID of the "
            f"lowest role (`{roles.lowest()}`): otherwise a 403 `permission_denied`; do that in "
            "the portal, behind a fresh second factor."
        ),
        request=ServiceIdUpdateInputSerializer,
        responses=responses(200, ServiceIdOutputSerializer, 400, 404, 415),
    )
    def patch(self, request, pk: int):
        data = ServiceIdUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        principal = request.auth.principal
        service_id = selectors.service_id_get(principal, pk)
        services.service_id_update(
            actor=principal,
            service_id=service_id,
            context=context_of(request),
            **data.validated_data,
        )
        return Response(ServiceIdOutputSerializer(service_id).data)


class MemberListApi(KeywardApiView):
    """List the tenant's members and their roles."""

    required_scopes = ["members:read"]

    @extend_schema(
        operation_id="members_list",
        tags=["members"],
        responses=responses(200, MemberOutputSerializer(many=True)),
    )
    def get(self, request):
        members = selectors.member_list(request.auth.principal)
        return Response(MemberOutputSerializer(members, many=True).data)
