#!/bin/sh
# The worker container's entry point: which market and exchange it trades by default.
#   no Bybit keys       -> --source replay --exchange paper (the shipped real day, paper fills)
#   ARENA_BYBIT__API_KEY and ARENA_BYBIT__API_SECRET set
#                       -> --source bybit --exchange bybit-$ARENA_BYBIT__ENV (demo by default);
#                          mainnet also needs --allow-mainnet given as an argument.
# WORKER_SOURCE / WORKER_EXCHANGE override either; other arguments go to `arena trade`
# (e.g. --minutes 5 --speed 60 for a short replay).
set -eu
if [ -n "${ARENA_BYBIT__API_KEY:-}" ] && [ -n "${ARENA_BYBIT__API_SECRET:-}" ]; then
    source="bybit"
    exchange="bybit-${ARENA_BYBIT__ENV:-demo}"
else
    source="replay"
    exchange="paper"
fi
source="${WORKER_SOURCE:-$source}"
exchange="${WORKER_EXCHANGE:-$exchange}"
echo "worker: --source $source --exchange $exchange $*" >&2
exec arena trade --source "$source" --exchange "$exchange" "$@"
