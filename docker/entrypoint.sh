#!/bin/bash
# docker/entrypoint.sh: the images' entrypoint (docker/Dockerfile).
#
#   obentchi-server [ARGS]  Starts the server.  When Sentinels are named
#       (SENTINELS="host:port ..."), it first asks them which node is the
#       master of SENTINEL_MASTER_NAME, so that a node restarted after a
#       failover comes back as a replica of the new master rather than as a
#       second master: the answer is this node -> master; another node ->
#       `--replicaof HOST PORT`.  When no Sentinel answers (first start of a
#       group), BOOT_MASTER (host, or host:port) is the master and every other
#       node its replica.  Sentinel reconfigures whatever this guessed wrong.
#   sentinel  Starts Debian's redis-sentinel on a config written from
#       SENTINEL_* variables at first start (Sentinel rewrites that file with
#       its state; an existing one is kept).
#   anything else is run as given.
#
# Variables read here are not OBENTCHI_* (the server refuses unknown
# OBENTCHI_* names): SENTINELS, SENTINEL_MASTER_NAME (obentchi), BOOT_MASTER,
# SELF_HOST (extra names this node is known by), and for `sentinel`:
# SENTINEL_MONITOR_HOST, SENTINEL_MONITOR_PORT (6379), SENTINEL_QUORUM (2),
# SENTINEL_DOWN_AFTER_MS (5000), SENTINEL_FAILOVER_TIMEOUT_MS (60000),
# SENTINEL_PORT (26379), SENTINEL_ANNOUNCE_HOSTNAME, SENTINEL_AUTH_PASS_FILE,
# SENTINEL_CONF (/data/sentinel.conf).
set -euo pipefail

log() { printf 'time=%s level=notice msg="entrypoint: %s"\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

MASTER_NAME=${SENTINEL_MASTER_NAME:-obentchi}

# ask_sentinel HOST PORT: prints "MASTER_HOST MASTER_PORT", or fails.  Plain
# RESP over bash's /dev/tcp (the slim image has no redis-cli), 3 s at most.
ask_sentinel() {
    local out
    out=$(timeout 3 bash -c '
        exec 3<>"/dev/tcp/$1/$2" || exit 1
        printf "*3\r\n\$8\r\nSENTINEL\r\n\$23\r\nget-master-addr-by-name\r\n\$%d\r\n%s\r\n" "${#3}" "$3" >&3
        for _ in 1 2 3 4 5; do IFS= read -r -t 2 l <&3 || break; printf "%s\n" "$l"; case $l in "*-1"*|-*) break ;; esac; done
    ' _ "$1" "$2" "$MASTER_NAME" 2>/dev/null | tr -d '\r') || true
    # *2 / $len / host / $len / port (no word splitting: "*2" would glob)
    local -a f
    mapfile -t f <<< "$out"
    [ "${#f[@]}" -eq 5 ] && [ "${f[0]}" = "*2" ] && [[ "${f[4]}" =~ ^[0-9]+$ ]] || return 1
    printf '%s %s\n' "${f[2]}" "${f[4]}"
}

# is_self HOST PORT: this node (one of its names or addresses, and its port)?
is_self() {
    local n
    [ "$2" = "${OBENTCHI_PORT:-6379}" ] || return 1
    for n in $(hostname 2>/dev/null) $(hostname -f 2>/dev/null) $(hostname -I 2>/dev/null) \
             ${OBENTCHI_REPLICA_ANNOUNCE_IP:-} ${SELF_HOST:-}; do
        [ "$1" = "$n" ] && return 0
    done
    return 1
}

server() {
    local bin=$1 master="" s
    shift
    SENTINELS=${SENTINELS:-}
    for s in ${SENTINELS//,/ }; do
        if master=$(ask_sentinel "${s%:*}" "${s##*:}"); then
            log "sentinel $s names master $master"
            break
        fi
        master=""
    done
    if [ -z "$master" ] && [ -n "${BOOT_MASTER:-}" ]; then
        [[ "$BOOT_MASTER" == *:* ]] && master="${BOOT_MASTER%:*} ${BOOT_MASTER##*:}" || master="$BOOT_MASTER 6379"
        log "no sentinel answered; boot master is $master"
    fi
    set -- "$bin" "$@"
    if [ -n "$master" ] && ! is_self ${master}; then
        log "starting as replica of $master"
        set -- "$@" --replicaof ${master}
    else
        log "starting as master"
    fi
    exec "$@"
}

sentinel() {
    local conf=${SENTINEL_CONF:-/data/sentinel.conf} host=${SENTINEL_MONITOR_HOST:?SENTINEL_MONITOR_HOST is required}
    if [ ! -s "$conf" ]; then
        # Sentinel refuses a monitor line whose host does not resolve yet
        # (a pod whose DNS record is not published): wait, 120 s at most.
        for _ in $(seq 120); do getent hosts "$host" >/dev/null && break; sleep 1; done
        {
            echo "port ${SENTINEL_PORT:-26379}"
            echo "dir $(dirname "$conf")"
            echo "sentinel resolve-hostnames yes"
            echo "sentinel announce-hostnames yes"
            [ -n "${SENTINEL_ANNOUNCE_HOSTNAME:-}" ] && echo "sentinel announce-ip ${SENTINEL_ANNOUNCE_HOSTNAME}"
            echo "sentinel monitor $MASTER_NAME $host ${SENTINEL_MONITOR_PORT:-6379} ${SENTINEL_QUORUM:-2}"
            echo "sentinel down-after-milliseconds $MASTER_NAME ${SENTINEL_DOWN_AFTER_MS:-5000}"
            echo "sentinel failover-timeout $MASTER_NAME ${SENTINEL_FAILOVER_TIMEOUT_MS:-60000}"
            echo "sentinel parallel-syncs $MASTER_NAME 1"
            if [ -n "${SENTINEL_AUTH_PASS_FILE:-}" ]; then
                echo "sentinel auth-pass $MASTER_NAME $(cat "$SENTINEL_AUTH_PASS_FILE")"
            fi
        } > "$conf"
        chmod 0600 "$conf"
        log "wrote $conf (monitor $MASTER_NAME $host)"
    fi
    exec redis-sentinel "$conf"
}

[ "$#" -eq 0 ] && set -- obentchi-server
case "$(basename "$1")" in
    obentchi-server) server "$@" ;;
    sentinel) shift; sentinel "$@" ;;
    *) exec "$@" ;;
esac
