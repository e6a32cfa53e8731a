# Shared settings for Emberline's scripts; sourced, not run.
# Build output and tools live outside the clone so repeat runs (and CI's fresh clones) are quick.
export EMBERLINE_CACHE="${EMBERLINE_CACHE:-$HOME/.cache/emberline}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$EMBERLINE_CACHE/target}"
export PATH="$EMBERLINE_CACHE/tools/bin:$HOME/.cargo/bin:$PATH"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

# A TCP port on 127.0.0.1 that is free right now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
