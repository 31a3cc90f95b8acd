"""A small Django project serving the demo agents over ACP at ``/acp/`` (see settings.py)."""
