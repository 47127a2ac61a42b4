"""The OpenAPI schema: every operation documents the API's error shape.

drf-spectacular describes the successful answers from the views; this adds
the 4xx answers every operation can give, all with api.serializers'
ErrorSerializer, so that clients and schemathesis know them.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as BaseAutoSchema

from .serializers import ErrorSerializer

ERRORS = {
    "400": "Invalid input (body or query parameters); nothing was changed.",
    "401": "No valid credentials: give 'Authorization: Token <key>' or sign in.",
    "403": "The account's role does not allow this.",
    "404": "No such object, or not one this account may see.",
    "409": "Conflicts with something that already exists (e.g. a duplicate rule).",
}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class AutoSchema(BaseAutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code, description in ERRORS.items():
            if code == "409" and self.method not in WRITE_METHODS:
                continue
            if code not in responses:
                response = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                response["description"] = description
                responses[code] = response
        return responses


class TokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "An API token with the prefix 'Token ' (or 'Bearer '), e.g. "
            "'Token ecp_...'. Create one at /account/tokens/.",
        }


def without_slash_twins(endpoints, **kwargs):
    """A preprocessing hook: drop the trailing-slash twins of the paths (api.urls), so
    each operation is documented once, at its canonical path."""
    return [e for e in endpoints if not e[0].endswith("/")]
