"""Decodes a token with PyJWT as simplejwt would (HS256 only) and prints its claims as JSON.
Usage: python3 verify_with_pyjwt.py SECRET TOKEN"""
import json
import sys

import jwt

print(json.dumps(jwt.decode(sys.argv[2], sys.argv[1], algorithms=["HS256"])))
