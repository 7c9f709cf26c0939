#!/usr/bin/env python3
"""Naver and Apple helpers for bench/run (issue 22); the apple-* ones need PyJWT and cryptography.

  apple-keys DIR                       make DIR/apple-jwks.json (the public JWK of a new RSA key,
                                       served by the mock), DIR/apple-rsa.pem (its private key) and
                                       DIR/apple-client.p8 (a P-256 key: the app's secret, unused here)
  apple-tokens DIR N AUD ISS OUT       write N RS256 id_tokens of Apple users a1..aN, one
                                       "<id_token> <raw nonce>" a line; the token carries the nonce's
                                       SHA-256 hex, as iOS apps following Firebase's convention send it
  warm BASE naver N                    log Naver users nv1..nvN in once (they exist before the runs)
  warm BASE apple TOKENS               log in once with each line of TOKENS
"""

import concurrent.futures
import hashlib
import http.client
import json
import os
import sys
import time

KID = "bench-apple-1"
LIFETIME = 7 * 24 * 3600  # longer than any run


def apple_keys(out_dir):
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.pop("key_ops", None)  # Apple's own key set has kty, kid, use, alg, n, e
    jwk.update(kid=KID, use="sig", alg="RS256")
    with open(os.path.join(out_dir, "apple-jwks.json"), "w") as f:
        json.dump({"keys": [jwk]}, f, separators=(",", ":"))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with open(os.path.join(out_dir, "apple-rsa.pem"), "wb") as f:
        f.write(pem)
    p8 = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with open(os.path.join(out_dir, "apple-client.p8"), "wb") as f:
        f.write(p8)


def apple_tokens(key_dir, n, aud, iss, out):
    import jwt
    from cryptography.hazmat.primitives import serialization

    with open(os.path.join(key_dir, "apple-rsa.pem"), "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    now = int(time.time())
    lines = []
    for k in range(1, int(n) + 1):
        raw = f"bench-nonce-{k}"
        claims = {
            "iss": iss, "aud": aud, "sub": f"{k:06d}.bench.0001", "iat": now, "exp": now + LIFETIME,
            "nonce": hashlib.sha256(raw.encode()).hexdigest(), "nonce_supported": True,
            "email": f"a{k}@privaterelay.appleid.com", "email_verified": "true", "is_private_email": "true",
            "auth_time": now,
        }
        lines.append(jwt.encode(claims, key, algorithm="RS256", headers={"kid": KID}) + " " + raw)
    with open(out, "w") as f:
        f.write("".join(line + "\n" for line in lines))


def login_batch(base, path, bodies):
    host, port = base.removeprefix("http://").rstrip("/").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    for body in bodies:
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{path}: {resp.status} {data[:200]!r}")
    conn.close()


def warm(base, provider, arg):
    if provider == "naver":
        bodies = [json.dumps({"access_token": f"nv{k}"}) for k in range(1, int(arg) + 1)]
    elif provider == "apple":
        with open(arg) as f:
            pairs = [line.split() for line in f if line.strip()]
        bodies = [json.dumps({"id_token": token, "nonce": nonce}) for token, nonce in pairs]
    else:
        sys.exit(f"warm: unknown provider {provider}")
    t0 = time.monotonic()
    path = f"/accounts/rest-auth/{provider}/"
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda c: login_batch(base, path, c), [bodies[i::8] for i in range(8)]))
    print(f"{provider}: {len(bodies)} logins in {time.monotonic() - t0:.1f} s", file=sys.stderr)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "apple-keys":
        apple_keys(*args)
    elif cmd == "apple-tokens":
        apple_tokens(*args)
    elif cmd == "warm":
        warm(*args)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
