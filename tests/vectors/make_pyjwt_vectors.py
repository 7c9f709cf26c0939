"""Makes pyjwt_hs256.json: tokens shaped exactly as djangorestframework-simplejwt issues them
(HS256, claims token_type/exp/iat/jti/user_id, no kid), signed by PyJWT, for
tests/api/compat.rs. Run: python3 tests/vectors/make_pyjwt_vectors.py > tests/vectors/pyjwt_hs256.json
"""
import json
import uuid

import jwt  # PyJWT, the library simplejwt signs with

SECRET = "django-insecure-shared-secret-for-authbridge-vectors-0123456789"
FAR = 2145830400  # 2037-12-31: far off, yet inside MySQL TIMESTAMP
NOW = 1763900000  # 2025-11-23


def token(token_type, exp, secret=SECRET, user_id=1):
    claims = {"token_type": token_type, "exp": exp, "iat": NOW, "jti": uuid.uuid4().hex, "user_id": user_id}
    return jwt.encode(claims, secret, algorithm="HS256")


print(json.dumps({
    "pyjwt_version": jwt.__version__,
    "secret": SECRET,
    "user_id": 1,
    "access": token("access", FAR),
    "refresh": token("refresh", FAR),
    "expired_access": token("access", NOW + 300),
    "other_secret_access": token("access", FAR, secret="another-secret-another-secret-another-1234"),
}, indent=2))
