#!/usr/bin/env bash
# Create the secret files docker-compose.yml mounts (`make secrets`): one random value per
# secret, in a folder only its owner can enter. Existing files are kept, so running it again
# never rotates a secret behind the operator's back (delete a file to rotate it).
#
#   bash deploy/make_secrets.sh [FOLDER]      # default: ./secrets
#
# The files are world-readable inside that folder: compose bind-mounts them as they are, and
# the containers run as uid 10001 (churn), 472 (Grafana), not as the operator.
set -euo pipefail
dir="${1:-secrets}"
umask 077
mkdir -p "$dir"
chmod 700 "$dir"
for name in api_key model_signing_key grafana_admin_password; do
  file="$dir/$name"
  if [ -s "$file" ]; then
    continue
  fi
  # 32 random bytes as 64 hex characters.
  value="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
  printf '%s\n' "$value" > "$file"
  chmod 644 "$file"
  echo "created $file"
done
