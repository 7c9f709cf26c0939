"""Runs the PyJWT snippet of authbridge-verify/README.md, as written there, against a live authbridge.

    verify_python.py --base-url URL --username U --password P

Prints `verify-python: N passed` and exits 1 on the first failed check.
"""

import argparse
import base64
import json
import os
import re
import sys
import urllib.request

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "authbridge-verify", "README.md")


def snippet():
    section = open(README, encoding="utf-8").read().split("## The same in Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def call(url, body=None, token=None):
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode())
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    args = parser.parse_args()
    os.environ["AUTHBRIDGE_URL"] = args.base_url
    namespace = {}
    exec(compile(snippet(), README, "exec"), namespace)
    user_id_of = namespace["user_id_of"]
    import jwt

    pair = call(f"{args.base_url}/api/token/", {"username": args.username, "password": args.password})
    pk = call(f"{args.base_url}/rest-auth/user/", token=pair["access"])["pk"]
    head, payload, signature = pair["access"].split(".")
    forged_claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged_claims["user_id"] = pk + 1
    forged = f"{head}.{b64(json.dumps(forged_claims).encode())}.{signature}"
    unsigned = f"{b64(json.dumps({'alg': 'none', 'kid': json.loads(base64.urlsafe_b64decode(head + '=='))['kid']}).encode())}.{payload}."

    passed = 0

    def refused(name, token):
        try:
            user_id_of(token)
        except jwt.InvalidTokenError:
            return True
        print(f"sdk/run: verify-python: {name} was accepted")
        sys.exit(1)

    if user_id_of(pair["access"]) != pk:
        print("sdk/run: verify-python: the access token did not give the user's pk")
        sys.exit(1)
    passed += 1
    for name, token in [("a refresh token", pair["refresh"]), ("a forged payload", forged), ("alg none", unsigned)]:
        passed += refused(name, token)
    print(f"verify-python: {passed} passed")


if __name__ == "__main__":
    main()
