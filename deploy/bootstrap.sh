#!/usr/bin/env bash
# Create everything deploy/compose.yaml mounts, with the real `relay247` commands:
# a test network (3 coordinators, threshold 2), the relay's keys and one config per
# instance, a directory listing the relay (with its audit-log key) and three nodes (FR,
# US, DE), random passphrases, the PostgreSQL password, and a local CA with the proxy's
# certificate.
#
#   deploy/bootstrap.sh [OUT]        (OUT defaults to deploy/; needs relay247 and openssl)
#
# Environment: RELAY247 (the command, default `relay247`), NETWORK (default example-net),
# PUBLIC_URL (default https://relay.example.org). Files are created with umask 077;
# nothing existing is overwritten. Production networks hold their coordinator key
# ceremony offline instead (docs/OPERATIONS.md): this script is for a test network.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here}"
relay247="${RELAY247:-relay247}"
network="${NETWORK:-example-net}"
public_url="${PUBLIC_URL:-https://relay.example.org}"
host="${public_url#https://}"
umask 077

secrets="$out/secrets"
etc="$out/etc"
if [ -e "$secrets" ] || [ -e "$etc" ]; then
  echo "bootstrap: $secrets or $etc exists already; refusing to overwrite" >&2
  exit 2
fi
mkdir -p "$secrets/tls" "$etc"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

random() { head -c 32 /dev/urandom | base64 | tr -d '/+=\n'; }

# 1. Passphrases and the database password (files only, never the environment).
for name in coordinator.passphrase relay_passphrase node-fr.passphrase \
    node-us.passphrase node-de.passphrase pg_password; do
  random >"$secrets/$name"
done
# libpq .pgpass format for asyncpg (host:port:database:user:password).
printf 'db:5432:relay247:relay247:%s\n' "$(cat "$secrets/pg_password")" >"$secrets/pgpass"

# 2. The network: coordinator keys, trust root, empty directory.
"$relay247" network init --dir "$secrets/network" --name "$network" \
  --coordinators 3 --threshold 2 --passphrase-file "$secrets/coordinator.passphrase"
cp "$secrets/network/trust.json" "$etc/trust.json"
chmod 0644 "$etc/trust.json"

# 3. The relay: keys (shared by both instances) and one config per instance.
"$relay247" relay init --data "$work/relay" --id relay247 --public-url "$public_url" \
  --host 0.0.0.0 --port 8247 --trust-root "$etc/trust.json" \
  --passphrase-file "$secrets/relay_passphrase"
# List the relay in the directory with its audit-log key, read offline from its keystore
# (the nodes witness the log against this key). One entry: both instances serve the same
# public URL with the same keys.
log_key="$("$relay247" relay info --config "$work/relay/relay.toml" \
  --passphrase-file "$secrets/relay_passphrase" | sed -n 's/^log_key: //p')"
if [ -z "$log_key" ]; then
  echo "bootstrap: relay info printed no log_key" >&2
  exit 1
fi
"$relay247" network add-relay --dir "$secrets/network" --id relay247 --url "$public_url" \
  --log-key "$log_key"
mv "$work/relay/relay.keys" "$secrets/relay.keys"
for instance in a b; do
  sed -e "s#^public_url = .*#public_url = \"$public_url\"#" \
    -e 's#^data_dir = .*#data_dir = "/run/secrets"#' \
    -e "s#^instance_url = .*#instance_url = \"http://relay-$instance:8247\"#" \
    -e 's#^host = .*#host = "0.0.0.0"#' \
    -e 's#^trust_root = .*#trust_root = "/etc/relay247/trust.json"#' \
    -e 's#^postgres_dsn = .*#postgres_dsn = "postgresql://relay247@db:5432/relay247"#' \
    "$here/config/relay.toml" >"$etc/relay-$instance.toml"
done

# 4. The nodes: keys made on "their" machines, member files enrolled by the coordinators.
for member in FR US DE; do
  m="$(echo "$member" | tr '[:upper:]' '[:lower:]')"
  "$relay247" node init --member "$member" --data "$work/node-$m" \
    --authority "24/7 point of contact $member" --relay "$public_url" \
    --trust-root "$etc/trust.json" --passphrase-file "$secrets/node-$m.passphrase"
  mv "$work/node-$m/node.keys" "$secrets/node-$m.keys"
  "$relay247" network add-member --dir "$secrets/network" "$work/node-$m/member.json"
  # The example config without its alert targets (add real ones before production).
  sed -e "s#^member = .*#member = \"$member\"#" \
    -e 's#^data_dir = .*#data_dir = "/var/lib/relay247"#' \
    -e 's#^keys_file = .*#keys_file = "/run/secrets/node.keys"#' \
    -e 's#^trust_root = .*#trust_root = "/etc/relay247/trust.json"#' \
    -e "s#^urls = .*#urls = [\"$public_url\"]#" \
    -e '/^# --- alerts/,$d' \
    "$here/config/node.toml" >"$etc/node-$m.toml"
done
chmod 0644 "$etc"/*.toml
chmod 0755 "$etc"

# 5. The first signed directory (posted to the relay once it runs: deploy/README.md).
"$relay247" network publish --dir "$secrets/network" \
  --passphrase-file "$secrets/coordinator.passphrase"

# 6. A local CA and the proxy's certificate (replace with a real one in production).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
  -subj "/CN=relay247 test CA" -keyout "$work/ca.key" -out "$secrets/tls/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$host" \
  -keyout "$secrets/tls/privkey.pem" -out "$work/proxy.csr" 2>/dev/null
printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n' "$host" >"$work/ext.cnf"
openssl x509 -req -in "$work/proxy.csr" -CA "$secrets/tls/ca.pem" -CAkey "$work/ca.key" \
  -CAcreateserial -days 825 -extfile "$work/ext.cnf" -out "$secrets/tls/fullchain.pem" 2>/dev/null
chmod 0644 "$secrets/tls/ca.pem" "$secrets/tls/fullchain.pem"

echo "bootstrap: done in $out (next: deploy/README.md, \"Ownership\" and \"Start\")"
