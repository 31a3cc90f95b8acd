"""The operations endpoints of a mount that are not ACP: its OpenAPI document, merged into FastAPI's."""
