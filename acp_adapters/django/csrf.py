"""Django's CSRF check for the ACP views, for the requests the session cookie authenticates.

The ACP views are exempt from ``CsrfViewMiddleware`` (its refusal is an HTML page, and programs that
send a bearer token, or nothing, hold no CSRF token), and run its check themselves, as Django REST
framework's ``SessionAuthentication`` does: a POST whose user was logged in through Django's session
must carry the CSRF token (the ``X-CSRFToken`` header, ``settings.CSRF_HEADER_NAME``) and, when it
sends an ``Origin``, come from the site or ``CSRF_TRUSTED_ORIGINS``. Anonymous requests, and requests
whose session holds no logged-in user (a bearer token read by ``OWNER``), are not checked: a
cross-site page cannot act as anyone through them.
"""

from __future__ import annotations

from django.contrib.auth import SESSION_KEY
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, QueryDict
from django.middleware.csrf import CsrfViewMiddleware

from acp_adapters.core.errors import PermissionRequired

__all__ = ["SAFE_METHODS", "check_csrf"]

#: The methods RFC 9110 calls safe, which Django's CSRF check lets through.
SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS", "TRACE"))


class _Rejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _CSRFCheck(CsrfViewMiddleware):
    """Django's check, with its refusal raised (to become an ACP error) instead of rendered."""

    def _reject(self, request: HttpRequest, reason: str) -> HttpResponseForbidden:
        raise _Rejected(reason)


def _no_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse()  # never called: only the check's two hooks run


def check_csrf(request: HttpRequest, *, logged_in: bool | None = None) -> None:
    """Raise :class:`PermissionRequired` (403) when ``request`` is unsafe (a POST), its user was
    logged in through Django's session, and it fails Django's CSRF check.

    ``logged_in`` says whether the user is authenticated when the caller knows it already (from
    ``request.auser()``); by default ``request.user`` says.
    """
    if request.method in SAFE_METHODS:
        return
    if logged_in is None:
        user = getattr(request, "user", None)
        logged_in = user is not None and user.is_authenticated
    session = getattr(request, "session", None)
    if not logged_in or session is None or SESSION_KEY not in session:
        return  # anonymous, or a user that the session did not give (a token middleware's)
    # The ACP API takes JSON, never forms: the token comes in the header, and Django must not parse
    # the body as a form to look for one (the core reads it, within its own limit).
    request.POST = QueryDict()
    check = _CSRFCheck(_no_view)
    check.process_request(request)
    try:
        check.process_view(request, _no_view, (), {})
    except _Rejected as exc:
        raise PermissionRequired(f"CSRF check failed: {exc.reason}") from None
