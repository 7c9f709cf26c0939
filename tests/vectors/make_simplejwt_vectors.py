"""Makes simplejwt_5_5.json: tokens issued by djangorestframework-simplejwt itself
(RefreshToken.for_user, HS256, the library's own claims: since 5.5 `user_id` is a string), for
tests/api/revocation.rs. Needs Django and djangorestframework-simplejwt 5.5:
    pip install "django>=4.2,<6" djangorestframework "djangorestframework-simplejwt==5.5.1"
    python3 tests/vectors/make_simplejwt_vectors.py > tests/vectors/simplejwt_5_5.json
"""
import json
from datetime import timedelta

import django
from django.conf import settings

SECRET = "django-insecure-shared-secret-for-authbridge-vectors-0123456789"

settings.configure(
    SECRET_KEY=SECRET,
    INSTALLED_APPS=[
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "rest_framework",
        "rest_framework_simplejwt",
    ],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    USE_TZ=True,
    SIMPLE_JWT={
        "ALGORITHM": "HS256",
        "SIGNING_KEY": SECRET,
        # Far off, so the committed vectors stay valid (and inside MySQL's TIMESTAMP range).
        "ACCESS_TOKEN_LIFETIME": timedelta(days=3000),
        "REFRESH_TOKEN_LIFETIME": timedelta(days=3000),
    },
)
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
import rest_framework_simplejwt  # noqa: E402
from rest_framework_simplejwt.tokens import RefreshToken  # noqa: E402

call_command("migrate", verbosity=0)
user = get_user_model().objects.create_user(id=1, username="alice", password="unused-password-123")
refresh = RefreshToken.for_user(user)

print(json.dumps({
    "simplejwt_version": rest_framework_simplejwt.__version__,
    "django_version": django.get_version(),
    "secret": SECRET,
    "user_id": 1,
    "access": str(refresh.access_token),
    "refresh": str(refresh),
}, indent=2))
