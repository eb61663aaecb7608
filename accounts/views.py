"""Sign-in pages: password, then a code for users with two-factor sign-in, and the
pages where a user turns it on (enrol), renews recovery codes or turns it off."""

from __future__ import annotations

import base64
import time

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_otp import login as otp_login

from accounts import services
from accounts.forms import CodeForm

# The signed-in-by-password user waiting for their code: (id, backend, next, since).
PENDING = "accounts.two_factor_pending"
# A password check is good for this long while the user finds their phone.
PENDING_SECONDS = 300
WRONG_CODE = (
    "That code is not right, or was already used. Wrong codes slow down further tries: "
    "wait a few seconds between them."
)


def _next_url(request: HttpRequest) -> str:
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    safe = url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return wanted if safe else str(settings.LOGIN_REDIRECT_URL)


@sensitive_post_parameters("password")
@never_cache
def sign_in(request: HttpRequest) -> HttpResponse:
    """The password step; a user with a device goes on to the code step, signed in
    only once the code is right."""
    if request.user.is_authenticated:
        return redirect(_next_url(request))
    form = AuthenticationForm(request, data=request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.get_user()
        if services.two_factor_enabled(user=user):
            # authenticate() noted the backend that accepted the password on the user.
            backend = getattr(user, "backend", settings.AUTHENTICATION_BACKENDS[0])
            request.session[PENDING] = [user.pk, backend, _next_url(request), time.time()]
            return redirect("login-code")
        auth_login(request, user)
        return redirect(_next_url(request))
    return render(request, "reporting/login.html", {"form": form, "next": _next_url(request)})


@sensitive_post_parameters("code")
@never_cache
def sign_in_code(request: HttpRequest) -> HttpResponse:
    pending = request.session.get(PENDING)
    if not pending or time.time() - pending[3] > PENDING_SECONDS:
        request.session.pop(PENDING, None)
        messages.info(request, "Sign in with your password first.")
        return redirect("login")
    user_id, backend, next_url, _ = pending
    user = User.objects.filter(pk=user_id, is_active=True).first()
    form = CodeForm(request.POST or None)
    if user is not None and request.method == "POST" and form.is_valid():
        device = services.two_factor_verify(user=user, code=form.cleaned_data["code"])
        if device is not None:
            del request.session[PENDING]
            auth_login(request, user, backend=backend)
            otp_login(request, device)
            return redirect(next_url)
        form.add_error("code", WRONG_CODE)
    return render(request, "accounts/login_code.html", {"form": form})


@login_required
def two_factor(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, User)
    context = {
        "enabled": services.two_factor_enabled(user=request.user),
        "codes_left": services.recovery_codes_left(user=request.user),
        "form": CodeForm(),
    }
    return render(request, "accounts/two_factor.html", context)


@login_required
def two_factor_enrol(request: HttpRequest) -> HttpResponse:
    """Scan the QR code (or type the key), then prove it with a code; the recovery
    codes are shown once, on the answer to that."""
    assert isinstance(request.user, User)
    if services.two_factor_enabled(user=request.user):
        return redirect("two-factor")
    device = services.authenticator_pending(user=request.user)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        codes = services.authenticator_confirm(user=request.user, code=form.cleaned_data["code"])
        if codes is not None:
            device.refresh_from_db()
            otp_login(request, device)
            return render(request, "accounts/recovery_codes.html", {"codes": codes})
        form.add_error("code", WRONG_CODE)
    context = {
        "form": form,
        "qr": segno.make(device.config_url, error="m").svg_inline(scale=4),
        "key": base64.b32encode(device.bin_key).decode(),
    }
    return render(request, "accounts/enrol.html", context)


def _with_code(request: HttpRequest) -> bool:
    """Whether the POST carries a code that one of the user's devices accepts."""
    assert isinstance(request.user, User)
    form = CodeForm(request.POST)
    ok = form.is_valid() and (
        services.two_factor_verify(user=request.user, code=form.cleaned_data["code"]) is not None
    )
    if not ok:
        messages.error(request, WRONG_CODE)
    return ok


@login_required
@require_POST
def two_factor_recovery(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, User)
    if not _with_code(request):
        return redirect("two-factor")
    codes = services.recovery_codes_renew(user=request.user)
    return render(request, "accounts/recovery_codes.html", {"codes": codes})


@login_required
@require_POST
def two_factor_disable(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, User)
    if _with_code(request):
        services.two_factor_disable(user=request.user)
        messages.success(request, "Two-factor sign-in is off.")
    return redirect("two-factor")
