#!/bin/sh
# Makes a site CA and a server certificate for Mosquitto's TLS listener (and, with
# --client NAME, client certificates for brokers that require them). For evaluation and
# small sites; a plant with its own PKI puts its files in MQTT_CERTS_DIR instead.
#   docker/mosquitto/make-certs.sh DIR broker.plant.local [--client gw-plant1-a]
# Writes DIR/ca.pem, DIR/ca.key (keep it offline), DIR/server.pem, DIR/server.key.
set -eu
dir=${1:?usage: make-certs.sh DIR HOSTNAME [--client NAME]}
host=${2:?usage: make-certs.sh DIR HOSTNAME [--client NAME]}
mkdir -p "$dir" && cd "$dir"
umask 077
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
if [ ! -f ca.pem ]; then
  openssl req -x509 $ec -keyout ca.key -out ca.pem -days 3650 -subj "/CN=forewarn site CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
fi
sign() {  # name subject extensions
  printf '%s\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n' "$3" > "$1.ext"
  openssl req $ec -keyout "$1.key" -out "$1.csr" -subj "/CN=$2"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$1.pem" -days 825 -extfile "$1.ext"
  rm -f "$1.csr" "$1.ext"
}
case $host in
  *[!0-9.]*) san="DNS:$host,DNS:mosquitto" ;;
  *) san="IP:$host,DNS:mosquitto" ;;
esac
sign server "$host" "subjectAltName=$san
extendedKeyUsage=serverAuth"
if [ "${3:-}" = "--client" ]; then
  sign "${4:?--client needs a NAME}" "${4}" "extendedKeyUsage=clientAuth"
fi
chmod 644 ca.pem server.pem
chmod 600 server.key
# Mosquitto runs as uid 1883 in its image and must read its key: hand it over where we can.
chown 1883 server.key 2>/dev/null || echo "note: run 'sudo chown 1883 $dir/server.key' for the Mosquitto container" >&2
echo "wrote $dir: ca.pem server.pem server.key${4:+ $4.pem $4.key}"
