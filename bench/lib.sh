# Sourced by the bench/*.sh scripts.

# bound_port LOG KEY PID: the port of KEY (rtsp, http, rtsps, https, rtp, rtcp) in the
# line ipcamd logs once its listeners are bound (README "Bound addresses"), from ipcamd's
# log file LOG; waits up to 30 s for it. The server is configured with port 0, so no port
# is guessed beforehand that another process could take first. Exits the script, with
# the log, when process PID ends first or the line does not come.
bound_port() {
  local log=$1 key=$2 pid=$3 line value
  for _ in $(seq 300); do
    # The whole line: rtcp, the last key, written too.
    line=$(grep -m1 ' ipcamd::bound: .* rtcp=' "$log" 2>/dev/null || true)
    if [ -n "$line" ]; then
      value=$(printf '%s\n' "${line#* ipcamd::bound: }" | tr ' ' '\n' | grep "^$key=" | cut -d= -f2)
      case $value in
        *:[0-9]*) echo "${value##*:}"; return 0 ;;
        *) echo "ipcamd: no $key address in: $line" >&2; exit 1 ;;
      esac
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "ipcamd did not log its bound addresses; its log:" >&2
  cat "$log" >&2
  exit 1
}
