# Shell functions the bench scripts share; sourced, not run:
#   . scripts/bench-lib.sh

# Install each Debian PACKAGE whose COMMAND is missing, with apt-get (as
# root, or through sudo).   ensure_tool COMMAND [PACKAGE]
ensure_tool() {
  command -v "$1" >/dev/null && return 0
  local package="${2:-$1}"
  echo "installing $package" >&2
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq "$package" >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq "$package" >/dev/null; fi
}

# The sluice.toml tables the benches deploy `echo` with: a fresh instance
# per event as `echo`, and the same component with `reuse` as
# `echo-reuse`. Run from the checkout's root.
echo_functions_toml() {
  cat <<TOML
[functions.echo]
path = "$PWD/target/functions/echo.wasm"
[functions.echo-reuse]
path = "$PWD/target/functions/echo.wasm"
reuse = 1000000
TOML
}

# A wrk request file (on stdout) that POSTs one structured-mode batch of N
# CloudEvents of type dev.sluice.bench.   batch_lua N
batch_lua() {
  echo 'wrk.method = "POST"'
  echo 'wrk.headers["content-type"] = "application/cloudevents-batch+json"'
  printf "wrk.body = '["
  local i
  for i in $(seq 1 "$1"); do
    [ "$i" -gt 1 ] && printf ","
    printf '{"specversion":"1.0","id":"b-%d","source":"/bench","type":"dev.sluice.bench","data":{"n":%d}}' "$i" "$i"
  done
  echo "]'"
}

# POST a minimal binary-mode CloudEvent to URL until it answers 200, at most
# TRIES times, PAUSE seconds apart. Prints the last status; fails unless it
# is 200.   status="$(await_200 URL TRIES PAUSE)" || ...
await_200() {
  local status=000 _
  for _ in $(seq 1 "$2"); do
    status="$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'ce-specversion: 1.0' -H 'ce-id: w' \
      -H 'ce-source: /b' -H 'ce-type: t' --data x "$1" || true)"
    [ "$status" = 200 ] && break
    sleep "$3"
  done
  echo "$status"
  [ "$status" = 200 ]
}
