#!/usr/bin/env bash
# The deploy image's command: MLServer on 127.0.0.1, and nginx in front of it on the published
# ports (MLSERVER_HTTP_PORT, MLSERVER_GRPC_PORT, MLSERVER_METRICS_PORT: 8080, 8081, 8082),
# passing load and unload only to the operator (nginx.conf.template says what passes).
#
#   SANTANDER_ADMIN_TOKEN     the operator's token (16+ of A-Z a-z 0-9 . _ ~ + / = -); unset:
#                             load and unload answer no one from outside
#   SANTANDER_INNER_*_PORT    MLServer's own ports on 127.0.0.1 (HTTP 9080, GRPC 9081,
#                             METRICS 9082): the operator's way in from inside the container
#   SANTANDER_REPOSITORY      the model repository (/srv/models)
#
# Either process ending ends the other, and the container, with its exit status; a stop
# (SIGTERM) is passed on to both.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
say() { echo "entrypoint: $*" >&2; }

http=${MLSERVER_HTTP_PORT:-8080}
grpc=${MLSERVER_GRPC_PORT:-8081}
metrics=${MLSERVER_METRICS_PORT:-8082}
inner_http=${SANTANDER_INNER_HTTP_PORT:-9080}
inner_grpc=${SANTANDER_INNER_GRPC_PORT:-9081}
inner_metrics=${SANTANDER_INNER_METRICS_PORT:-9082}
repository=${SANTANDER_REPOSITORY:-/srv/models}
front=${SANTANDER_FRONT_DIR:-/tmp/front}
nginx=$(command -v nginx || echo /usr/sbin/nginx)    # /usr/sbin is not on every user's PATH

for port in "$http" "$grpc" "$metrics" "$inner_http" "$inner_grpc" "$inner_metrics"; do
    [[ $port =~ ^[0-9]+$ ]] || { say "error: port '$port' is not a number"; exit 2; }
done
token=${SANTANDER_ADMIN_TOKEN:-}
if [ -n "$token" ]; then
    # Checked so that it can sit inside the config's quotes as it is.
    [[ $token =~ ^[A-Za-z0-9._~+/=-]{16,}$ ]] || {
        say "error: SANTANDER_ADMIN_TOKEN must be 16 or more of A-Z a-z 0-9 . _ ~ + / = -"
        exit 2; }
    rule="if (\$http_authorization = \"Bearer $token\") { set \$operator 1; }"
else
    rule="# no SANTANDER_ADMIN_TOKEN: load and unload answer only callers inside"
fi

mkdir -p "$front"
# The rendered config holds the token: readable by this user alone (the umask of this step
# only; the log and MLServer's files keep the usual one).
(umask 077
 sed -e "s|@HTTP_PORT@|$http|; s|@GRPC_PORT@|$grpc|; s|@METRICS_PORT@|$metrics|" \
     -e "s|@INNER_HTTP_PORT@|$inner_http|; s|@INNER_GRPC_PORT@|$inner_grpc|" \
     -e "s|@INNER_METRICS_PORT@|$inner_metrics|; s|@OPERATOR_RULE@|$rule|" \
     -e "s|/tmp/front|$front|g" \
     "$HERE/nginx.conf.template" > "$front/nginx.conf")
"$nginx" -t -q -e stderr -p "$front" -c "$front/nginx.conf"

MLSERVER_HOST=127.0.0.1 MLSERVER_HTTP_PORT=$inner_http MLSERVER_GRPC_PORT=$inner_grpc \
    MLSERVER_METRICS_PORT=$inner_metrics mlserver start "$repository" &
server=$!
"$nginx" -e stderr -p "$front" -c "$front/nginx.conf" -g "daemon off;" &
proxy=$!

trap 'kill -TERM "$server" "$proxy" 2>/dev/null || true' TERM INT
status=0
wait -n "$server" "$proxy" || status=$?
kill -TERM "$server" "$proxy" 2>/dev/null || true
wait || true
exit "$status"
