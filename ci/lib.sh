# Shared helpers for the ci/ scripts (sourced, not run).

# Run a command as root, or through sudo when not root.
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Install Debian packages that are missing (one apt-get update at most).
ensure_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# Print a step header and remember when it started.
step() {
  STEP_NAME="$1"
  STEP_START=$(date +%s.%N)
  echo
  echo "==> $STEP_NAME"
}

# Print how long the current step took.
step_done() {
  local end
  end=$(date +%s.%N)
  printf '    %s: %.2f s\n' "$STEP_NAME" "$(echo "$end - $STEP_START" | bc)"
}
