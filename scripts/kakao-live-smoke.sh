#!/usr/bin/env bash
# Smoke test against REAL Kakao, for someone holding a Kakao app's keys. Never run in CI (it needs
# the internet and a person at a browser). Usage:
#   KAKAO_REST_API_KEY=… KAKAO_REDIRECT_URI=https://your.app/callback [KAKAO_CLIENT_SECRET=…] \
#   [KAKAO_APP_ID=…] scripts/kakao-live-smoke.sh http://127.0.0.1:8000
# The authbridge at that URL must use the default Kakao hosts and have the social app registered:
#   authbridge socialapp add --provider kakao --client-id "$KAKAO_REST_API_KEY" \
#     --secret "$KAKAO_CLIENT_SECRET" --app-id "$KAKAO_APP_ID" --site 1
set -euo pipefail
base="${1:-http://127.0.0.1:8000}"
: "${KAKAO_REST_API_KEY:?set KAKAO_REST_API_KEY}" "${KAKAO_REDIRECT_URI:?set KAKAO_REDIRECT_URI}"

verifier=$(head -c 48 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
challenge=$(printf '%s' "$verifier" | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '=\n')
nonce=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
redirect=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$KAKAO_REDIRECT_URI")

echo "1. Open this URL, log in with Kakao, and copy the 'code' parameter of the page you land on:"
echo "   https://kauth.kakao.com/oauth/authorize?response_type=code&client_id=$KAKAO_REST_API_KEY&redirect_uri=$redirect&code_challenge=$challenge&code_challenge_method=S256&nonce=$nonce&scope=openid"
read -r -p "2. code: " code

echo "3. Exchanging the code through authbridge (PKCE; the id_token's nonce is checked):"
body=$(python3 -c 'import json, sys; print(json.dumps({"code": sys.argv[1], "code_verifier": sys.argv[2], "redirect_uri": sys.argv[3], "nonce": sys.argv[4]}))' \
  "$code" "$verifier" "$KAKAO_REDIRECT_URI" "$nonce")
login=$(curl -sS -X POST "$base/accounts/rest-auth/kakao/" -H 'Content-Type: application/json' -d "$body")
echo "$login"
access=$(printf '%s' "$login" | python3 -c 'import json, sys; print(json.load(sys.stdin)["access"])')

echo "4. The user, with our own access token:"
curl -sS "$base/rest-auth/user/" -H "Authorization: Bearer $access"
echo
echo "OK: Kakao → authbridge JWT works with your real app."
