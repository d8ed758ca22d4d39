"""The facility's JSON API: one module per area, each with its routes and its part of the OpenAPI
document (api/openapi.py puts the parts together and serves them)."""
